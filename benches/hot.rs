//! Criterion benchmarks of the pieces on execguard's `create`/`run` path (issue 5): the argv
//! scan, the config load, the path walk in a rootfs, ELF and `#!` classification, binfmt_misc
//! reading and matching, and one whole diagnosis.
//!
//! `cargo bench --bench hot` measures; `cargo test --all-targets` runs each benchmark once as a
//! test. Every fixture is made in a temporary directory: a rootfs with a few symlinks (the
//! usr-merge links and two more) and a binfmt_misc-like folder (`status` plus one entry file per
//! qemu handler, as `--binfmt-root` and `Host::with_machine` take in the tests). The ELF
//! classified is this benchmark's own executable (dynamic, with `PT_INTERP`), so nothing on the
//! host is assumed.

use std::ffi::OsString;
use std::fs;
use std::hint::black_box;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::{Path, PathBuf};

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use execguard::check;
use execguard::cli::scan;
use execguard::config::Config;
use execguard::host::{Host, binfmt};
use execguard::inspect::{elf, script, sniff};
use execguard::rootfs::resolve::{Mount, Resolution, Root};
use execguard::spec::SpecView;

const ID: &str = "8f2b4c6d0e1a3b5c7d9e0f1a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e";

/// Handlers as Debian registers them (qemu-user-static and python3.11, from /usr/lib/binfmt.d).
const QEMU_LINES: &[&[u8]] = &[
    br":qemu-aarch64:M::\x7f\x45\x4c\x46\x02\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00\xb7\x00:\xff\xff\xff\xff\xff\xff\xff\x00\xff\xff\xff\xff\xff\xff\xff\xff\xfe\xff\xff\xff:/usr/libexec/qemu-binfmt/aarch64-binfmt-P:OPF",
    br":qemu-arm:M::\x7f\x45\x4c\x46\x01\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00\x28\x00:\xff\xff\xff\xff\xff\xff\xff\x00\xff\xff\xff\xff\xff\xff\xff\xff\xfe\xff\xff\xff:/usr/libexec/qemu-binfmt/arm-binfmt-P:OPF",
    br":qemu-ppc64le:M::\x7f\x45\x4c\x46\x02\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00\x15\x00:\xff\xff\xff\xff\xff\xff\xff\xfc\xff\xff\xff\xff\xff\xff\xff\xff\xfe\xff\xff\x00:/usr/libexec/qemu-binfmt/ppc64le-binfmt-P:OPF",
    br":qemu-s390x:M::\x7f\x45\x4c\x46\x02\x02\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00\x16:\xff\xff\xff\xff\xff\xff\xff\xfc\xff\xff\xff\xff\xff\xff\xff\xff\xff\xfe\xff\xff:/usr/libexec/qemu-binfmt/s390x-binfmt-P:OPF",
    br":qemu-riscv64:M::\x7f\x45\x4c\x46\x02\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00\xf3\x00:\xff\xff\xff\xff\xff\xff\xff\x00\xff\xff\xff\xff\xff\xff\xff\xff\xfe\xff\xff\xff:/usr/libexec/qemu-binfmt/riscv64-binfmt-P:OPF",
    br":qemu-mips64el:M::\x7f\x45\x4c\x46\x02\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00\x08\x00:\xff\xff\xff\xff\xff\xff\xff\x00\xfe\xff\xff\xff\xff\xff\xff\xff\xfe\xff\xff\xff:/usr/libexec/qemu-binfmt/mips64el-binfmt-P:OPF",
    br":qemu-loongarch64:M::\x7fELF\x02\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00\x02\x01:\xff\xff\xff\xff\xff\xff\xff\xfc\x00\xff\xff\xff\xff\xff\xff\xff\xfe\xff\xff\xff:/usr/libexec/qemu-binfmt/loongarch64-binfmt-P:OPF",
    br":python3.11:M::\xa7\x0d\x0d\x0a::/usr/bin/python3.11:",
];

