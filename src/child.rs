//! Running the real runtime as a child instead of exec'ing it, for `create`, where execguard
//! has work after the runtime: the live check of what create made (`/proc/<pid>/root`), the
//! diagnosis through the container's own terminal (the init's fd 2 is the pty; the runtime's
//! stderr is thrown away under `docker run -t`, RUNTIMES.md §6 and §11), and the explanation of
//! a failed create after the runtime's own error line.
//!
//! The child behaves as the runtime would: same argv (argv[0] its own path), environment plus
//! the loop marker, every inherited file descriptor, stdio; the signals a caller sends
//! (TERM, INT, HUP, QUIT, USR1, USR2) are forwarded; it is always reaped; it dies with
//! execguard (PR_SET_PDEATHSIG); execguard exits with its status (128+N for a signal, as a
//! shell reports it).

use std::ffi::OsString;

use nix::sys::signal::{SigSet, Signal, kill};
use nix::unistd::Pid;

use crate::delegate::Runtime;

pub(crate) const FORWARDED: &[Signal] = &[
    Signal::SIGTERM,
    Signal::SIGINT,
    Signal::SIGHUP,
    Signal::SIGQUIT,
    Signal::SIGUSR1,
    Signal::SIGUSR2,
];

/// Why the runtime could not be run as a child.
#[derive(Debug)]
pub enum ChildError {
    /// It never started: handing over with exec is still possible.
    Spawn(std::io::Error),
    /// It started but its end could not be observed: it must not be run again.
    Wait(std::io::Error),
}

impl std::fmt::Display for ChildError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ChildError::Spawn(e) => write!(f, "cannot start the runtime: {e}"),
            ChildError::Wait(e) => write!(f, "cannot wait for the runtime: {e}"),
        }
    }
}

/// The signal mask execguard was started with, which every child gets back.
static ORIGINAL_MASK: std::sync::OnceLock<SigSet> = std::sync::OnceLock::new();

/// Run the runtime to completion; returns its exit status.
///
/// # Errors
/// [`ChildError::Spawn`] when it cannot start, [`ChildError::Wait`] when its end is lost.
pub fn run(runtime: &Runtime, args: &[OsString]) -> Result<i32, ChildError> {
    let mut set = SigSet::empty();
    for s in FORWARDED {
        set.add(*s);
    }
    // Block the forwarded signals (the forwarding thread inherits the mask), so they queue for
    // sigwait instead of killing execguard; they stay blocked until execguard exits, since a
    // signal after the runtime ended has no one left to reach.
    let mut old = SigSet::empty();
    let _ = nix::sys::signal::pthread_sigmask(
        nix::sys::signal::SigmaskHow::SIG_BLOCK,
        Some(&set),
        Some(&mut old),
    );
    let restore = *ORIGINAL_MASK.get_or_init(|| old);
    // With SIGCHLD ignored the kernel reaps children itself and wait fails: take it back for
    // the wait, and give the runtime what execguard inherited.
    // SAFETY: changing a signal disposition; the old one is kept and restored in the child.
    let old_chld = unsafe { libc::signal(libc::SIGCHLD, libc::SIG_DFL) };
    let vectors = crate::delegate::ExecVectors::new(runtime, args)
        .map_err(|e| ChildError::Spawn(std::io::Error::other(e.to_string())))?;
    let pid = spawn(&vectors, old_chld, restore).map_err(ChildError::Spawn)?;
    // The forwarder signals the child only while it has not been reaped (the lock orders the
    // two), so a signal can never reach a process that reused the pid.
    let reaped = std::sync::Arc::new(std::sync::Mutex::new(false));
    let guard = std::sync::Arc::clone(&reaped);
    let forwarder = std::thread::Builder::new()
        .name("execguard-signals".into())
        .spawn(move || {
            while let Ok(sig) = set.wait() {
                match guard.lock() {
                    Ok(done) if !*done => {
                        let _ = kill(pid, sig);
                    }
                    _ => break,
                }
            }
        });
    if forwarder.is_err() {
        // Nothing would forward them: let signals act as they would on the runtime's caller.
        let _ = nix::sys::signal::pthread_sigmask(
            nix::sys::signal::SigmaskHow::SIG_SETMASK,
            Some(&old),
            None,
        );
    }
    // Wait for the exit without reaping, close the forwarder, then reap.
    loop {
        // SAFETY: a zeroed siginfo_t is a valid out-parameter for waitid.
        let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
        // SAFETY: valid pointer; P_PID with our own child's pid.
        let r = unsafe {
            libc::waitid(
                libc::P_PID,
                pid.as_raw() as libc::id_t,
                &mut info,
                libc::WEXITED | libc::WNOWAIT,
            )
        };
        if r == 0 || std::io::Error::last_os_error().kind() != std::io::ErrorKind::Interrupted {
            break;
        }
    }
    if let Ok(mut done) = reaped.lock() {
        *done = true;
    }
    let status = loop {
        let mut st: libc::c_int = 0;
        // SAFETY: valid pointer; our own child, now reaped.
        if unsafe { libc::waitpid(pid.as_raw(), &mut st, 0) } == pid.as_raw() {
            break st;
        }
        let e = std::io::Error::last_os_error();
        if e.kind() != std::io::ErrorKind::Interrupted {
            return Err(ChildError::Wait(e));
        }
    };
    Ok(if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else {
        128 + libc::WTERMSIG(status)
    })
}

