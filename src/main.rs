//! The execguard binary: everything lives in the library.

fn main() {
    std::process::exit(execguard::main_entry());
}
