//! The console-socket relay for `exec --tty` with a diagnosis to show.
//!
//! With a terminal, the runtime's stderr is thrown away (`docker exec -t`, `kubectl exec -t`,
//! `podman exec -t`: RUNTIMES.md §6), and the terminal of an exec'd process does not exist until
//! the runtime makes it inside the container and hands its master side to the caller's
//! `--console-socket` (runc `setupConsole` → `utils.SendFd`; crun the same, SCM_RIGHTS with the
//! terminal's name as the payload). So execguard puts itself on that hand-off: the runtime gets
//! a private socket of execguard's instead, the master arrives there, execguard writes the
//! diagnosis through the terminal's own slave side (`TIOCGPTPEER`, so it reads as the process's
//! output, before anything the process prints in the usual case), and passes the same master
//! with the same payload on to the caller's socket. The caller gets the terminal it would have
//! got; only the first bytes on it are execguard's.
//!
//! When the diagnosis says the exec will fail, the runtime's own failure line (`exec /bin/app:
//! exec format error`, written by its init through the same terminal) races the relay: the
//! relay then holds the terminal until the process's side closes (it dies at once when the
//! prediction holds), the runtime call ends, or [`HOLD_LIMIT`], whichever comes first, and puts
//! the diagnosis before what the runtime wrote, so the user reads the explanation first. It
//! never holds past the runtime's own end: the caller learns of the process from the runtime's
//! return (containerd's shim reads the pid file then), and a process that dies before that is
//! what the caller sees without execguard too. With warnings only, the process runs: its
//! terminal is passed on at once.
//!
//! The caller (containerd's shim, conmon) takes the master from its socket only after the
//! runtime call has returned, so execguard waits (bounded) for the hand-off to end before it
//! exits, also for a runtime whose child connects after the runtime itself has returned.
//!
//! Used only when there is something to show: a clean exec keeps its argv byte for byte and is
//! exec'd as ever.

use std::io::{IoSlice, IoSliceMut};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use nix::sys::socket::{ControlMessage, ControlMessageOwned, MsgFlags, recvmsg, sendmsg};

/// Largest payload read with the master (containerd's `console.RecvFd` reads 4096 bytes).
const MAX_PAYLOAD: usize = 4096;

/// Longest a terminal is held for a process predicted to fail.
pub const HOLD_LIMIT: Duration = Duration::from_millis(500);

/// Most bytes of the runtime's output held back (its error line is one line).
const HOLD_BYTES: usize = 8192;

/// Longest execguard waits, after the runtime ended, for a hand-off under way.
const FINISH_LIMIT: Duration = Duration::from_secs(2);

/// A private console socket that forwards to the caller's, writing a text through the
/// terminal on the way. Removing the socket (drop) leaves the caller's untouched.
pub struct Relay {
    dir: PathBuf,
    path: PathBuf,
    thread: Option<JoinHandle<Result<(), String>>>,
    shared: Arc<Shared>,
}

/// What the relay thread and the caller's thread both see.
#[derive(Default)]
struct Shared {
    /// The runtime has connected: from then on the hand-off must be waited for.
    accepted: AtomicBool,
    /// The runtime call has returned: stop holding the terminal.
    runtime_done: AtomicBool,
}

impl Relay {
    /// Listen on a new socket in a private (0700) folder under the temp dir; the master that
    /// arrives there gets `text` written through it and goes on to `real`. `hold`: the process
    /// is predicted to fail, put `text` before what the runtime writes.
    ///
    /// # Errors
    /// The folder, the socket or the relay thread cannot be made.
    pub fn start(real: PathBuf, text: String, hold: bool) -> std::io::Result<Relay> {
        let dir = private_dir()?;
        let path = dir.join("console.sock");
        let listener = match UnixListener::bind(&path) {
            Ok(l) => l,
            Err(e) => {
                let _ = std::fs::remove_dir(&dir);
                return Err(e);
            }
        };
        // The relay thread must not take the signals the runtime child's forwarder waits for:
        // it starts with them blocked, and this thread gets its own mask back.
        let mut set = nix::sys::signal::SigSet::empty();
        for s in crate::child::FORWARDED {
            set.add(*s);
        }
        let old = set.thread_swap_mask(nix::sys::signal::SigmaskHow::SIG_BLOCK);
        let shared = Arc::new(Shared::default());
        let theirs = Arc::clone(&shared);
        let thread = std::thread::Builder::new()
            .name("execguard-console".into())
            .spawn(move || relay(&listener, &real, &text, hold, &theirs));
        if let Ok(old) = old {
            let _ = old.thread_set_mask();
        }
        match thread {
            Ok(t) => Ok(Relay {
                dir,
                path,
                thread: Some(t),
                shared,
            }),
            Err(e) => {
                let _ = std::fs::remove_file(&path);
                let _ = std::fs::remove_dir(&dir);
                Err(e)
            }
        }
    }