/// A static ELF executable of `machine`: the 64-byte header and one `PT_LOAD` covering the
/// whole 4 KiB file (64-bit little-endian).
fn tiny_elf(machine: u16) -> Vec<u8> {
    let mut f = vec![0u8; 4096];
    f[..16].copy_from_slice(b"\x7fELF\x02\x01\x01\0\0\0\0\0\0\0\0\0");
    let mut put = |at: usize, bytes: &[u8]| f[at..at + bytes.len()].copy_from_slice(bytes);
    put(16, &2u16.to_le_bytes()); // e_type ET_EXEC
    put(18, &machine.to_le_bytes());
    put(20, &1u32.to_le_bytes()); // e_version
    put(24, &0x400078u64.to_le_bytes()); // e_entry
    put(32, &64u64.to_le_bytes()); // e_phoff
    put(52, &64u16.to_le_bytes()); // e_ehsize
    put(54, &56u16.to_le_bytes()); // e_phentsize
    put(56, &1u16.to_le_bytes()); // e_phnum
    put(64, &1u32.to_le_bytes()); // p_type PT_LOAD
    put(68, &5u32.to_le_bytes()); // p_flags R+X
    put(80, &0x400000u64.to_le_bytes()); // p_vaddr
    put(88, &0x400000u64.to_le_bytes()); // p_paddr
    put(96, &4096u64.to_le_bytes()); // p_filesz
    put(104, &4096u64.to_le_bytes()); // p_memsz
    put(112, &4096u64.to_le_bytes()); // p_align
    f
}

fn native_machine() -> u16 {
    if cfg!(target_arch = "aarch64") {
        183
    } else {
        62
    }
}

fn write_exec(path: &Path, bytes: &[u8]) {
    fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
    fs::write(path, bytes).expect("write");
    fs::set_permissions(path, fs::Permissions::from_mode(0o755)).expect("chmod");
}

/// A rootfs with the usr-merge links and a program reached through two more links:
/// `/bin/app2` → `/usr/bin/app2` → `../local/bin/app` → `/usr/lib/app/real`.
fn rootfs(dir: &Path) -> PathBuf {
    let r = dir.join("rootfs");
    let elf = tiny_elf(native_machine());
    write_exec(&r.join("usr/bin/app"), &elf);
    write_exec(&r.join("usr/lib/app/real"), &elf);
    fs::create_dir_all(r.join("usr/local/bin")).expect("mkdir");
    for d in ["etc", "proc", "dev", "tmp"] {
        fs::create_dir_all(r.join(d)).expect("mkdir");
    }
    fs::write(r.join("etc/hosts"), b"127.0.0.1 localhost\n").expect("write");
    symlink("usr/bin", r.join("bin")).expect("symlink");
    symlink("usr/lib", r.join("lib")).expect("symlink");
    symlink("/usr/lib/app/real", r.join("usr/local/bin/app")).expect("symlink");
    symlink("../local/bin/app", r.join("usr/bin/app2")).expect("symlink");
    r
}

/// The mounts of a typical runc spec.
fn spec_mounts() -> Vec<Mount> {
    let table: [(&[u8], &str, &str, &[&str]); 5] = [
        (b"/proc", "proc", "proc", &["nosuid", "noexec", "nodev"]),
        (
            b"/dev",
            "tmpfs",
            "tmpfs",
            &["nosuid", "strictatime", "mode=755"],
        ),
        (b"/dev/pts", "devpts", "devpts", &["nosuid", "noexec"]),
        (b"/dev/shm", "tmpfs", "shm", &["nosuid", "noexec", "nodev"]),
        (b"/etc/hosts", "bind", "/etc/hosts", &["rbind", "ro"]),
    ];
    table
        .iter()
        .enumerate()
        .map(|(i, (dest, fstype, source, opts))| {
            let opts = opts.iter().map(|o| o.to_string()).collect();
            Mount::from_spec(i, dest, Some(fstype), Some(Path::new(source)), opts)
        })
        .collect()
}

/// A binfmt_misc-like folder: `status` and one entry file per handler, as the kernel prints it.
fn binfmt_root(dir: &Path) -> PathBuf {
    let root = dir.join("binfmt_misc");
    fs::create_dir_all(&root).expect("mkdir");
    fs::write(root.join("status"), b"enabled\n").expect("write");
    fs::write(root.join("register"), b"").expect("write");
    for line in QEMU_LINES {
        let e = binfmt::parse_register_line(line).expect("qemu register line");
        fs::write(root.join(&e.name), binfmt::to_entry_text(&e)).expect("write");
    }
    root
}

fn containerd_create_argv() -> Vec<OsString> {
    let b = format!("/run/containerd/io.containerd.runtime.v2.task/k8s.io/{ID}");
    format!(
        "--execguard-runtime /usr/sbin/runc --root /run/containerd/runc/k8s.io --log {b}/log.json \
         --log-format json --systemd-cgroup create --bundle {b} --pid-file {b}/init.pid {ID}"
    )
    .split_whitespace()
    .map(OsString::from)
    .collect()
}