/// What the child of [`spawn`] reads (shared memory: the parent waits until it exec'd).
struct Launch<'a> {
    prog: *const libc::c_char,
    argv: &'a [*const libc::c_char],
    envp: &'a [*const libc::c_char],
    parent: libc::pid_t,
    old_chld: libc::sighandler_t,
    restore: libc::sigset_t,
    /// errno of a failed execve, written by the child.
    errno: std::sync::atomic::AtomicI32,
}

/// The child of [`spawn`], on its own stack in execguard's memory, until execve: only
/// async-signal-safe calls that touch nothing but `Launch`.
extern "C" fn launch(arg: *mut libc::c_void) -> libc::c_int {
    // SAFETY: `arg` is the `Launch` the parent keeps alive while it is suspended (CLONE_VFORK).
    let l = unsafe { &*(arg as *const Launch<'_>) };
    // SAFETY: plain syscalls on this task; the signal dispositions are the child's own (no
    // CLONE_SIGHAND), so the parent's stay as they are.
    unsafe {
        // Killed with execguard (containerd kills the runtime on a timeout): the runtime then
        // stops as it would have had it been killed itself. If execguard is already gone, stop.
        libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
        if libc::getppid() != l.parent {
            libc::_exit(137);
        }
        if l.old_chld != libc::SIG_ERR {
            libc::signal(libc::SIGCHLD, l.old_chld);
        }
        crate::delegate::restore_sigpipe();
        libc::pthread_sigmask(libc::SIG_SETMASK, &l.restore, std::ptr::null_mut());
        libc::execve(l.prog, l.argv.as_ptr(), l.envp.as_ptr());
        l.errno.store(
            *libc::__errno_location(),
            std::sync::atomic::Ordering::Relaxed,
        );
        libc::_exit(127)
    }
}

/// Start the runtime the way posix_spawn does: clone(CLONE_VM | CLONE_VFORK), so no page table
/// is copied and this thread sleeps until the child has exec'd (fork copies execguard's
/// mappings and then pays a copy-on-write fault for every page either side touches). All
/// signals stay blocked until the child sets the runtime's mask right before execve.
fn spawn(
    v: &crate::delegate::ExecVectors,
    old_chld: libc::sighandler_t,
    restore: SigSet,
) -> std::io::Result<Pid> {
    let launch_args = Launch {
        prog: v.prog.as_ptr(),
        argv: &v.argv,
        envp: &v.envp,
        parent: std::process::id() as libc::pid_t,
        old_chld,
        restore: *restore.as_ref(),
        errno: std::sync::atomic::AtomicI32::new(0),
    };
    // The child's stack: it only makes a handful of syscalls.
    let mut stack = vec![0u8; 64 << 10];
    // SAFETY: the top of the buffer, 16-byte aligned as the ABI wants.
    let top = unsafe { stack.as_mut_ptr().add(stack.len()) };
    let top = (top as usize & !15) as *mut libc::c_void;
    let mut before = SigSet::empty();
    let _ = nix::sys::signal::pthread_sigmask(
        nix::sys::signal::SigmaskHow::SIG_SETMASK,
        Some(&SigSet::all()),
        Some(&mut before),
    );
    // SAFETY: `launch` only reads `launch_args` and the vectors, which outlive the call: with
    // CLONE_VFORK clone returns once the child exec'd or exited.
    let pid = unsafe {
        libc::clone(
            launch,
            top,
            libc::CLONE_VM | libc::CLONE_VFORK | libc::SIGCHLD,
            &launch_args as *const Launch<'_> as *mut libc::c_void,
        )
    };
    let clone_error = std::io::Error::last_os_error();
    let _ = nix::sys::signal::pthread_sigmask(
        nix::sys::signal::SigmaskHow::SIG_SETMASK,
        Some(&before),
        None,
    );
    drop(stack);
    if pid < 0 {
        return Err(clone_error);
    }
    let errno = launch_args.errno.load(std::sync::atomic::Ordering::Relaxed);
    if errno != 0 {
        let mut st = 0;
        // SAFETY: reaping the child that failed to exec.
        unsafe { libc::waitpid(pid, &mut st, 0) };
        return Err(std::io::Error::from_raw_os_error(errno));
    }
    Ok(Pid::from_raw(pid))
}

/// Write `text` through the terminal (fd 2) of the container's init `pid`, without blocking.
///
/// # Errors
/// The fd cannot be opened or written.
pub fn write_to_init_stderr(pid: i32, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .custom_flags(libc::O_NOCTTY | libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(format!("/proc/{pid}/fd/2"))?;
    f.write_all(text.as_bytes())
}

/// The pid the runtime wrote to `--pid-file` (bounded read).
pub fn read_pid_file(path: &std::path::Path) -> Option<i32> {
    use std::io::Read;
    let f = std::fs::File::open(path).ok()?;
    let mut s = String::new();
    f.take(64).read_to_string(&mut s).ok()?;
    s.trim().parse().ok().filter(|p| *p > 0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::delegate::MARKER;
    use std::path::PathBuf;

    fn rt(p: &str) -> Runtime {
        Runtime {
            path: PathBuf::from(p),
            source: crate::delegate::Source::Flag,
        }
    }

    #[test]
    fn exit_status_and_signals_are_reported_like_a_shell() {
        let sh = rt("/bin/sh");
        assert_eq!(run(&sh, &["-c".into(), "exit 7".into()]).unwrap(), 7);
        assert_eq!(
            run(&sh, &["-c".into(), "kill -TERM $$".into()]).unwrap(),
            128 + 15
        );
        assert!(matches!(
            run(&rt("/nonexistent/runtime"), &[]),
            Err(ChildError::Spawn(_))
        ));
    }

    #[test]
    fn the_child_sees_the_marker() {
        let sh = rt("/bin/sh");
        let code = run(
            &sh,
            &[
                "-c".into(),
                format!("test \"${MARKER}\" = {}", crate::delegate::marker_value()).into(),
            ],
        )
        .unwrap();
        assert_eq!(code, 0);
    }

    #[test]
    fn pid_files() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("pid");
        std::fs::write(&p, "1234\n").unwrap();
        assert_eq!(read_pid_file(&p), Some(1234));
        std::fs::write(&p, "x").unwrap();
        assert_eq!(read_pid_file(&p), None);
        assert_eq!(read_pid_file(&d.path().join("none")), None);
    }
}