    /// The socket to give the runtime as `--console-socket`.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// What became of the hand-off once the runtime has ended (`started`: it exited 0, so a
    /// child of it may still connect): `None` when nothing connected, else the relay's result,
    /// waited for (bounded) so the caller finds the terminal on its socket.
    pub fn finish(mut self, started: bool) -> Option<Result<(), String>> {
        self.shared.runtime_done.store(true, Ordering::Release);
        let t = self.thread.take()?;
        let until = Instant::now() + FINISH_LIMIT;
        while !t.is_finished() {
            let connected = self.shared.accepted.load(Ordering::Acquire);
            if (!connected && !started) || Instant::now() > until {
                return None;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        Some(
            t.join()
                .unwrap_or_else(|_| Err("the console relay panicked".into())),
        )
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
        let _ = std::fs::remove_dir(&self.dir);
    }
}

/// mkdtemp under the temp dir: a folder only this user can enter.
fn private_dir() -> std::io::Result<PathBuf> {
    use std::os::unix::ffi::OsStrExt;
    let mut template = std::env::temp_dir()
        .join("execguard-console-XXXXXX")
        .as_os_str()
        .as_bytes()
        .to_vec();
    template.push(0);
    // SAFETY: a NUL-terminated, writable template, as mkdtemp requires.
    let p = unsafe { libc::mkdtemp(template.as_mut_ptr().cast()) };
    if p.is_null() {
        return Err(std::io::Error::last_os_error());
    }
    template.pop();
    Ok(PathBuf::from(std::ffi::OsStr::from_bytes(&template)))
}

/// One hand-off: accept the runtime, take the master, write through it, pass it on.
fn relay(
    listener: &UnixListener,
    real: &Path,
    text: &str,
    hold: bool,
    shared: &Shared,
) -> Result<(), String> {
    let (conn, _) = listener
        .accept()
        .map_err(|e| format!("console socket: {e}"))?;
    shared.accepted.store(true, Ordering::Release);
    let (payload, master) = recv_fd(conn.as_raw_fd())?;
    let Some(master) = master else {
        return Ok(());
    };
    let held = if hold {
        hold_output(&master, Instant::now() + HOLD_LIMIT, &shared.runtime_done)
    } else {
        Vec::new()
    };
    let written = write_through(&master, text.as_bytes(), &held);
    let out = UnixStream::connect(real)
        .map_err(|e| format!("cannot reach the console socket {}: {e}", real.display()))?;
    let fds = [master.as_raw_fd()];
    sendmsg::<()>(
        out.as_raw_fd(),
        &[IoSlice::new(&payload)],
        &[ControlMessage::ScmRights(&fds)],
        MsgFlags::empty(),
        None,
    )
    .map_err(|e| format!("cannot pass the terminal on: {e}"))?;
    written
}

/// What the process's side writes until it closes (EIO on the master), `until`, `done` (the
/// runtime call returned), or [`HOLD_BYTES`]; never blocks past `until`.
fn hold_output(master: &OwnedFd, until: Instant, done: &AtomicBool) -> Vec<u8> {
    use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
    use std::os::fd::AsFd;
    let mut held = Vec::new();
    let mut chunk = [0u8; 1024];
    while held.len() < HOLD_BYTES {
        let left = until.saturating_duration_since(Instant::now());
        // Past the limit or the runtime's end, still take what is already written (the
        // runtime may have returned before this thread got the master): it must come after
        // the diagnosis too. Then stop without waiting.
        let last = left.is_zero() || done.load(Ordering::Acquire);
        // Short slices, so the runtime's end is noticed at once.
        let ms = if last {
            0
        } else {
            u16::try_from(left.as_millis().min(5)).unwrap_or(5)
        };
        let mut fds = [PollFd::new(master.as_fd(), PollFlags::POLLIN)];
        match poll(&mut fds, PollTimeout::from(ms)) {
            Ok(0) if last => break,
            Ok(0) => continue,
            Ok(_) => {}
            Err(nix::errno::Errno::EINTR) => continue,
            Err(_) => break,
        }
        match nix::unistd::read(master, &mut chunk) {
            Ok(0) => break,
            Ok(n) => held.extend_from_slice(chunk.get(..n).unwrap_or_default()),
            Err(nix::errno::Errno::EINTR | nix::errno::Errno::EAGAIN) => continue,
            // EIO: every descriptor of the process's side is closed.
            Err(_) => break,
        }
    }
    held
}

/// The payload and the first descriptor of one message (further ones are closed).
fn recv_fd(sock: RawFd) -> Result<(Vec<u8>, Option<OwnedFd>), String> {
    let mut buf = vec![0u8; MAX_PAYLOAD];
    let mut cmsg = nix::cmsg_space!([RawFd; 4]);
    let (len, fds) = loop {
        let mut iov = [IoSliceMut::new(&mut buf)];
        match recvmsg::<()>(sock, &mut iov, Some(&mut cmsg), MsgFlags::MSG_CMSG_CLOEXEC) {
            Ok(msg) => {
                let mut fds: Vec<OwnedFd> = Vec::new();
                if let Ok(cmsgs) = msg.cmsgs() {
                    for c in cmsgs {
                        if let ControlMessageOwned::ScmRights(received) = c {
                            // SAFETY: descriptors just received are ours alone.
                            fds.extend(
                                received
                                    .into_iter()
                                    .map(|f| unsafe { OwnedFd::from_raw_fd(f) }),
                            );
                        }
                    }
                }
                break (msg.bytes, fds);
            }
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(format!("console socket: {e}")),
        }
    };
    buf.truncate(len);
    Ok((buf, fds.into_iter().next()))
}

/// Write `text`, then `held` (bytes the terminal already turned into output), as the
/// terminal's output: through a slave opened from the master itself, so no path (in whatever
/// mount namespace) is involved; never blocks.
fn write_through(master: &OwnedFd, text: &[u8], held: &[u8]) -> Result<(), String> {
    // SAFETY: TIOCGPTPEER on a descriptor we own; the result is a new descriptor or -1.
    let fd = unsafe {
        libc::ioctl(
            master.as_raw_fd(),
            libc::TIOCGPTPEER,
            libc::O_RDWR | libc::O_NOCTTY | libc::O_NONBLOCK | libc::O_CLOEXEC,
        )
    };
    if fd < 0 {
        return Err(format!(
            "cannot open the container's terminal: {}",
            std::io::Error::last_os_error()
        ));
    }
    // SAFETY: a new descriptor that nothing else owns.
    let slave = std::fs::File::from(unsafe { OwnedFd::from_raw_fd(fd) });
    let mut bytes = text.to_vec();
    // Held output went through the terminal's output processing once already: with ONLCR
    // on, it would be processed again (CR CR LF), so undo it first.
    let onlcr = nix::sys::termios::tcgetattr(&slave).is_ok_and(|t| {
        use nix::sys::termios::OutputFlags;
        t.output_flags
            .contains(OutputFlags::OPOST | OutputFlags::ONLCR)
    });
    if onlcr {
        bytes.extend_from_slice(&undo_onlcr(held));
    } else {
        bytes.extend_from_slice(held);
    }
    use std::io::Write;
    (&slave)
        .write_all(&bytes)
        .map_err(|e| format!("cannot write to the container's terminal: {e}"))
}

/// CR LF back to LF.
fn undo_onlcr(b: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while let Some(&c) = b.get(i) {
        if c == b'\r' && b.get(i + 1) == Some(&b'\n') {
            i += 1;
            continue;
        }
        out.push(c);
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    /// A real pty pair: (master, slave path) as a runtime makes it.
    fn openpty() -> OwnedFd {
        // SAFETY: plain libc calls on a descriptor we own.
        unsafe {
            let m = libc::posix_openpt(libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC);
            assert!(m >= 0);
            assert_eq!(libc::grantpt(m), 0);
            assert_eq!(libc::unlockpt(m), 0);
            OwnedFd::from_raw_fd(m)
        }
    }

    #[test]
    fn the_terminal_reaches_the_caller_with_the_text_first() {
        let d = tempfile::tempdir().unwrap();
        let real = d.path().join("caller.sock");
        let caller = UnixListener::bind(&real).unwrap();
        let relay = Relay::start(real.clone(), "execguard: hello\n".into(), false).unwrap();
        assert!(relay.path().exists());
        let made = relay.path().to_path_buf();

        // The runtime's side: connect, send the master with the terminal's name.
        let master = openpty();
        let _rt = send_master(relay.path(), &master, b"/dev/pts/7");
        drop(master);

        // The caller's side gets the same payload and a working master.
        let (conn, _) = caller.accept().unwrap();
        let (payload, got) = recv_fd(conn.as_raw_fd()).unwrap();
        assert_eq!(payload, b"/dev/pts/7");
        let got = got.expect("a terminal");
        let mut f = std::fs::File::from(got);
        let mut buf = [0u8; 64];
        let n = f.read(&mut buf).unwrap();
        // ONLCR turns the LF into CR LF, as on any terminal.
        assert_eq!(&buf[..n], b"execguard: hello\r\n");
        for _ in 0..100 {
            if relay.thread.as_ref().is_some_and(JoinHandle::is_finished) {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        assert_eq!(relay.finish(true), Some(Ok(())));
        assert!(!made.exists(), "the private socket is removed");
        assert!(!made.parent().unwrap().exists(), "and its folder");
    }

    /// A process's side of the terminal, kept open while the test runs.
    fn process_side(master: &OwnedFd) -> OwnedFd {
        // SAFETY: TIOCGPTPEER on our own master; the result is checked.
        let fd = unsafe { libc::ioctl(master.as_raw_fd(), libc::TIOCGPTPEER, libc::O_RDWR) };
        assert!(fd >= 0);
        // SAFETY: a descriptor just made.
        unsafe { OwnedFd::from_raw_fd(fd) }
    }

    /// The runtime's side: connect to the relay's socket and send `master` with `payload` (the
    /// terminal's name) as runc does.
    fn send_master(sock: &Path, master: &OwnedFd, payload: &[u8]) -> UnixStream {
        let rt = UnixStream::connect(sock).unwrap();
        let fds = [master.as_raw_fd()];
        sendmsg::<()>(
            rt.as_raw_fd(),
            &[IoSlice::new(payload)],
            &[ControlMessage::ScmRights(&fds)],
            MsgFlags::empty(),
            None,
        )
        .unwrap();
        rt
    }

    /// [`send_master`] to `relay` with the name `/dev/pts/3`.
    fn hand_over(relay: &Relay, master: &OwnedFd) -> UnixStream {
        send_master(relay.path(), master, b"/dev/pts/3")
    }

    /// The caller's side: the master from its socket, read to the end (EIO).
    fn read_all(caller: &UnixListener) -> Vec<u8> {
        let (conn, _) = caller.accept().unwrap();
        let (_, got) = recv_fd(conn.as_raw_fd()).unwrap();
        let mut f = std::fs::File::from(got.expect("a terminal"));
        let mut out = Vec::new();
        let _ = f.read_to_end(&mut out);
        out
    }

    #[test]
    fn a_failure_predicted_puts_the_text_before_what_the_runtime_wrote() {
        let d = tempfile::tempdir().unwrap();
        let real = d.path().join("caller.sock");
        let caller = UnixListener::bind(&real).unwrap();
        let relay = Relay::start(real, "execguard: why\n".into(), true).unwrap();
        let master = openpty();
        // The runtime's init writes its error through the slave and dies before the hand-off.
        // SAFETY: ptsname_r into a local buffer; open of the returned path.
        let slave_path = unsafe {
            let mut buf = [0 as libc::c_char; 64];
            assert_eq!(
                libc::ptsname_r(master.as_raw_fd(), buf.as_mut_ptr(), buf.len()),
                0
            );
            std::ffi::CStr::from_ptr(buf.as_ptr())
                .to_string_lossy()
                .into_owned()
        };
        let mut slave = std::fs::OpenOptions::new()
            .write(true)
            .open(&slave_path)
            .unwrap();
        use std::io::Write;
        slave
            .write_all(b"exec /bin/app: exec format error\n")
            .unwrap();
        drop(slave);
        let _rt = hand_over(&relay, &master);
        drop(master);
        let started = Instant::now();
        let out = read_all(&caller);
        assert_eq!(
            String::from_utf8_lossy(&out),
            "execguard: why\r\nexec /bin/app: exec format error\r\n"
        );
        assert!(
            started.elapsed() < HOLD_LIMIT,
            "a closed terminal is passed on at once, not after the hold limit"
        );
        assert_eq!(relay.finish(true), Some(Ok(())));
    }

    #[test]
    fn output_written_before_a_late_hand_off_still_follows_the_text() {
        let d = tempfile::tempdir().unwrap();
        let real = d.path().join("caller.sock");
        let caller = UnixListener::bind(&real).unwrap();
        let relay = Relay::start(real, "execguard: why\n".into(), true).unwrap();
        let relay_path = relay.path().to_path_buf();
        let master = openpty();
        let process_side = process_side(&master);
        nix::unistd::write(&process_side, b"exec: Exec format error\n").unwrap();
        // The runtime returned before the relay got the master (a loaded machine): the hold
        // ends at once, but what is already on the terminal must still come after the text.
        let ender = std::thread::spawn(move || relay.finish(true));
        std::thread::sleep(Duration::from_millis(20));
        let _rt = send_master(&relay_path, &master, b"/dev/pts/3");
        drop(master);
        let (conn, _) = caller.accept().unwrap();
        let (_, got) = recv_fd(conn.as_raw_fd()).unwrap();
        drop(process_side);
        let mut f = std::fs::File::from(got.expect("a terminal"));
        let mut out = Vec::new();
        let _ = f.read_to_end(&mut out);
        assert_eq!(
            String::from_utf8_lossy(&out),
            "execguard: why\r\nexec: Exec format error\r\n"
        );
        assert_eq!(ender.join().unwrap(), Some(Ok(())));
    }

    #[test]
    fn a_process_that_runs_is_held_no_longer_than_the_limit() {
        let d = tempfile::tempdir().unwrap();
        let real = d.path().join("caller.sock");
        let caller = UnixListener::bind(&real).unwrap();
        let relay = Relay::start(real, "execguard: why\n".into(), true).unwrap();
        let master = openpty();
        let process_side = process_side(&master);
        let _rt = hand_over(&relay, &master);
        drop(master);
        let started = Instant::now();
        let (conn, _) = caller.accept().unwrap();
        let waited = started.elapsed();
        let (_, got) = recv_fd(conn.as_raw_fd()).unwrap();
        assert!(got.is_some());
        assert!(
            waited >= HOLD_LIMIT - Duration::from_millis(50),
            "{waited:?}"
        );
        assert!(waited < HOLD_LIMIT * 4, "{waited:?}");
        drop(process_side);
        assert_eq!(relay.finish(true), Some(Ok(())));
    }

    #[test]
    fn the_runtimes_end_stops_the_hold_at_once() {
        let d = tempfile::tempdir().unwrap();
        let real = d.path().join("caller.sock");
        let caller = UnixListener::bind(&real).unwrap();
        let relay = Relay::start(real, "execguard: why\n".into(), true).unwrap();
        let master = openpty();
        let _process_side = process_side(&master);
        let _rt = hand_over(&relay, &master);
        drop(master);
        let started = Instant::now();
        let ender = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(50));
            relay.finish(true)
        });
        let (conn, _) = caller.accept().unwrap();
        let waited = started.elapsed();
        assert!(recv_fd(conn.as_raw_fd()).unwrap().1.is_some());
        assert!(
            waited < HOLD_LIMIT / 2,
            "held past the runtime's end: {waited:?}"
        );
        assert_eq!(ender.join().unwrap(), Some(Ok(())));
    }

    #[test]
    fn onlcr_is_undone_exactly() {
        assert_eq!(undo_onlcr(b"a\r\nb\rc\n\r"), b"a\nb\rc\n\r");
        assert_eq!(undo_onlcr(b""), b"");
    }

    #[test]
    fn no_terminal_means_nothing_to_report() {
        let d = tempfile::tempdir().unwrap();
        let relay = Relay::start(d.path().join("caller.sock"), "x".into(), false).unwrap();
        // The runtime connects and goes away without a terminal.
        drop(UnixStream::connect(relay.path()).unwrap());
        for _ in 0..100 {
            if relay.thread.as_ref().is_some_and(JoinHandle::is_finished) {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        assert_eq!(relay.finish(false), Some(Ok(())));
        // It never connects at all.
        let relay = Relay::start(d.path().join("caller.sock"), "x".into(), false).unwrap();
        assert_eq!(relay.finish(false), None);
    }

    #[test]
    fn an_unreachable_caller_is_an_error_not_a_hang() {
        let d = tempfile::tempdir().unwrap();
        let relay = Relay::start(d.path().join("nobody.sock"), "x".into(), false).unwrap();
        let master = openpty();
        let _rt = send_master(relay.path(), &master, b"p");
        for _ in 0..100 {
            if relay.thread.as_ref().is_some_and(JoinHandle::is_finished) {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        let r = relay.finish(true).expect("finished");
        assert!(r.unwrap_err().contains("nobody.sock"));
    }
}