fn bench_scan(c: &mut Criterion) {
    let argv = containerd_create_argv();
    c.bench_function("scan/containerd_create", |b| {
        b.iter_batched_ref(
            || argv.clone(),
            |args| {
                let own = scan::strip_own_flags(args);
                let inv = scan::scan(args);
                black_box((own, inv))
            },
            BatchSize::SmallInput,
        )
    });
}

fn bench_config(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("config.json");
    fs::write(&path, include_bytes!("../config.example.json")).expect("write");
    c.bench_function("config/load_example", |b| {
        b.iter(|| black_box(Config::load(black_box(&path)).expect("config")))
    });
}

fn bench_resolve(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("tempdir");
    let r = rootfs(dir.path());
    c.bench_function("resolve/open_root_5_mounts", |b| {
        b.iter(|| black_box(Root::open(&r, spec_mounts()).expect("root")))
    });
    let root = Root::open(&r, spec_mounts()).expect("root");
    assert!(matches!(
        root.resolve(b"/bin/app2", true),
        Resolution::Found(_)
    ));
    c.bench_function("resolve/direct", |b| {
        b.iter(|| black_box(root.resolve(black_box(b"/usr/bin/app"), true)))
    });
    c.bench_function("resolve/3_links", |b| {
        b.iter(|| black_box(root.resolve(black_box(b"/bin/app2"), true)))
    });
}

fn bench_classify(c: &mut Criterion) {
    // A dynamic executable of the host (execguard itself is static): ls is in every Debian.
    let file = fs::File::open("/bin/ls").expect("open /bin/ls");
    let mut header = vec![0u8; 4096];
    let n = std::os::unix::fs::FileExt::read_at(&file, &mut header, 0).expect("read /bin/ls");
    header.truncate(n);
    assert!(elf::parse(&header, &file).is_some_and(|i| i.interp.is_some()));
    c.bench_function("classify/elf_dynamic", |b| {
        b.iter(|| {
            let format = sniff::sniff(black_box(&header), 1 << 20);
            black_box((format, elf::parse(&header, &file)))
        })
    });
    let script = b"#!/usr/bin/env python3\r\nimport sys\nprint(sys.argv)\n".to_vec();
    c.bench_function("classify/shebang", |b| {
        b.iter(|| {
            let format = sniff::sniff(black_box(&script), script.len() as u64);
            black_box((format, script::parse(&script)))
        })
    });
}

fn bench_binfmt(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = binfmt_root(dir.path());
    c.bench_function("binfmt/load_8_entries", |b| {
        b.iter(|| black_box(binfmt::load(black_box(&root))))
    });
    let host = Host::with_machine(std::env::consts::ARCH, true, root.clone());
    let state = host.binfmt();
    let arm64 = tiny_elf(183);
    let native = tiny_elf(62);
    assert!(binfmt::select(state, &arm64, b"/bin/app").is_some());
    assert!(binfmt::select(state, &native, b"/bin/app").is_none());
    c.bench_function("binfmt/select_arm64_elf", |b| {
        b.iter(|| black_box(binfmt::select(state, black_box(&arm64), b"/bin/app")))
    });
    c.bench_function("binfmt/select_no_match", |b| {
        b.iter(|| black_box(binfmt::select(state, black_box(&native), b"/bin/app")))
    });
}

fn bench_diagnose(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("tempdir");
    let r = rootfs(dir.path());
    let bm = binfmt_root(dir.path());
    let spec = SpecView {
        has_process: true,
        args: vec!["/bin/app2".into()],
        env: vec!["PATH=/usr/local/bin:/usr/bin:/bin".into()],
        cwd: "/".into(),
        root: r,
        ..SpecView::default()
    };
    c.bench_function("check/diagnose_static_elf_3_links", |b| {
        b.iter(|| {
            // A fresh host each time, as one execguard process has: binfmt_misc is read once.
            let host = Host::with_machine(std::env::consts::ARCH, true, bm.clone());
            black_box(check::diagnose(black_box(&spec), &host))
        })
    });
}

criterion_group!(
    benches,
    bench_scan,
    bench_config,
    bench_resolve,
    bench_classify,
    bench_binfmt,
    bench_diagnose
);
criterion_main!(benches);
