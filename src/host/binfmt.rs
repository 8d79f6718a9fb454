//! binfmt_misc state of the host, and matching of a file against it the way the kernel does.
//!
//! This module owns:
//! - reading a binfmt_misc mount (`status` and one file per registered entry) into a [`State`]
//!   whose entries are in the kernel's match order ([`load`]);
//! - parsing the entry file text the kernel prints (fs/binfmt_misc.c `bm_entry_read` /
//!   `entry_status`, [`parse_entry`]) and the registration line written to `register`
//!   (fs/binfmt_misc.c `create_entry`, [`parse_register_line`]), and producing both
//!   ([`to_entry_text`], [`to_register_line`]);
//! - deciding which entry the kernel will hand a file to (fs/binfmt_misc.c `load_misc_binary`
//!   and `check_file`, called `search_binfmt_handler` in newer kernels: [`select`],
//!   [`entry_matches`]) and which matching entries are switched off ([`disabled_matches`]);
//! - describing an entry for humans: its flags ([`describe_flags`]) and the CPU architecture it
//!   emulates ([`emulated_arch`]).
//!
//! What it does not decide: whether the interpreter exists inside a container (an entry without
//! the F flag is opened by path at exec time, in the mount namespace of the process calling
//! execve), nor which binfmt_misc instance a process uses. Since Linux 6.7 a user namespace may
//! mount its own instance, and `load_misc_binary` (via `load_binfmt_misc`) falls back to the
//! nearest ancestor's instance when the caller's user namespace has none, so the directory read
//! here is the one the *reader* sees, which can differ from what a container sees.
//!
//! Match order. The kernel keeps entries newest-first (`list_add` at the head in
//! `bm_register_write`) and `check_file` returns the first enabled entry that matches. `load`
//! recovers that order from the directory listing: the binfmt_misc root uses
//! `simple_dir_operations`, whose `dcache_readdir` walks the parent's list of child dentries
//! from its head, and `d_alloc` adds each new dentry at the head. The dentry of an entry is
//! allocated by `lookup_one_len` inside `bm_register_write` (a negative dentry left by an
//! earlier failed lookup does not survive: binfmt_misc uses `simple_dentry_operations`, whose
//! `d_delete` drops unused dentries at once), so listing order = registration order, newest
//! first, with `register` and `status` (created at mount) last. Verified on Linux 6.18 by
//! registering `eg-test-a` then `eg-test-b` with the same magic (listing: b, a, register,
//! status; executing a file with that magic ran b's interpreter), then a `stat` of the missing
//! name `eg-test-c` followed by registering it (listing: c, b, a; c ran), then removing and
//! re-registering b (listing: b, c, a; b ran), then disabling b (c ran). Inode numbers are not
//! an alternative: `get_next_ino` hands out per-CPU batches, which are not ordered across CPUs.

use std::ffi::OsString;
use std::fmt::Write as _;
use std::fs::{File, OpenOptions};
use std::io::{self, Read};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

/// Size of the header buffer the kernel matches magic against (include/uapi/linux/binfmts.h
/// `BINPRM_BUF_SIZE`); fs/exec.c `prepare_binprm` zero-fills it before reading the file.
pub const BINPRM_BUF_SIZE: usize = 256;

/// Longest line `register` accepts (fs/binfmt_misc.c `MAX_REGISTER_LENGTH`).
pub const MAX_REGISTER_LENGTH: usize = 1920;

/// Cap on the bytes read from one entry file or `status`; the kernel formats an entry into one
/// page, and the longest possible entry is well under 4 KiB.
pub const ENTRY_READ_CAP: usize = 4096;

/// Where binfmt_misc is normally mounted.
pub const DEFAULT_ROOT: &str = "/proc/sys/fs/binfmt_misc";

/// Longest name a dentry may have (`NAME_MAX`); `simple_lookup` refuses longer names.
const NAME_MAX: usize = 255;

/// Per-entry flags, as set by the registration line and shown on the `flags:` line.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Flags {
    /// P: the interpreter receives the original `argv[0]` (`MISC_FMT_PRESERVE_ARGV0`).
    pub preserve_argv0: bool,
    /// O: the interpreter gets an open file descriptor of the binary (`MISC_FMT_OPEN_BINARY`).
    pub open_binary: bool,
    /// C: credentials (setuid, capabilities) are computed from the binary
    /// (`MISC_FMT_CREDENTIALS`; on registration it implies O).
    pub credentials: bool,
    /// F: the interpreter was opened at registration and is reused from that open file
    /// (`MISC_FMT_OPEN_FILE`), so it need not exist in the exec'ing process's mount namespace.
    pub fix_binary: bool,
}

impl Flags {
    /// The flag letters in the order the kernel prints them (`entry_status`): a subset of "POCF".
    pub fn letters(&self) -> String {
        let mut s = String::new();
        for (set, c) in [
            (self.preserve_argv0, 'P'),
            (self.open_binary, 'O'),
            (self.credentials, 'C'),
            (self.fix_binary, 'F'),
        ] {
            if set {
                s.push(c);
            }
        }
        s
    }
}

/// How an entry recognises a file.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Matcher {
    /// Type `M`: the header bytes at `offset` must equal `magic` on the bits set in `mask`
    /// (all bits when `mask` is `None`). The kernel guarantees `mask.len() == magic.len()` and
    /// `offset + magic.len() <= 256`.
    Magic {
        /// Offset of the magic in the header.
        offset: usize,
        /// The bytes to compare.
        magic: Vec<u8>,
        /// Bits that take part in the comparison.
        mask: Option<Vec<u8>>,
    },
    /// Type `E`: the text after the last `.` of the exec'd path (without the dot).
    Extension(Vec<u8>),
}

/// One registered handler.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Entry {
    /// The entry's name (its file name under the binfmt_misc root).
    pub name: String,
    /// Whether this entry is switched on (first line `enabled` / `disabled`).
    pub enabled: bool,
    /// What the entry matches.
    pub matcher: Matcher,
    /// Interpreter path, exactly as registered (bytes, not necessarily UTF-8).
    pub interpreter: OsString,
    /// P, O, C, F.
    pub flags: Flags,
}

/// What a binfmt_misc root holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum State {
    /// No `status` file under the root: binfmt_misc is not mounted there (or not built in).
    NotMounted,
    /// `status` exists but the state cannot be read (permission, I/O, unexpected content, a
    /// directory listing that fails); the message names the path.
    Unreadable(String),
    /// The mount was read.
    Mounted {
        /// The global switch (`status`): when false the kernel uses no entry at all.
        enabled: bool,
        /// Entries in the kernel's match order (newest registration first).
        entries: Vec<Entry>,
        /// Entry files that were present but could not be read or parsed, one message each
        /// (naming the entry). They are left out of `entries`, so a caller should report
        /// that the match result may be incomplete when this is not empty.
        skipped: Vec<String>,
    },
}

/// Why an entry file or a registration line was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// The text of an entry file (as `entry_status` prints it) is not valid.
    #[error("binfmt_misc entry {name}: {reason}")]
    Entry {
        /// Entry name (escaped for display).
        name: String,
        /// What is wrong.
        reason: String,
    },
    /// A registration line is one `create_entry` would refuse (EINVAL), or one
    /// `bm_register_write` would refuse for its name.
    #[error("binfmt_misc register line {line}: {reason}")]
    Register {
        /// The line, escaped and shortened for display.
        line: String,
        /// What is wrong.
        reason: String,
    },
}

/// Escape bytes for messages, keeping at most `max` input bytes.
fn show(bytes: &[u8], max: usize) -> String {
    let mut s = String::new();
    for &b in bytes.iter().take(max) {
        s.extend(std::ascii::escape_default(b).map(char::from));
    }
    if bytes.len() > max {
        s.push_str("...");
    }
    s
}

// ---------------------------------------------------------------------------------------------
// Reading a mount
// ---------------------------------------------------------------------------------------------

/// Open a file for reading without following a final symlink, without blocking on a FIFO and
/// without acquiring a controlling terminal; refuse anything but a regular file, and read at
/// most `cap + 1` bytes (so the caller can tell that the cap was exceeded).
fn read_bounded(path: &Path, cap: usize) -> io::Result<Vec<u8>> {
    let file: File = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY | libc::O_NOFOLLOW)
        .open(path)?;
    if !file.metadata()?.file_type().is_file() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "not a regular file",
        ));
    }
    let mut buf = Vec::new();
    let limit = u64::try_from(cap).unwrap_or(u64::MAX).saturating_add(1);
    file.take(limit).read_to_end(&mut buf)?;
    Ok(buf)
}

/// Read the binfmt_misc state under `root`, entries in the kernel's match order.
///
/// `root` is normally [`DEFAULT_ROOT`]; it is a parameter so tests can use temporary trees.
/// The order is the directory listing order, which on a real binfmt_misc mount is
/// newest-first (see the module documentation for why and how that was verified). `register`
/// and `status` are not entries. An entry that disappears while being read is left out
/// silently (it was removed); one that cannot be read or parsed goes to `skipped`.
///
/// On a systemd host the root may be an automount point: reading `status` then triggers the
/// mount and waits for it.
pub fn load(root: &Path) -> State {
    let status_path = root.join("status");
    let status = match read_bounded(&status_path, ENTRY_READ_CAP) {
        Ok(s) => s,
        Err(e) => {
            return match e.kind() {
                io::ErrorKind::NotFound | io::ErrorKind::NotADirectory => State::NotMounted,
                _ => State::Unreadable(format!(
                    "cannot read binfmt_misc status {}: {e}",
                    status_path.display()
                )),
            };
        }
    };
    let enabled = match status.trim_ascii_end() {
        b"enabled" => true,
        b"disabled" => false,
        other => {
            return State::Unreadable(format!(
                "binfmt_misc status {}: unexpected content \"{}\"",
                status_path.display(),
                show(other, 64)
            ));
        }
    };

    let dir = match std::fs::read_dir(root) {
        Ok(d) => d,
        Err(e) => {
            return State::Unreadable(format!(
                "cannot list binfmt_misc directory {}: {e}",
                root.display()
            ));
        }
    };
    let mut entries = Vec::new();
    let mut skipped = Vec::new();
    for item in dir {
        let item = match item {
            Ok(i) => i,
            // A listing cut short would give a wrong match order: report the whole state as
            // unreadable rather than a partial one.
            Err(e) => {
                return State::Unreadable(format!(
                    "cannot list binfmt_misc directory {}: {e}",
                    root.display()
                ));
            }
        };
        let file_name = item.file_name();
        if file_name == "register" || file_name == "status" {
            continue;
        }
        let name = String::from_utf8_lossy(file_name.as_bytes()).into_owned();
        let path = item.path();
        let content = match read_bounded(&path, ENTRY_READ_CAP) {
            Ok(c) => c,
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => {
                skipped.push(format!(
                    "cannot read binfmt_misc entry {}: {e}",
                    path.display()
                ));
                continue;
            }
        };
        if content.len() > ENTRY_READ_CAP {
            skipped.push(format!(
                "binfmt_misc entry {}: larger than {ENTRY_READ_CAP} bytes",
                path.display()
            ));
            continue;
        }
        match parse_entry(&name, &content) {
            Ok(e) => entries.push(e),
            Err(e) => {
                tracing::debug!(entry = %path.display(), error = %e, "skipping binfmt_misc entry");
                skipped.push(e.to_string());
            }
        }
    }
    State::Mounted {
        enabled,
        entries,
        skipped,
    }
}

// ---------------------------------------------------------------------------------------------
// Entry file text (fs/binfmt_misc.c entry_status)
// ---------------------------------------------------------------------------------------------

/// Check a name the way `create_entry` and `lookup_one_len` do: non-empty, not `.` or `..`,
/// no `/` or NUL, at most `NAME_MAX` bytes.
fn name_problem(name: &[u8]) -> Option<&'static str> {
    if name.is_empty() {
        Some("name is empty")
    } else if name == b"." || name == b".." {
        Some("name is . or ..")
    } else if name.contains(&b'/') {
        Some("name contains /")
    } else if name.contains(&0) {
        Some("name contains a NUL byte")
    } else if name.len() > NAME_MAX {
        Some("name is longer than 255 bytes")
    } else {
        None
    }
}

/// Decode the hex the kernel prints with `bin2hex` (lower case; upper case is accepted).
fn decode_hex(s: &[u8]) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    s.chunks_exact(2)
        .map(|pair| match pair {
            [h, l] => Some((hex_val(*h)? << 4) | hex_val(*l)?),
            _ => None,
        })
        .collect()
}

fn hex_val(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

/// Parse a decimal that the kernel printed with `%i` for a non-negative `int`.
fn parse_offset(s: &[u8]) -> Option<usize> {
    if s.is_empty() || !s.iter().all(u8::is_ascii_digit) || s.len() > 10 {
        return None;
    }
    let v: u64 = std::str::from_utf8(s).ok()?.parse().ok()?;
    if v > i32::MAX as u64 {
        return None;
    }
    usize::try_from(v).ok()
}

/// Line keys of the entry file format, as printed by `entry_status`.
const KEY_INTERPRETER: &[u8] = b"interpreter ";
const KEY_FLAGS: &[u8] = b"flags:";
const KEY_OFFSET: &[u8] = b"offset ";
const KEY_MAGIC: &[u8] = b"magic ";
const KEY_MASK: &[u8] = b"mask ";
const KEY_EXTENSION: &[u8] = b"extension .";

fn is_known_key_line(line: &[u8]) -> bool {
    [KEY_FLAGS, KEY_OFFSET, KEY_MAGIC, KEY_MASK, KEY_EXTENSION]
        .iter()
        .any(|k| line.starts_with(k))
}

/// Parse the content of one entry file (what reading `/proc/sys/fs/binfmt_misc/NAME` gives).
///
/// The kernel prints (fs/binfmt_misc.c `entry_status`):
///
/// ```text
/// enabled                      (or: disabled)
/// interpreter /usr/bin/qemu-aarch64-static
/// flags: POCF                  (letters in this order, possibly none: "flags: ")
/// offset 0                     \
/// magic 7f454c46...            |  type M
/// mask ffffffff...             /  (mask line only when a mask was given)
/// extension .jar                  type E, instead of the three lines above
/// ```
///
/// Strict where the kernel is: the first line must be `enabled` or `disabled`; an
/// interpreter is required; exactly one of extension or magic; magic non-empty, even-length
/// hex; mask the same length as magic; `offset + magic length <= 256`; extension non-empty
/// and without `/`; no NUL byte anywhere; no line given twice. Lenient where the text could
/// vary: trailing white space after the status, flags, offset and hex values; upper-case hex;
/// flag letters in any order (unknown letters are ignored); empty lines and unknown lines
/// (a future kernel's additions) are ignored; a missing `flags:` line means no flags and a
/// missing `offset` line means 0. The interpreter is printed raw with `%s`, so it may contain
/// a newline: lines after `interpreter` that do not start with a known key belong to it.
pub fn parse_entry(name: &str, content: &[u8]) -> Result<Entry, ParseError> {
    let err = |reason: &str| ParseError::Entry {
        name: show(name.as_bytes(), 80),
        reason: reason.to_string(),
    };
    // The name is shown lossily (a kernel name need not be UTF-8): each U+FFFD stands for at
    // least one raw byte, so count it as one, or a real 255-byte name would be refused here.
    let as_checked: String = name
        .chars()
        .map(|c| if c == '\u{FFFD}' { '?' } else { c })
        .collect();
    if let Some(p) = name_problem(as_checked.as_bytes()) {
        return Err(err(p));
    }
    if content.len() > ENTRY_READ_CAP {
        return Err(err("entry text is larger than 4096 bytes"));
    }
    if content.contains(&0) {
        return Err(err("entry text contains a NUL byte"));
    }
    let body = content.strip_suffix(b"\n").unwrap_or(content);
    let mut lines = body.split(|&b| b == b'\n').peekable();

    let enabled = match lines.next().map(<[u8]>::trim_ascii_end) {
        Some(b"enabled") => true,
        Some(b"disabled") => false,
        Some(b"") | None => return Err(err("entry text is empty")),
        Some(other) => {
            return Err(err(&format!(
                "first line is \"{}\", expected enabled or disabled",
                show(other, 40)
            )));
        }
    };

    let mut interpreter: Option<Vec<u8>> = None;
    let mut flags: Option<Flags> = None;
    let mut offset: Option<usize> = None;
    let mut magic: Option<Vec<u8>> = None;
    let mut mask: Option<Vec<u8>> = None;
    let mut extension: Option<Vec<u8>> = None;

    while let Some(line) = lines.next() {
        if let Some(rest) = line.strip_prefix(KEY_INTERPRETER) {
            if interpreter.is_some() {
                return Err(err("interpreter line given twice"));
            }
            let mut value = rest.to_vec();
            while let Some(next) = lines.peek() {
                if is_known_key_line(next) {
                    break;
                }
                value.push(b'\n');
                value.extend_from_slice(next);
                lines.next();
            }
            interpreter = Some(value);
        } else if let Some(rest) = line.strip_prefix(KEY_FLAGS) {
            if flags.is_some() {
                return Err(err("flags line given twice"));
            }
            let mut f = Flags::default();
            for &c in rest.trim_ascii() {
                match c {
                    b'P' => f.preserve_argv0 = true,
                    b'O' => f.open_binary = true,
                    b'C' => f.credentials = true,
                    b'F' => f.fix_binary = true,
                    _ => {
                        tracing::debug!(entry = name, flag = %char::from(c), "unknown binfmt_misc flag");
                    }
                }
            }
            flags = Some(f);
        } else if let Some(rest) = line.strip_prefix(KEY_OFFSET) {
            if offset.is_some() {
                return Err(err("offset line given twice"));
            }
            let rest = rest.trim_ascii_end();
            offset = Some(parse_offset(rest).ok_or_else(|| {
                err(&format!(
                    "offset \"{}\" is not a non-negative int",
                    show(rest, 40)
                ))
            })?);
        } else if let Some(rest) = line.strip_prefix(KEY_MAGIC) {
            if magic.is_some() {
                return Err(err("magic line given twice"));
            }
            let rest = rest.trim_ascii_end();
            let m = decode_hex(rest)
                .ok_or_else(|| err(&format!("magic \"{}\" is not hex", show(rest, 40))))?;
            magic = Some(m);
        } else if let Some(rest) = line.strip_prefix(KEY_MASK) {
            if mask.is_some() {
                return Err(err("mask line given twice"));
            }
            let rest = rest.trim_ascii_end();
            let m = decode_hex(rest)
                .ok_or_else(|| err(&format!("mask \"{}\" is not hex", show(rest, 40))))?;
            mask = Some(m);
        } else if let Some(rest) = line.strip_prefix(KEY_EXTENSION) {
            if extension.is_some() {
                return Err(err("extension line given twice"));
            }
            extension = Some(rest.to_vec());
        } else if !line.trim_ascii().is_empty() {
            tracing::debug!(entry = name, line = %show(line, 80), "unknown binfmt_misc entry line");
        }
    }

    let interpreter = match interpreter {
        Some(i) if !i.is_empty() => OsString::from_vec(i),
        Some(_) => return Err(err("interpreter is empty")),
        None => return Err(err("no interpreter line")),
    };
    let matcher = match (extension, magic) {
        (Some(_), Some(_)) => return Err(err("has both an extension and a magic")),
        (Some(_), None) if offset.is_some() || mask.is_some() => {
            return Err(err("extension entry has an offset or mask line"));
        }
        (Some(ext), None) => {
            if ext.is_empty() {
                return Err(err("extension is empty"));
            }
            if ext.contains(&b'/') {
                return Err(err("extension contains /"));
            }
            Matcher::Extension(ext)
        }
        (None, Some(magic)) => {
            if magic.is_empty() {
                return Err(err("magic is empty"));
            }
            if let Some(m) = &mask
                && m.len() != magic.len()
            {
                return Err(err(&format!(
                    "mask has {} bytes but magic has {}",
                    m.len(),
                    magic.len()
                )));
            }
            let offset = offset.unwrap_or(0);
            if magic.len() > BINPRM_BUF_SIZE || BINPRM_BUF_SIZE - magic.len() < offset {
                return Err(err(&format!(
                    "offset {offset} plus {} magic bytes is past the 256-byte header",
                    magic.len()
                )));
            }
            Matcher::Magic {
                offset,
                magic,
                mask,
            }
        }
        (None, None) => {
            if mask.is_some() {
                return Err(err("mask line without a magic line"));
            }
            return Err(err("neither a magic nor an extension line"));
        }
    };
    Ok(Entry {
        name: name.to_string(),
        enabled,
        matcher,
        interpreter,
        flags: flags.unwrap_or_default(),
    })
}

/// The entry file text the kernel prints for `e` (fs/binfmt_misc.c `entry_status`).
pub fn to_entry_text(e: &Entry) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(if e.enabled {
        b"enabled\n"
    } else {
        b"disabled\n"
    });
    out.extend_from_slice(KEY_INTERPRETER);
    out.extend_from_slice(e.interpreter.as_bytes());
    out.extend_from_slice(b"\nflags: ");
    out.extend_from_slice(e.flags.letters().as_bytes());
    out.push(b'\n');
    match &e.matcher {
        Matcher::Extension(ext) => {
            out.extend_from_slice(KEY_EXTENSION);
            out.extend_from_slice(ext);
            out.push(b'\n');
        }
        Matcher::Magic {
            offset,
            magic,
            mask,
        } => {
            let mut s = format!("offset {offset}\nmagic ");
            for b in magic {
                let _ = write!(s, "{b:02x}");
            }
            if let Some(mask) = mask {
                s.push_str("\nmask ");
                for b in mask {
                    let _ = write!(s, "{b:02x}");
                }
            }
            s.push('\n');
            out.extend_from_slice(s.as_bytes());
        }
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Registration line (fs/binfmt_misc.c create_entry)
// ---------------------------------------------------------------------------------------------

/// The registration buffer as `create_entry` sees it: the line followed by 8 copies of the
/// delimiter. Reads past that padding (where the kernel would read beyond its allocation)
/// are refused.
struct RegBuf<'a> {
    buf: Vec<u8>,
    del: u8,
    line: &'a [u8],
}

impl RegBuf<'_> {
    fn err(&self, reason: &str) -> ParseError {
        ParseError::Register {
            line: show(self.line, 120),
            reason: reason.to_string(),
        }
    }

    fn at(&self, i: usize) -> Result<u8, ParseError> {
        self.buf
            .get(i)
            .copied()
            .ok_or_else(|| self.err("field runs past the end of the line"))
    }

    fn slice(&self, from: usize, to: usize) -> &[u8] {
        self.buf.get(from..to).unwrap_or_default()
    }

    /// `strchr(p, del)`: index of the first delimiter at or after `from`, `None` when a NUL
    /// comes first (with a NUL delimiter both are the same byte).
    fn strchr(&self, from: usize) -> Result<Option<usize>, ParseError> {
        let mut i = from;
        loop {
            let c = self.at(i)?;
            if c == self.del {
                return Ok(Some(i));
            }
            if c == 0 {
                return Ok(None);
            }
            i = i.saturating_add(1);
        }
    }

    /// `scanarg`: skip a field that may hold `\xHH` escapes up to the delimiter. Returns the
    /// index just after the delimiter, `None` when `\x` is not followed by two hex digits.
    fn scanarg(&self, from: usize) -> Result<Option<usize>, ParseError> {
        let mut s = from;
        loop {
            let c = self.at(s)?;
            s = s.saturating_add(1);
            if c == self.del {
                return Ok(Some(s));
            }
            if c == b'\\' && self.at(s)? == b'x' {
                s = s.saturating_add(1);
                for _ in 0..2 {
                    if !self.at(s)?.is_ascii_hexdigit() {
                        return Ok(None);
                    }
                    s = s.saturating_add(1);
                }
            }
        }
    }
}

/// `string_unescape_inplace(s, UNESCAPE_HEX)` (lib/string_helpers.c): the string ends at the
/// first NUL; `\x` takes one or two hex digits; any other backslash pair is copied as is.
fn unescape_hex(raw: &[u8]) -> Vec<u8> {
    let src = raw.split(|&b| b == 0).next().unwrap_or_default();
    let mut out = Vec::with_capacity(src.len());
    let mut i = 0;
    while let Some(&c) = src.get(i) {
        if c == b'\\' && src.get(i + 1).is_some() {
            i += 1;
            if src.get(i) == Some(&b'x')
                && let Some(d1) = src.get(i + 1).copied().and_then(hex_val)
            {
                let mut num = d1;
                let mut j = i + 2;
                if let Some(d2) = src.get(j).copied().and_then(hex_val) {
                    num = (num << 4) | d2;
                    j += 1;
                }
                out.push(num);
                i = j;
                continue;
            }
            out.push(b'\\');
        }
        if let Some(&c) = src.get(i) {
            out.push(c);
        }
        i += 1;
    }
    out
}

/// `kstrtoint(s, 10, &v)` followed by the `v < 0` check in `create_entry`: optional `+`,
/// (or `-`, which only `-0` survives), decimal digits, optional trailing newline, `int` range.
fn kstrtoint_nonneg(s: &[u8]) -> Result<usize, &'static str> {
    let (negative, digits) = match s.split_first() {
        Some((b'-', rest)) => (true, rest),
        Some((b'+', rest)) => (false, rest),
        _ => (false, s),
    };
    let n = digits.iter().take_while(|c| c.is_ascii_digit()).count();
    if n == 0 {
        return Err("offset is not a decimal number");
    }
    let (num, rest) = digits.split_at(n);
    let rest = rest.strip_prefix(b"\n").unwrap_or(rest);
    if !rest.is_empty() {
        return Err("offset is not a decimal number");
    }
    let mut v: u64 = 0;
    for &c in num {
        v = v
            .checked_mul(10)
            .and_then(|v| v.checked_add(u64::from(c - b'0')))
            .ok_or("offset is out of range")?;
    }
    if negative && v != 0 {
        return Err("offset is negative");
    }
    if v > i32::MAX as u64 {
        return Err("offset is out of range");
    }
    usize::try_from(v).map_err(|_| "offset is out of range")
}

/// Parse a line as written to `register` (`:name:type:offset:magic:mask:interpreter:flags`,
/// the first byte being the delimiter), exactly as fs/binfmt_misc.c `create_entry` does; the
/// result is enabled, as a new registration is.
///
/// Mirrors, among others: 11..=1920 bytes; a field ends at the first delimiter and a NUL
/// byte before it is an error (`strchr`); the name is non-empty, not `.`/`..`, without `/`;
/// type `M` or `E`; the offset is a `kstrtoint` decimal `>= 0` (empty means 0); magic and mask
/// take `\xHH` escapes (`scanarg` requires two hex digits after `\x`, then
/// `string_unescape_inplace` decodes and stops at the first NUL); the magic is non-empty, an
/// empty mask means none, a given mask has the magic's length; `offset + len <= 256`; an
/// extension is taken raw, non-empty, without `/`; the interpreter is raw and non-empty; the
/// flags field is `P`/`O`/`C`/`F` in any order (C implies O), an optional newline, then the
/// end of the line. Also refused, as `bm_register_write` would: names longer than 255 bytes
/// (`simple_lookup`: ENAMETOOLONG) and `register`/`status` (EEXIST).
pub fn parse_register_line(line: &[u8]) -> Result<Entry, ParseError> {
    let del = line.first().copied().unwrap_or(b':');
    let mut buf = line.to_vec();
    buf.extend_from_slice(&[del; 8]);
    let b = RegBuf { buf, del, line };
    let count = line.len();
    if count < 11 {
        return Err(b.err("line is shorter than 11 bytes"));
    }
    if count > MAX_REGISTER_LENGTH {
        return Err(b.err("line is longer than 1920 bytes"));
    }

    // Name.
    let mut p = 1;
    let s = b
        .strchr(p)?
        .ok_or_else(|| b.err("name field has a NUL byte"))?;
    let name = b.slice(p, s).to_vec();
    if let Some(problem) = name_problem(&name) {
        return Err(b.err(problem));
    }
    if name == b"register" || name == b"status" {
        return Err(b.err("name is reserved (register or status already exists)"));
    }
    p = s + 1;

    // Type.
    let kind = b.at(p)?;
    p += 1;
    if kind != b'E' && kind != b'M' {
        return Err(b.err("type is neither M nor E"));
    }
    if b.at(p)? != del {
        return Err(b.err("type field is longer than one byte"));
    }
    p += 1;

    let matcher = if kind == b'M' {
        let s = b
            .strchr(p)?
            .ok_or_else(|| b.err("offset field has a NUL byte"))?;
        let offset_text = b.slice(p, s);
        let offset = if offset_text.is_empty() {
            0
        } else {
            kstrtoint_nonneg(offset_text).map_err(|r| b.err(r))?
        };
        p = s + 1;

        let magic_start = p;
        p = b
            .scanarg(p)?
            .ok_or_else(|| b.err("magic has \\x without two hex digits"))?;
        let magic_raw = b.slice(magic_start, p - 1);
        if matches!(magic_raw.first(), None | Some(0)) {
            return Err(b.err("magic is empty"));
        }
        let mask_start = p;
        p = b
            .scanarg(p)?
            .ok_or_else(|| b.err("mask has \\x without two hex digits"))?;
        let mask_raw = b.slice(mask_start, p - 1);
        let magic = unescape_hex(magic_raw);
        let mask = if matches!(mask_raw.first(), None | Some(0)) {
            None
        } else {
            let m = unescape_hex(mask_raw);
            if m.len() != magic.len() {
                return Err(b.err("mask length differs from magic length"));
            }
            Some(m)
        };
        if magic.len() > BINPRM_BUF_SIZE || BINPRM_BUF_SIZE - magic.len() < offset {
            return Err(b.err("offset plus magic length is past the 256-byte header"));
        }
        Matcher::Magic {
            offset,
            magic,
            mask,
        }
    } else {
        // The offset field is skipped.
        let s = b
            .strchr(p)?
            .ok_or_else(|| b.err("offset field has a NUL byte"))?;
        p = s + 1;
        let s = b
            .strchr(p)?
            .ok_or_else(|| b.err("extension field has a NUL byte"))?;
        let ext = b.slice(p, s).to_vec();
        p = s + 1;
        if ext.is_empty() {
            return Err(b.err("extension is empty"));
        }
        if ext.contains(&b'/') {
            return Err(b.err("extension contains /"));
        }
        // The mask field is skipped.
        let s = b
            .strchr(p)?
            .ok_or_else(|| b.err("mask field has a NUL byte"))?;
        p = s + 1;
        Matcher::Extension(ext)
    };

    let s = b
        .strchr(p)?
        .ok_or_else(|| b.err("interpreter field has a NUL byte"))?;
    let interpreter = b.slice(p, s).to_vec();
    p = s + 1;
    if interpreter.is_empty() {
        return Err(b.err("interpreter is empty"));
    }

    let mut flags = Flags::default();
    loop {
        match b.at(p)? {
            b'P' => flags.preserve_argv0 = true,
            b'O' => flags.open_binary = true,
            b'C' => {
                flags.credentials = true;
                flags.open_binary = true;
            }
            b'F' => flags.fix_binary = true,
            _ => break,
        }
        p += 1;
    }
    if b.at(p)? == b'\n' {
        p += 1;
    }
    if p > count {
        return Err(b.err("no delimiter after the interpreter field"));
    }
    if p != count {
        return Err(b.err("flags field has a byte other than P, O, C, F"));
    }

    Ok(Entry {
        name: String::from_utf8_lossy(&name).into_owned(),
        enabled: true,
        matcher,
        interpreter: OsString::from_vec(interpreter),
        flags,
    })
}

/// The line to write to `register` to create `e` (the inverse of [`parse_register_line`];
/// `enabled` is not part of it). Magic and mask are written fully `\xHH`-escaped; the
/// delimiter is `:` unless the name, extension or interpreter contains one, then the first of
/// `#!|%,;@~^=&*?` they do not contain. No trailing newline. The result is only accepted by
/// the kernel when `e` is valid (see [`parse_register_line`]).
pub fn to_register_line(e: &Entry) -> Vec<u8> {
    let interp = e.interpreter.as_bytes();
    let name = e.name.as_bytes();
    let ext: &[u8] = match &e.matcher {
        Matcher::Extension(x) => x,
        Matcher::Magic { .. } => &[],
    };
    let del = b":#!|%,;@~^=&*?"
        .iter()
        .copied()
        .find(|d| !name.contains(d) && !interp.contains(d) && !ext.contains(d))
        .unwrap_or(b':');
    let mut out = vec![del];
    out.extend_from_slice(name);
    out.push(del);
    match &e.matcher {
        Matcher::Magic {
            offset,
            magic,
            mask,
        } => {
            out.push(b'M');
            out.push(del);
            out.extend_from_slice(offset.to_string().as_bytes());
            out.push(del);
            let mut s = String::new();
            for b in magic {
                let _ = write!(s, "\\x{b:02x}");
            }
            out.extend_from_slice(s.as_bytes());
            out.push(del);
            s.clear();
            for b in mask.iter().flatten() {
                let _ = write!(s, "\\x{b:02x}");
            }
            out.extend_from_slice(s.as_bytes());
            out.push(del);
        }
        Matcher::Extension(x) => {
            out.push(b'E');
            out.push(del);
            out.push(del);
            out.extend_from_slice(x);
            out.push(del);
            out.push(del);
        }
    }
    out.extend_from_slice(interp);
    out.push(del);
    out.extend_from_slice(e.flags.letters().as_bytes());
    out
}

// ---------------------------------------------------------------------------------------------
// Matching (fs/binfmt_misc.c check_file / search_binfmt_handler, load_misc_binary)
// ---------------------------------------------------------------------------------------------

/// Whether `e` matches a file, as `check_file` tests one entry (its `enabled` bit is ignored
/// here; [`select`] honours it).
///
/// `header` is the first bytes of the file; only the first 256 (`BINPRM_BUF_SIZE`) count, and
/// bytes past the end of a short file count as zero (`prepare_binprm` zero-fills the buffer).
/// `exec_path` is the path string given to execve (`bprm->interp`, which is `/dev/fd/N...`
/// for an execveat by descriptor): an extension entry compares its text with everything after
/// the last `.` of the whole string (`strrchr`), so `/a.d/b` has extension `d/b` and `/a/b`
/// has none; both strings end at a NUL as C strings do. A magic entry compares
/// `(header ^ magic) & mask == 0` byte by byte from `offset`. For an entry built by hand with
/// `offset + len > 256` (which the kernel refuses to register) the result is false; a mask
/// shorter than the magic counts its missing bytes as `0xff`.
pub fn entry_matches(e: &Entry, header: &[u8], exec_path: &[u8]) -> bool {
    match &e.matcher {
        Matcher::Extension(ext) => {
            let path = exec_path.split(|&b| b == 0).next().unwrap_or_default();
            let ext = ext.split(|&b| b == 0).next().unwrap_or_default();
            match path.iter().rposition(|&b| b == b'.') {
                Some(dot) => path.get(dot + 1..) == Some(ext),
                None => false,
            }
        }
        Matcher::Magic {
            offset,
            magic,
            mask,
        } => {
            match offset.checked_add(magic.len()) {
                Some(end) if end <= BINPRM_BUF_SIZE => {}
                _ => return false,
            }
            let header = header.get(..BINPRM_BUF_SIZE).unwrap_or(header);
            magic.iter().enumerate().all(|(j, &m)| {
                let h = header.get(offset + j).copied().unwrap_or(0);
                let k = match mask {
                    Some(mask) => mask.get(j).copied().unwrap_or(0xff),
                    None => 0xff,
                };
                (h ^ m) & k == 0
            })
        }
    }
}

/// The entry the kernel will hand the file to: the first enabled entry in match order that
/// matches (`check_file`); `None` when nothing matches, when binfmt_misc is disabled globally
/// (`load_misc_binary` returns ENOEXEC at once), or when the state is not known.
pub fn select<'a>(state: &'a State, header: &[u8], exec_path: &[u8]) -> Option<&'a Entry> {
    match state {
        State::Mounted {
            enabled: true,
            entries,
            ..
        } => entries
            .iter()
            .find(|e| e.enabled && entry_matches(e, header, exec_path)),
        _ => None,
    }
}

/// Entries that match but are switched off, in match order: the disabled matching entries, or
/// every matching entry when binfmt_misc is disabled globally. Used to explain "a handler
/// exists but is off".
pub fn disabled_matches<'a>(state: &'a State, header: &[u8], exec_path: &[u8]) -> Vec<&'a Entry> {
    match state {
        State::Mounted {
            enabled, entries, ..
        } => entries
            .iter()
            .filter(|e| (!*enabled || !e.enabled) && entry_matches(e, header, exec_path))
            .collect(),
        _ => Vec::new(),
    }
}

// ---------------------------------------------------------------------------------------------
// Descriptions
// ---------------------------------------------------------------------------------------------

/// A human description of the flags, one clause per flag, e.g.
/// `F (fix-binary: interpreter opened at registration, works in any container)`; when F is
/// not set a last clause says that the interpreter path must exist where the program runs.
pub fn describe_flags(f: &Flags) -> String {
    let mut parts: Vec<&str> = Vec::new();
    if f.preserve_argv0 {
        parts.push("P (preserve-argv0: the interpreter receives the original argv[0])");
    }
    if f.open_binary {
        parts.push(
            "O (open-binary: the interpreter gets an open descriptor of the binary, so execute-only files run)",
        );
    }
    if f.credentials {
        parts.push(
            "C (credentials: setuid bits and file capabilities of the binary apply, not the interpreter's)",
        );
    }
    if f.fix_binary {
        parts.push("F (fix-binary: interpreter opened at registration, works in any container)");
    } else {
        parts.push(
            "no F (interpreter opened by path at exec time, in the mount namespace of the exec'ing process: it must exist inside the container)",
        );
    }
    parts.join(", ")
}

/// ELF identification the architecture table is keyed by.
const ELFCLASS32: u8 = 1;
const ELFCLASS64: u8 = 2;
const ELFDATA2LSB: u8 = 1;
const ELFDATA2MSB: u8 = 2;

/// (class, data, e_machine, name). Names follow `uname -m` where the kernel has one
/// (parisc for hppa), otherwise qemu's.
const ELF_ARCHES: &[(u8, u8, u16, &str)] = &[
    (ELFCLASS64, ELFDATA2LSB, 183, "aarch64"),
    (ELFCLASS64, ELFDATA2MSB, 183, "aarch64_be"),
    (ELFCLASS32, ELFDATA2LSB, 40, "arm"),
    (ELFCLASS32, ELFDATA2MSB, 40, "armeb"),
    (ELFCLASS64, ELFDATA2LSB, 62, "x86_64"),
    (ELFCLASS32, ELFDATA2LSB, 62, "x32"),
    (ELFCLASS32, ELFDATA2LSB, 3, "i386"),
    (ELFCLASS32, ELFDATA2LSB, 6, "i386"),
    (ELFCLASS32, ELFDATA2MSB, 20, "ppc"),
    (ELFCLASS32, ELFDATA2LSB, 20, "ppcle"),
    (ELFCLASS64, ELFDATA2MSB, 21, "ppc64"),
    (ELFCLASS64, ELFDATA2LSB, 21, "ppc64le"),
    (ELFCLASS32, ELFDATA2MSB, 22, "s390"),
    (ELFCLASS64, ELFDATA2MSB, 22, "s390x"),
    (ELFCLASS32, ELFDATA2LSB, 243, "riscv32"),
    (ELFCLASS64, ELFDATA2LSB, 243, "riscv64"),
    (ELFCLASS32, ELFDATA2MSB, 8, "mips"),
    (ELFCLASS32, ELFDATA2LSB, 8, "mipsel"),
    (ELFCLASS64, ELFDATA2MSB, 8, "mips64"),
    (ELFCLASS64, ELFDATA2LSB, 8, "mips64el"),
    (ELFCLASS32, ELFDATA2MSB, 2, "sparc"),
    (ELFCLASS32, ELFDATA2MSB, 18, "sparc32plus"),
    (ELFCLASS64, ELFDATA2MSB, 43, "sparc64"),
    (ELFCLASS64, ELFDATA2LSB, 0x9026, "alpha"),
    (ELFCLASS32, ELFDATA2MSB, 15, "parisc"),
    (ELFCLASS64, ELFDATA2MSB, 15, "parisc64"),
    (ELFCLASS32, ELFDATA2LSB, 42, "sh4"),
    (ELFCLASS32, ELFDATA2MSB, 42, "sh4eb"),
    (ELFCLASS32, ELFDATA2MSB, 4, "m68k"),
    (ELFCLASS32, ELFDATA2MSB, 189, "microblaze"),
    (ELFCLASS32, ELFDATA2LSB, 189, "microblazeel"),
    (ELFCLASS32, ELFDATA2MSB, 0xbaab, "microblaze"),
    (ELFCLASS32, ELFDATA2LSB, 0xbaab, "microblazeel"),
    (ELFCLASS32, ELFDATA2LSB, 94, "xtensa"),
    (ELFCLASS32, ELFDATA2MSB, 94, "xtensaeb"),
    (ELFCLASS32, ELFDATA2LSB, 76, "cris"),
    (ELFCLASS32, ELFDATA2LSB, 164, "hexagon"),
    (ELFCLASS64, ELFDATA2LSB, 258, "loongarch64"),
    (ELFCLASS32, ELFDATA2MSB, 92, "or1k"),
    (ELFCLASS64, ELFDATA2LSB, 50, "ia64"),
];

/// Architecture names recognised in an entry name `qemu-<arch>` (qemu's spelling first).
const QEMU_NAMES: &[(&str, &str)] = &[
    ("aarch64", "aarch64"),
    ("aarch64_be", "aarch64_be"),
    ("alpha", "alpha"),
    ("arm", "arm"),
    ("armeb", "armeb"),
    ("cris", "cris"),
    ("hexagon", "hexagon"),
    ("hppa", "parisc"),
    ("i386", "i386"),
    ("i486", "i386"),
    ("loongarch64", "loongarch64"),
    ("m68k", "m68k"),
    ("microblaze", "microblaze"),
    ("microblazeel", "microblazeel"),
    ("mips", "mips"),
    ("mips64", "mips64"),
    ("mips64el", "mips64el"),
    ("mipsel", "mipsel"),
    ("mipsn32", "mipsn32"),
    ("mipsn32el", "mipsn32el"),
    ("or1k", "or1k"),
    ("ppc", "ppc"),
    ("ppc64", "ppc64"),
    ("ppc64le", "ppc64le"),
    ("riscv32", "riscv32"),
    ("riscv64", "riscv64"),
    ("s390x", "s390x"),
    ("sh4", "sh4"),
    ("sh4eb", "sh4eb"),
    ("sparc", "sparc"),
    ("sparc32plus", "sparc32plus"),
    ("sparc64", "sparc64"),
    ("x86_64", "x86_64"),
    ("xtensa", "xtensa"),
    ("xtensaeb", "xtensaeb"),
];

/// The CPU architecture an entry runs binaries of, when it can be told.
///
/// For a magic entry at offset 0 that requires `\x7fELF` and covers the first 20 bytes, every
/// (class byte 4, data byte 5, e_machine bytes 18..20 in that byte order) of a known
/// architecture is tried against the entry's own magic and mask; the answer is the one
/// architecture that the entry accepts (a 32-bit MIPS entry whose mask also tests
/// `EF_MIPS_ABI2` in e_flags, as qemu's do, is `mipsn32`/`mipsn32el` when the bit is
/// required). Otherwise (not an ELF magic, or no single architecture) the name is tried:
/// `qemu-<arch>` (optionally `-static`) with a known qemu arch.
pub fn emulated_arch(e: &Entry) -> Option<&'static str> {
    elf_arch(e).or_else(|| arch_from_name(&e.name))
}

fn elf_arch(e: &Entry) -> Option<&'static str> {
    let Matcher::Magic {
        offset: 0,
        magic,
        mask,
    } = &e.matcher
    else {
        return None;
    };
    if magic.len() < 20 || magic.get(..4) != Some(b"\x7fELF") {
        return None;
    }
    if let Some(mask) = mask
        && mask.get(..4) != Some(&[0xff; 4][..])
    {
        return None;
    }
    let mut found: Option<&'static str> = None;
    for &(class, data, machine, name) in ELF_ARCHES {
        let mut h = magic.clone();
        let m = if data == ELFDATA2LSB {
            machine.to_le_bytes()
        } else {
            machine.to_be_bytes()
        };
        for (i, v) in [(4, class), (5, data), (18, m[0]), (19, m[1])] {
            if let Some(slot) = h.get_mut(i) {
                *slot = v;
            }
        }
        if entry_matches(e, &h, b"") {
            match found {
                Some(f) if f != name => return None,
                _ => found = Some(name),
            }
        }
    }
    let arch = found?;
    // e_flags of ELF32 is at 36..40; EF_MIPS_ABI2 (0x20) sits in its least significant byte.
    let abi2_byte = match arch {
        "mips" => 39,
        "mipsel" => 36,
        _ => return Some(arch),
    };
    let requires_abi2 = magic.get(abi2_byte).is_some_and(|m| m & 0x20 != 0)
        && mask
            .as_ref()
            .is_none_or(|k| k.get(abi2_byte).is_some_and(|k| k & 0x20 != 0));
    Some(match (arch, requires_abi2) {
        ("mips", true) => "mipsn32",
        ("mipsel", true) => "mipsn32el",
        _ => arch,
    })
}

fn arch_from_name(name: &str) -> Option<&'static str> {
    let rest = name.strip_prefix("qemu-")?;
    let rest = rest.strip_suffix("-static").unwrap_or(rest);
    QEMU_NAMES
        .iter()
        .find(|(q, _)| *q == rest)
        .map(|&(_, arch)| arch)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::path::PathBuf;

    /// The exact text of a registered Debian qemu-user-static qemu-aarch64 entry (registered
    /// from /usr/share/binfmts/qemu-aarch64 with POCF, read back from Linux 6.18).
    const QEMU_AARCH64_TEXT: &[u8] = b"enabled\n\
interpreter /usr/libexec/qemu-binfmt/aarch64-binfmt-P\n\
flags: POCF\n\
offset 0\n\
magic 7f454c460201010000000000000000000200b700\n\
mask ffffffffffffff00fffffffffffffffffeffffff\n";

    /// The text of an extension entry with no flags, as the kernel prints it ("flags: " keeps
    /// its trailing space).
    const EXT_TEXT: &[u8] = b"enabled\ninterpreter /bin/false\nflags: \nextension .egtestext\n";

    const AARCH64_MAGIC: &[u8] =
        b"\x7f\x45\x4c\x46\x02\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00\xb7\x00";
    const AARCH64_MASK: &[u8] =
        b"\xff\xff\xff\xff\xff\xff\xff\x00\xff\xff\xff\xff\xff\xff\xff\xff\xfe\xff\xff\xff";

    fn aarch64_entry() -> Entry {
        Entry {
            name: "qemu-aarch64".into(),
            enabled: true,
            matcher: Matcher::Magic {
                offset: 0,
                magic: AARCH64_MAGIC.to_vec(),
                mask: Some(AARCH64_MASK.to_vec()),
            },
            interpreter: "/usr/libexec/qemu-binfmt/aarch64-binfmt-P".into(),
            flags: Flags {
                preserve_argv0: true,
                open_binary: true,
                credentials: true,
                fix_binary: true,
            },
        }
    }

    fn magic_entry(name: &str, enabled: bool, offset: usize, magic: &[u8]) -> Entry {
        Entry {
            name: name.into(),
            enabled,
            matcher: Matcher::Magic {
                offset,
                magic: magic.to_vec(),
                mask: None,
            },
            interpreter: "/bin/true".into(),
            flags: Flags::default(),
        }
    }

    /// A 64-byte aarch64 ELF header (ET_DYN unless changed).
    fn aarch64_header() -> Vec<u8> {
        let mut h = vec![0u8; 64];
        h[..20].copy_from_slice(AARCH64_MAGIC);
        h[16] = 3; // ET_DYN
        h
    }

    #[test]
    fn parses_real_qemu_aarch64_entry() {
        let e = parse_entry("qemu-aarch64", QEMU_AARCH64_TEXT).unwrap();
        assert_eq!(e, aarch64_entry());
        assert_eq!(e.flags.letters(), "POCF");
        assert_eq!(to_entry_text(&e), QEMU_AARCH64_TEXT);
        assert_eq!(emulated_arch(&e), Some("aarch64"));
    }

    #[test]
    fn register_line_of_debian_qemu_aarch64() {
        let line = br":qemu-aarch64:M:0:\x7f\x45\x4c\x46\x02\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00\xb7\x00:\xff\xff\xff\xff\xff\xff\xff\x00\xff\xff\xff\xff\xff\xff\xff\xff\xfe\xff\xff\xff:/usr/libexec/qemu-binfmt/aarch64-binfmt-P:POCF";
        let e = parse_register_line(line).unwrap();
        assert_eq!(e, aarch64_entry());
        assert_eq!(parse_register_line(&to_register_line(&e)).unwrap(), e);
        // tonistiigi/binfmt style: "CF" implies O.
        let line = br":qemu-aarch64:M:0:\x7fELF\x02\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00\xb7\x00:\xff\xff\xff\xff\xff\xff\xff\x00\xff\xff\xff\xff\xff\xff\xff\xff\xfe\xff\xff\xff:/usr/bin/qemu-aarch64:CF";
        let e2 = parse_register_line(line).unwrap();
        assert!(e2.flags.open_binary && e2.flags.credentials && e2.flags.fix_binary);
        assert!(!e2.flags.preserve_argv0);
        assert_eq!(e2.matcher, aarch64_entry().matcher);
    }

    #[test]
    fn extension_entries() {
        let e = parse_entry("eg-ext", EXT_TEXT).unwrap();
        assert_eq!(e.matcher, Matcher::Extension(b"egtestext".to_vec()));
        assert_eq!(e.flags, Flags::default());
        assert_eq!(to_entry_text(&e), EXT_TEXT);
        assert!(entry_matches(&e, b"", b"/tmp/x.egtestext"));
        assert!(entry_matches(&e, b"", b"x.egtestext"));
        // Only after the last dot of the whole string.
        assert!(!entry_matches(&e, b"", b"/tmp/x.egtestext.bak"));
        assert!(!entry_matches(&e, b"", b"/tmp/x.egtestext/y"));
        assert!(!entry_matches(&e, b"", b"/tmp/egtestext"));
        assert!(!entry_matches(&e, b"", b"/tmp/x.EGTESTEXT"));
        // A dot in a directory name makes the rest of the path the "extension".
        let weird = Entry {
            matcher: Matcher::Extension(b"d/b".to_vec()),
            ..e.clone()
        };
        assert!(entry_matches(&weird, b"", b"/a.d/b"));
        // C strings end at NUL.
        assert!(entry_matches(&e, b"", b"/x.egtestext\0junk"));

        let r = parse_register_line(b":jar:E::jar::/usr/bin/jexec:").unwrap();
        assert_eq!(r.matcher, Matcher::Extension(b"jar".to_vec()));
        assert_eq!(r.interpreter, OsString::from("/usr/bin/jexec"));
        assert!(parse_register_line(b":jar:E::a/b::/usr/bin/jexec:").is_err());
        assert!(parse_register_line(b":jar:E::::/usr/bin/jexec:").is_err());
        // The E branch skips the offset and mask fields whatever they hold.
        let r = parse_register_line(b":jar:E:junk:jar:junk:/usr/bin/jexec:").unwrap();
        assert_eq!(r.matcher, Matcher::Extension(b"jar".to_vec()));
        assert!(parse_entry("x", b"enabled\ninterpreter /x\nextension .a/b\n").is_err());
        assert!(parse_entry("x", b"enabled\ninterpreter /x\nextension .\n").is_err());
    }

    #[test]
    fn mask_semantics_of_aarch64_entry() {
        let e = aarch64_entry();
        let mut h = aarch64_header();
        assert!(entry_matches(&e, &h, b"/app"));
        // Byte 7 (EI_OSABI) is ignored.
        h[7] = 0x61;
        assert!(entry_matches(&e, &h, b"/app"));
        // The low bit of e_type is ignored: ET_EXEC (2) and ET_DYN (3) both match ...
        h[16] = 2;
        assert!(entry_matches(&e, &h, b"/app"));
        // ... but ET_REL (1) and ET_CORE (4) do not.
        h[16] = 1;
        assert!(!entry_matches(&e, &h, b"/app"));
        h[16] = 4;
        assert!(!entry_matches(&e, &h, b"/app"));
        h[16] = 3;
        // Every other byte counts.
        for i in (0..20).filter(|&i| i != 7 && i != 16) {
            let mut g = h.clone();
            g[i] ^= 0x01;
            assert!(!entry_matches(&e, &g, b"/app"), "byte {i}");
        }
        // x86_64 ELF does not match.
        h[18] = 62;
        assert!(!entry_matches(&e, &h, b"/app"));
        // Bytes past 20 never matter.
        let mut g = aarch64_header();
        g[40..].fill(0xaa);
        assert!(entry_matches(&e, &g, b"/app"));
        // Without a mask every bit counts.
        let exact = Entry {
            matcher: Matcher::Magic {
                offset: 0,
                magic: AARCH64_MAGIC.to_vec(),
                mask: None,
            },
            ..e
        };
        let mut g = aarch64_header();
        g[16] = 2;
        assert!(entry_matches(&exact, &g, b"/app"));
        g[16] = 3;
        assert!(!entry_matches(&exact, &g, b"/app"));
    }

    #[test]
    fn offset_and_short_header() {
        let e = magic_entry("off", true, 250, b"\x01\x02\x03\x04\x05\x06");
        let mut h = vec![0u8; 256];
        h[250..].copy_from_slice(b"\x01\x02\x03\x04\x05\x06");
        assert!(entry_matches(&e, &h, b""));
        h[255] = 0;
        assert!(!entry_matches(&e, &h, b""));
        // Bytes after 256 are not part of the kernel's buffer.
        let mut long = vec![0u8; 300];
        long[250..256].copy_from_slice(b"\x01\x02\x03\x04\x05\x06");
        assert!(entry_matches(&e, &long, b""));

        // Short file: the rest of the buffer is zero.
        let zeros = magic_entry("z", true, 4, b"\x00\x00");
        assert!(entry_matches(&zeros, b"ab", b""));
        assert!(entry_matches(&zeros, b"abcd", b""));
        assert!(!entry_matches(&zeros, b"abcde", b""));
        let tail = magic_entry("t", true, 2, b"c\x00\x00");
        assert!(entry_matches(&tail, b"abc", b""));
        assert!(!entry_matches(&tail, b"ab", b""));
        assert!(entry_matches(
            &aarch64_entry(),
            &aarch64_header()[..19],
            b""
        ));
        assert!(!entry_matches(
            &aarch64_entry(),
            &aarch64_header()[..18],
            b""
        ));

        // Parsed from both formats.
        let text = b"enabled\ninterpreter /bin/true\nflags: F\noffset 250\nmagic 010203040506\n";
        let p = parse_entry("off", text).unwrap();
        assert_eq!(p.matcher, e.matcher);
        assert!(p.flags.fix_binary);
        let r = parse_register_line(br":off:M:250:\x01\x02\x03\x04\x05\x06::/bin/true:F").unwrap();
        assert_eq!(r.matcher, e.matcher);
        // 251 + 6 > 256: refused by the kernel (verified), and by both parsers.
        assert!(parse_register_line(br":off:M:251:\x01\x02\x03\x04\x05\x06::/bin/true:").is_err());
        let text = b"enabled\ninterpreter /bin/true\nflags: \noffset 251\nmagic 010203040506\n";
        assert!(parse_entry("off", text).is_err());
        // Hand-built out-of-range entries never match.
        assert!(!entry_matches(
            &magic_entry("x", true, 256, b"\x00"),
            &[0; 300],
            b""
        ));
        assert!(!entry_matches(
            &magic_entry("x", true, usize::MAX, b"\x00"),
            &[0; 300],
            b""
        ));
    }

    fn mounted(enabled: bool, entries: Vec<Entry>) -> State {
        State::Mounted {
            enabled,
            entries,
            skipped: Vec::new(),
        }
    }

    #[test]
    fn select_order_disabled_and_global_switch() {
        let m = b"EGTST!";
        let newest = magic_entry("newest", true, 0, m);
        let older = magic_entry("older", true, 0, m);
        let st = mounted(true, vec![newest.clone(), older.clone()]);
        assert_eq!(
            select(&st, b"EGTST!rest", b"/x").map(|e| &*e.name),
            Some("newest")
        );
        assert!(disabled_matches(&st, b"EGTST!rest", b"/x").is_empty());
        assert!(select(&st, b"nope", b"/x").is_none());

        // A disabled entry is skipped; the next matching one is used.
        let off = Entry {
            enabled: false,
            ..newest.clone()
        };
        let st = mounted(true, vec![off.clone(), older.clone()]);
        assert_eq!(
            select(&st, b"EGTST!", b"/x").map(|e| &*e.name),
            Some("older")
        );
        let d = disabled_matches(&st, b"EGTST!", b"/x");
        assert_eq!(d.iter().map(|e| &*e.name).collect::<Vec<_>>(), ["newest"]);
        // Only a disabled one: nothing is selected, the disabled one is reported.
        let st = mounted(true, vec![off.clone()]);
        assert!(select(&st, b"EGTST!", b"/x").is_none());
        assert_eq!(disabled_matches(&st, b"EGTST!", b"/x").len(), 1);

        // Globally disabled: nothing is selected; every matching entry is reported.
        let st = mounted(false, vec![newest.clone(), off, older]);
        assert!(select(&st, b"EGTST!", b"/x").is_none());
        let d = disabled_matches(&st, b"EGTST!", b"/x");
        assert_eq!(
            d.iter().map(|e| &*e.name).collect::<Vec<_>>(),
            ["newest", "newest", "older"]
        );
        assert!(disabled_matches(&st, b"other", b"/x").is_empty());

        // Unknown states select nothing.
        for st in [State::NotMounted, State::Unreadable("x".into())] {
            assert!(select(&st, b"EGTST!", b"/x").is_none());
            assert!(disabled_matches(&st, b"EGTST!", b"/x").is_empty());
        }

        // Extension and magic entries mixed: the first in order wins.
        let ext = Entry {
            name: "ext".into(),
            matcher: Matcher::Extension(b"sh".to_vec()),
            ..newest
        };
        let st = mounted(true, vec![ext, magic_entry("m", true, 0, b"#!")]);
        assert_eq!(
            select(&st, b"#!/bin/sh", b"/a.sh").map(|e| &*e.name),
            Some("ext")
        );
        assert_eq!(
            select(&st, b"#!/bin/sh", b"/a").map(|e| &*e.name),
            Some("m")
        );
    }

    #[test]
    fn disabled_entry_text() {
        let text = b"disabled\ninterpreter /bin/false\nflags: \noffset 0\nmagic 4547545354217e01\n";
        let e = parse_entry("eg-test-b", text).unwrap();
        assert!(!e.enabled);
        assert_eq!(
            e.matcher,
            Matcher::Magic {
                offset: 0,
                magic: b"EGTST!~\x01".to_vec(),
                mask: None
            }
        );
        assert_eq!(to_entry_text(&e), text);
    }

    #[test]
    fn entry_text_leniency_and_strictness() {
        // Lenient: no trailing newline, upper-case hex, trailing blanks, flags in another
        // order, unknown lines, no flags line, no offset line.
        let text = b"enabled \ninterpreter /usr/bin/x\nfuture-key 1\nflags: FP \noffset 0 \nmagic 7F454C46\n";
        let e = parse_entry("x", text).unwrap();
        assert!(e.flags.fix_binary && e.flags.preserve_argv0 && !e.flags.open_binary);
        assert_eq!(
            e.matcher,
            Matcher::Magic {
                offset: 0,
                magic: b"\x7fELF".to_vec(),
                mask: None
            }
        );
        let e = parse_entry("x", b"enabled\ninterpreter /x\nmagic 00").unwrap();
        assert_eq!(e.flags, Flags::default());
        // The interpreter may contain a newline (printed raw with %s).
        let e = parse_entry("x", b"enabled\ninterpreter /a\nb\nflags: \nextension .z\n").unwrap();
        assert_eq!(e.interpreter, OsString::from("/a\nb"));

        let bad: &[&[u8]] = &[
            b"",
            b"\n",
            b"maybe\ninterpreter /x\nmagic 00\n",
            b"enabled\nmagic 00\n",
            b"enabled\ninterpreter \nmagic 00\n",
            b"enabled\ninterpreter /x\n",
            b"enabled\ninterpreter /x\nmagic 0\n",
            b"enabled\ninterpreter /x\nmagic zz\n",
            b"enabled\ninterpreter /x\nmagic \n",
            b"enabled\ninterpreter /x\nmagic 0000\nmask ff\n",
            b"enabled\ninterpreter /x\nmask ff\n",
            b"enabled\ninterpreter /x\noffset -1\nmagic 00\n",
            b"enabled\ninterpreter /x\noffset 99999999999\nmagic 00\n",
            b"enabled\ninterpreter /x\nmagic 00\nmagic 00\n",
            b"enabled\ninterpreter /x\nmagic 00\nextension .a\n",
            b"enabled\ninterpreter /x\noffset 1\nextension .a\n",
            b"enabled\ninterpreter /x\0y\nmagic 00\n",
        ];
        for t in bad {
            let r = parse_entry("x", t);
            assert!(r.is_err(), "accepted {:?}", String::from_utf8_lossy(t));
            let msg = r.unwrap_err().to_string();
            assert!(msg.starts_with("binfmt_misc entry x: "), "{msg}");
            assert!(!msg.ends_with('.'), "{msg}");
        }
        for n in ["", ".", "..", "a/b"] {
            assert!(parse_entry(n, QEMU_AARCH64_TEXT).is_err(), "name {n:?}");
        }
        assert!(parse_entry("x", &vec![b'a'; 5000]).is_err());
    }

    #[test]
    fn register_line_kernel_rules() {
        let ok = |l: &[u8]| parse_register_line(l).unwrap();
        let bad = |l: &[u8]| {
            let r = parse_register_line(l);
            assert!(r.is_err(), "accepted {:?}", String::from_utf8_lossy(l));
            r.unwrap_err().to_string()
        };
        // Any first byte is the delimiter.
        let e = ok(br"|n|M||\x7fELF||/bin/true|F");
        assert_eq!(
            e.matcher,
            Matcher::Magic {
                offset: 0,
                magic: b"\x7fELF".to_vec(),
                mask: None
            }
        );
        assert!(e.flags.fix_binary);
        // Optional trailing newline; then nothing else.
        ok(b":n:M::ab::/bin/true:\n");
        bad(b":n:M::ab::/bin/true:\n\n");
        bad(b":n:M::ab::/bin/true:X");
        bad(b":n:M::ab::/bin/true:F:");
        // The delimiter after the interpreter is required.
        let msg = bad(b":n:M::ab::/bin/true");
        assert!(msg.contains("no delimiter after the interpreter"), "{msg}");
        // Length limits.
        bad(b":n:M::a:/:");
        ok(b":n:M::a::/:");
        let mut long = b":n:M::a::/".to_vec();
        long.resize(MAX_REGISTER_LENGTH - 1, b'b');
        long.push(b':');
        ok(&long);
        long.insert(10, b'b');
        bad(&long);
        // Name rules.
        bad(b"::M::ab::/bin/true:");
        bad(b":.:M::ab::/bin/true:");
        bad(b":..:M::ab::/bin/true:");
        bad(b":a/b:M::ab::/bin/true:");
        bad(b":status:M::ab::/bin/true:");
        bad(b":register:M::ab::/bin/true:");
        bad(b":a\0b:M::ab::/bin/true:");
        let mut n = b":".to_vec();
        n.extend(std::iter::repeat_n(b'n', 256));
        n.extend_from_slice(b":M::ab::/bin/true:");
        bad(&n);
        // Type.
        bad(b":n:X::ab::/bin/true:");
        bad(b":n:MM::ab::/bin/true:");
        // Offset: kstrtoint.
        assert!(matches!(
            ok(b":n:M:+7:ab::/bin/true:").matcher,
            Matcher::Magic { offset: 7, .. }
        ));
        assert!(matches!(
            ok(b":n:M:-0:ab::/bin/true:").matcher,
            Matcher::Magic { offset: 0, .. }
        ));
        assert!(matches!(
            ok(b":n:M:007:ab::/bin/true:").matcher,
            Matcher::Magic { offset: 7, .. }
        ));
        bad(b":n:M:-1:ab::/bin/true:");
        bad(b":n:M: 1:ab::/bin/true:");
        bad(b":n:M:1x:ab::/bin/true:");
        bad(b":n:M:0x10:ab::/bin/true:");
        bad(b":n:M:99999999999999999999:ab::/bin/true:");
        bad(b":n:M:255:ab::/bin/true:");
        ok(b":n:M:254:ab::/bin/true:");
        // Magic and mask escapes.
        bad(br":n:M::\x4::/bin/true:");
        bad(br":n:M::\xg0::/bin/true:");
        bad(b":n:M:::ff:/bin/true:");
        let e = ok(br":n:M::\x00\x41B:\xff\x0f\xf0:/bin/true:");
        assert_eq!(
            e.matcher,
            Matcher::Magic {
                offset: 0,
                magic: b"\x00AB".to_vec(),
                mask: Some(b"\xff\x0f\xf0".to_vec())
            }
        );
        bad(br":n:M::ab:\xff:/bin/true:");
        // A backslash not followed by x is copied; "\\x41" is two backslashes then "x41"
        // for scanarg, and unescape copies "\\" then "x41" raw.
        let e = ok(br":n:M::a\b::/bin/true:");
        assert!(matches!(&e.matcher, Matcher::Magic { magic, .. } if magic == br"a\b"));
        let e = ok(br":n:M::\\x41::/bin/true:");
        assert!(matches!(&e.matcher, Matcher::Magic { magic, .. } if magic == br"\\x41"));
        // A raw NUL in the magic ends it (string_unescape stops there).
        let e = ok(b":n:M::ab\0cd::/bin/true:");
        assert!(matches!(&e.matcher, Matcher::Magic { magic, .. } if magic == b"ab"));
        bad(b":n:M::\0ab::/bin/true:");
        // A mask that starts with a raw NUL is no mask.
        let e = ok(b":n:M::ab:\0z:/bin/true:");
        assert!(matches!(&e.matcher, Matcher::Magic { mask: None, .. }));
        // The magic may be 256 bytes at offset 0, not 257.
        let mut l = b":n:M::".to_vec();
        for _ in 0..256 {
            l.extend_from_slice(br"\x01");
        }
        l.extend_from_slice(b"::/x:");
        assert!(parse_register_line(&l).is_ok());
        // Interpreter.
        bad(b":n:M::abcd:::");
        bad(b":n:M::abcd::/bin/t\0rue:");
        // Flags: C implies O; repeats are fine.
        let e = ok(b":n:M::ab::/bin/true:CCPF\n");
        assert_eq!(
            e.flags,
            Flags {
                preserve_argv0: true,
                open_binary: true,
                credentials: true,
                fix_binary: true
            }
        );
        // Messages name the line and read well.
        let msg = bad(b":n:Q::ab::/bin/true:");
        assert!(
            msg.starts_with("binfmt_misc register line :n:Q::ab::/bin/true:: "),
            "{msg}"
        );
        // Pathological delimiters never read past the padded buffer.
        bad(br"xnxMxx\");
        bad(b"PnPMPPabPPPPPPP/bPPPP");
        bad(&[0u8; 20]);
    }

    #[test]
    fn to_register_line_picks_a_free_delimiter() {
        let mut e = aarch64_entry();
        e.interpreter = "/opt/a:b/qemu".into();
        let line = to_register_line(&e);
        assert_eq!(line.first(), Some(&b'#'));
        assert_eq!(parse_register_line(&line).unwrap(), e);
        let ext = Entry {
            name: "n".into(),
            enabled: true,
            matcher: Matcher::Extension(b"py".to_vec()),
            interpreter: "/usr/bin/python3".into(),
            flags: Flags::default(),
        };
        assert_eq!(to_register_line(&ext), b":n:E::py::/usr/bin/python3:");
        assert_eq!(parse_register_line(&to_register_line(&ext)).unwrap(), ext);
    }

    #[test]
    fn describe_flags_text() {
        let all = describe_flags(&aarch64_entry().flags);
        assert!(all.starts_with("P (preserve-argv0"), "{all}");
        assert!(all.contains("O (open-binary"), "{all}");
        assert!(all.contains("C (credentials"), "{all}");
        assert!(
            all.ends_with(
                "F (fix-binary: interpreter opened at registration, works in any container)"
            ),
            "{all}"
        );
        let none = describe_flags(&Flags::default());
        assert!(none.starts_with("no F ("), "{none}");
        assert!(none.contains("inside the container"), "{none}");
    }

    /// The magic/mask pairs of Debian's qemu-user-static (/usr/share/binfmts), byte for byte.
    #[test]
    fn emulated_arch_of_qemu_table() {
        let table: &[(&str, &[u8], &[u8], &str)] = &[
            ("qemu-aarch64", AARCH64_MAGIC, AARCH64_MASK, "aarch64"),
            (
                "qemu-arm",
                b"\x7f\x45\x4c\x46\x01\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00\x28\x00",
                b"\xff\xff\xff\xff\xff\xff\xff\x00\xff\xff\xff\xff\xff\xff\xff\xff\xfe\xff\xff\xff",
                "arm",
            ),
            (
                "qemu-armeb",
                b"\x7f\x45\x4c\x46\x01\x02\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00\x28",
                b"\xff\xff\xff\xff\xff\xff\xff\x00\xff\xff\xff\xff\xff\xff\xff\xff\xff\xfe\xff\xff",
                "armeb",
            ),
            (
                "qemu-alpha",
                b"\x7f\x45\x4c\x46\x02\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00\x26\x90",
                b"\xff\xff\xff\xff\xff\xff\xff\x00\xff\xff\xff\xff\xff\xff\xff\xff\xfe\xff\xff\xff",
                "alpha",
            ),
            (
                "qemu-hppa",
                b"\x7f\x45\x4c\x46\x01\x02\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00\x0f",
                b"\xff\xff\xff\xff\xff\xff\xff\x00\xff\xff\xff\xff\xff\xff\xff\xff\xff\xfe\xff\xff",
                "parisc",
            ),
            (
                "qemu-loongarch64",
                b"\x7fELF\x02\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00\x02\x01",
                b"\xff\xff\xff\xff\xff\xff\xff\xfc\x00\xff\xff\xff\xff\xff\xff\xff\xfe\xff\xff\xff",
                "loongarch64",
            ),
            (
                "qemu-mips",
                b"\x7f\x45\x4c\x46\x01\x02\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00\x08\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00",
                b"\xff\xff\xff\xff\xff\xff\xff\x00\xfe\xff\xff\xff\xff\xff\xff\xff\xff\xfe\xff\xff\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x20",
                "mips",
            ),
            (
                "qemu-mipsn32",
                b"\x7f\x45\x4c\x46\x01\x02\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00\x08\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x20",
                b"\xff\xff\xff\xff\xff\xff\xff\x00\xfe\xff\xff\xff\xff\xff\xff\xff\xff\xfe\xff\xff\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x20",
                "mipsn32",
            ),
            (
                "qemu-mipsn32el",
                b"\x7f\x45\x4c\x46\x01\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00\x08\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x20",
                b"\xff\xff\xff\xff\xff\xff\xff\x00\xfe\xff\xff\xff\xff\xff\xff\xff\xfe\xff\xff\xff\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x20",
                "mipsn32el",
            ),
            (
                "qemu-mips64el",
                b"\x7f\x45\x4c\x46\x02\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00\x08\x00",
                b"\xff\xff\xff\xff\xff\xff\xff\x00\xfe\xff\xff\xff\xff\xff\xff\xff\xfe\xff\xff\xff",
                "mips64el",
            ),
            (
                "qemu-ppc64le",
                b"\x7f\x45\x4c\x46\x02\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00\x15\x00",
                b"\xff\xff\xff\xff\xff\xff\xff\xfc\xff\xff\xff\xff\xff\xff\xff\xff\xfe\xff\xff\x00",
                "ppc64le",
            ),
            (
                "qemu-ppc",
                b"\x7f\x45\x4c\x46\x01\x02\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00\x14",
                b"\xff\xff\xff\xff\xff\xff\xff\xfc\xff\xff\xff\xff\xff\xff\xff\xff\xff\xfe\xff\xff",
                "ppc",
            ),
            (
                "qemu-riscv64",
                b"\x7f\x45\x4c\x46\x02\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00\xf3\x00",
                b"\xff\xff\xff\xff\xff\xff\xff\x00\xff\xff\xff\xff\xff\xff\xff\xff\xfe\xff\xff\xff",
                "riscv64",
            ),
            (
                "qemu-s390x",
                b"\x7f\x45\x4c\x46\x02\x02\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00\x16",
                b"\xff\xff\xff\xff\xff\xff\xff\xfc\xff\xff\xff\xff\xff\xff\xff\xff\xff\xfe\xff\xff",
                "s390x",
            ),
            (
                "qemu-sparc32plus",
                b"\x7f\x45\x4c\x46\x01\x02\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00\x12",
                b"\xff\xff\xff\xff\xff\xff\xff\xfc\xff\xff\xff\xff\xff\xff\xff\xff\xff\xfe\xff\xff",
                "sparc32plus",
            ),
            (
                "qemu-microblaze",
                b"\x7f\x45\x4c\x46\x01\x02\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\xba\xab",
                b"\xff\xff\xff\xff\xff\xff\xff\x00\xff\xff\xff\xff\xff\xff\xff\xff\xff\xfe\xff\xff",
                "microblaze",
            ),
            (
                // qemu's i386 mask accepts data byte 0 or 1 (mask 0xfe on byte 5).
                "qemu-i386",
                b"\x7f\x45\x4c\x46\x01\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00\x03\x00",
                b"\xff\xff\xff\xff\xff\xfe\xfe\x00\xff\xff\xff\xff\xff\xff\xff\xff\xfe\xff\xff\xff",
                "i386",
            ),
        ];
        for &(name, magic, mask, arch) in table {
            // Decoded from the magic even under an unrelated name.
            let e = Entry {
                name: "some-handler".into(),
                enabled: true,
                matcher: Matcher::Magic {
                    offset: 0,
                    magic: magic.to_vec(),
                    mask: Some(mask.to_vec()),
                },
                interpreter: "/x".into(),
                flags: Flags::default(),
            };
            assert_eq!(emulated_arch(&e), Some(arch), "{name}");
        }
        // Not decodable: fall back to the qemu name.
        let mut e = magic_entry("qemu-riscv64", true, 0, b"\x7fELF");
        assert_eq!(emulated_arch(&e), Some("riscv64"));
        e.name = "qemu-hppa-static".into();
        assert_eq!(emulated_arch(&e), Some("parisc"));
        e.name = "jar".into();
        assert_eq!(emulated_arch(&e), None);
        e.name = "qemu-nonsense".into();
        assert_eq!(emulated_arch(&e), None);
        // Rosetta-style x86_64 handler with an arbitrary name.
        let mut m = AARCH64_MAGIC.to_vec();
        m[18] = 0x3e;
        let rosetta = Entry {
            name: "rosetta".into(),
            matcher: Matcher::Magic {
                offset: 0,
                magic: m,
                mask: Some(AARCH64_MASK.to_vec()),
            },
            ..aarch64_entry()
        };
        assert_eq!(emulated_arch(&rosetta), Some("x86_64"));
        // An extension entry has no arch unless its name says so.
        let ext = parse_entry("qemu-arm", EXT_TEXT).unwrap();
        assert_eq!(emulated_arch(&ext), Some("arm"));
    }

    // ------------------------------------------------------------------ load() on temp trees

    fn tree(files: &[(&str, &[u8])]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for (name, content) in files {
            std::fs::write(dir.path().join(name), content).unwrap();
        }
        dir
    }

    #[test]
    fn a_non_utf8_name_of_255_bytes_still_parses() {
        // 200 bytes of 0xff: 600 bytes once each becomes U+FFFD, still 200 raw bytes.
        let mut line = b":".to_vec();
        line.extend(std::iter::repeat_n(0xffu8, 200));
        line.extend_from_slice(b":M::ab::/bin/true:");
        let e = parse_register_line(&line).expect("the kernel takes this name");
        let text = "enabled\ninterpreter /bin/true\nflags: \noffset 0\nmagic ab\n";
        let parsed = parse_entry(&e.name, text.as_bytes());
        assert!(parsed.is_ok(), "{} {parsed:?}", e.name.len());
        assert!(parse_entry(&"\u{FFFD}".repeat(256), text.as_bytes()).is_err());
    }

    #[test]
    fn load_not_mounted_and_status() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(load(dir.path()), State::NotMounted);
        assert_eq!(load(&dir.path().join("missing")), State::NotMounted);
        let file = dir.path().join("file");
        std::fs::write(&file, b"x").unwrap();
        assert_eq!(load(&file), State::NotMounted);

        let d = tree(&[("status", b"disabled\n"), ("register", b"")]);
        assert_eq!(
            load(d.path()),
            State::Mounted {
                enabled: false,
                entries: vec![],
                skipped: vec![]
            }
        );
        let d = tree(&[("status", b"bogus\n")]);
        match load(d.path()) {
            State::Unreadable(m) => {
                assert!(m.contains("status"), "{m}");
                assert!(m.contains(&d.path().display().to_string()), "{m}");
            }
            other => panic!("{other:?}"),
        }
        // A FIFO in place of status does not block and is unreadable.
        let d = tempfile::tempdir().unwrap();
        nix::unistd::mkfifo(&d.path().join("status"), nix::sys::stat::Mode::S_IRWXU).unwrap();
        assert!(matches!(load(d.path()), State::Unreadable(_)));
    }

    #[test]
    fn load_entries_and_skipped() {
        let d = tree(&[
            ("status", b"enabled\n"),
            ("register", b""),
            ("qemu-aarch64", QEMU_AARCH64_TEXT),
            ("ext", EXT_TEXT),
            ("broken", b"enabled\ninterpreter /x\n"),
        ]);
        std::fs::write(d.path().join("huge"), vec![b'a'; 5000]).unwrap();
        std::fs::create_dir(d.path().join("subdir")).unwrap();
        let State::Mounted {
            enabled,
            entries,
            skipped,
        } = load(d.path())
        else {
            panic!("not mounted");
        };
        assert!(enabled);
        let mut names: Vec<_> = entries.iter().map(|e| e.name.clone()).collect();
        names.sort();
        assert_eq!(names, ["ext", "qemu-aarch64"]);
        assert_eq!(skipped.len(), 3, "{skipped:?}");
        for s in ["broken", "huge", "subdir"] {
            assert!(skipped.iter().any(|m| m.contains(s)), "{s}: {skipped:?}");
        }
        let q = entries.iter().find(|e| e.name == "qemu-aarch64").unwrap();
        assert_eq!(q, &aarch64_entry());
    }

    #[test]
    fn load_unreadable_when_not_root() {
        if nix::unistd::geteuid().is_root() {
            eprintln!(
                "skip load_unreadable_when_not_root: running as root, permissions do not apply"
            );
            return;
        }
        use std::os::unix::fs::PermissionsExt;
        let d = tree(&[("status", b"enabled\n")]);
        let st = d.path().join("status");
        std::fs::set_permissions(&st, std::fs::Permissions::from_mode(0o000)).unwrap();
        assert!(matches!(load(d.path()), State::Unreadable(_)));
    }

    // ------------------------------------------------------------------ the real kernel

    /// Why the real-handler test cannot run here, if it cannot.
    fn real_skip_reason(root: &Path) -> Option<String> {
        if !nix::unistd::geteuid().is_root() {
            return Some("not running as root".into());
        }
        if !root.join("status").exists() || !root.join("register").exists() {
            return Some(format!("binfmt_misc is not mounted at {}", root.display()));
        }
        if !Path::new("/bin/true").exists() || !Path::new("/bin/false").exists() {
            return Some("/bin/true or /bin/false is missing".into());
        }
        None
    }

    /// Removes, on drop (also when a test panics), exactly the entries this test registered.
    struct Registered {
        root: PathBuf,
        names: Vec<String>,
    }

    impl Registered {
        fn register(&mut self, e: &Entry) {
            std::fs::write(self.root.join("register"), to_register_line(e))
                .unwrap_or_else(|err| panic!("register {}: {err}", e.name));
            self.names.push(e.name.clone());
        }

        fn write(&self, name: &str, cmd: &str) {
            assert!(self.names.iter().any(|n| n == name));
            std::fs::write(self.root.join(name), cmd).unwrap();
        }
    }

    impl Drop for Registered {
        fn drop(&mut self) {
            for n in self.names.iter().rev() {
                let p = self.root.join(n);
                if p.exists()
                    && let Err(e) = std::fs::write(&p, "-1")
                {
                    eprintln!("could not remove test entry {}: {e}", p.display());
                }
            }
        }
    }

    fn run(path: &Path) -> Option<i32> {
        match std::process::Command::new(path).status() {
            Ok(s) => s.code(),
            Err(e) => panic!("exec {}: {e}", path.display()),
        }
    }

    /// Registers real handlers (under an exclusive lock shared with other testers), checks
    /// that `load` returns them newest-first, that `select` agrees with what the kernel runs,
    /// and that the kernel's entry text parses back to what was registered.
    /// The exclusive lock every binfmt tester takes while it has entries registered, or `None`
    /// (after printing why) when the real kernel cannot be used; fails instead when CI=true.
    fn real_kernel_lock(test: &str) -> Option<nix::fcntl::Flock<File>> {
        use nix::fcntl::{Flock, FlockArg};
        if let Some(reason) = real_skip_reason(Path::new(DEFAULT_ROOT)) {
            if std::env::var("CI").as_deref() == Ok("true") {
                panic!("{test} cannot run with CI=true: {reason}");
            }
            eprintln!("SKIP {test}: {reason}");
            return None;
        }
        let lock_file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open("/run/execguard-binfmt-test.lock")
            .unwrap();
        Some(
            Flock::lock(lock_file, FlockArg::LockExclusive)
                .map_err(|(_, e)| e)
                .unwrap(),
        )
    }

    /// Registers real handlers (under an exclusive lock shared with other testers), checks
    /// that `load` returns them newest-first, that `select` agrees with what the kernel runs,
    /// and that the kernel's entry text parses back to what was registered.
    #[test]
    fn real_kernel_order_and_selection() {
        let root = Path::new(DEFAULT_ROOT);
        let Some(_lock) = real_kernel_lock("real_kernel_order_and_selection") else {
            return;
        };
        let pid = std::process::id();
        let tag = format!("eg-test-binfmt-rs-{pid}");
        let mut reg = Registered {
            root: root.to_path_buf(),
            names: Vec::new(),
        };
        // A magic nothing else uses: "\0EGBF" + pid.
        let mut magic = b"\0EGBF".to_vec();
        magic.extend_from_slice(&pid.to_le_bytes());
        let mk = |suffix: &str, interp: &str, flags: Flags| Entry {
            name: format!("{tag}-{suffix}"),
            enabled: true,
            matcher: Matcher::Magic {
                offset: 0,
                magic: magic.clone(),
                mask: Some(vec![0xff; magic.len()]),
            },
            interpreter: interp.into(),
            flags,
        };
        let a = mk("a", "/bin/true", Flags::default());
        let b = mk(
            "b",
            "/bin/false",
            Flags {
                preserve_argv0: true,
                open_binary: true,
                credentials: true,
                fix_binary: true,
            },
        );
        let ext = Entry {
            name: format!("{tag}-ext"),
            enabled: true,
            matcher: Matcher::Extension(format!("egbf{pid}").into_bytes()),
            interpreter: "/bin/false".into(),
            flags: Flags {
                fix_binary: true,
                ..Flags::default()
            },
        };
        reg.register(&a);
        reg.register(&b);
        reg.register(&ext);

        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("prog");
        let mut content = magic.clone();
        content.extend_from_slice(b"rest of the file");
        std::fs::write(&file, &content).unwrap();
        let ext_file = dir.path().join(format!("x.egbf{pid}"));
        std::fs::write(&ext_file, b"\0\0\0\0").unwrap();
        use std::os::unix::fs::PermissionsExt;
        for f in [&file, &ext_file] {
            std::fs::set_permissions(f, std::fs::Permissions::from_mode(0o755)).unwrap();
        }

        let state = load(root);
        let State::Mounted {
            enabled, entries, ..
        } = &state
        else {
            panic!("load: {state:?}");
        };
        if !*enabled {
            let reason = "binfmt_misc is disabled globally";
            if std::env::var("CI").as_deref() == Ok("true") {
                panic!("real_kernel_order_and_selection cannot run with CI=true: {reason}");
            }
            eprintln!("SKIP real_kernel_order_and_selection: {reason}");
            return;
        }
        let ours: Vec<&Entry> = entries
            .iter()
            .filter(|e| e.name.starts_with(&tag))
            .collect();
        let names: Vec<&str> = ours.iter().map(|e| e.name.as_str()).collect();
        assert_eq!(names, [&ext.name, &b.name, &a.name], "newest first");
        // The kernel's text parses back to what was registered.
        assert_eq!(ours[0], &ext);
        assert_eq!(ours[1], &b);
        assert_eq!(ours[2], &a);

        let path = file.as_os_str().as_bytes();
        // Newest (b, /bin/false) wins.
        assert_eq!(
            select(&state, &content, path).map(|e| &e.name),
            Some(&b.name)
        );
        assert_eq!(run(&file), Some(1), "kernel ran the newest entry (b)");
        // Extension entry.
        let ext_path = ext_file.as_os_str().as_bytes();
        assert_eq!(
            select(&state, b"\0\0\0\0", ext_path).map(|e| &e.name),
            Some(&ext.name)
        );
        assert_eq!(run(&ext_file), Some(1), "kernel ran the extension entry");

        // Disable b: a (/bin/true) is used, b is reported as a disabled match.
        reg.write(&b.name, "0");
        let state = load(root);
        assert_eq!(
            select(&state, &content, path).map(|e| &e.name),
            Some(&a.name)
        );
        let off = disabled_matches(&state, &content, path);
        assert_eq!(off.iter().map(|e| &e.name).collect::<Vec<_>>(), [&b.name]);
        assert_eq!(run(&file), Some(0), "kernel skipped the disabled entry");

        // Remove and re-register b: it becomes the newest again.
        reg.write(&b.name, "-1");
        reg.register(&b);
        let state = load(root);
        let State::Mounted { entries, .. } = &state else {
            panic!("load: {state:?}");
        };
        let names: Vec<&str> = entries
            .iter()
            .filter(|e| e.name.starts_with(&tag))
            .map(|e| e.name.as_str())
            .collect();
        assert_eq!(names, [&b.name, &ext.name, &a.name]);
        assert_eq!(
            select(&state, &content, path).map(|e| &e.name),
            Some(&b.name)
        );
        assert_eq!(run(&file), Some(1));
        drop(reg);
        for n in [&a.name, &b.name, &ext.name] {
            assert!(!root.join(n).exists(), "{n} left behind");
        }
    }

    /// Writes tricky registration lines to the real `register` and checks that
    /// `parse_register_line` accepts exactly what the kernel accepts, and that the kernel's
    /// entry text of each accepted line parses to the same entry. Every magic starts with a
    /// token unique to this run and every extension is unique, so no other file can match
    /// while an entry exists; each entry is removed right after it is read.
    #[test]
    fn real_kernel_agrees_with_register_parser() {
        let root = Path::new(DEFAULT_ROOT);
        let Some(_lock) = real_kernel_lock("real_kernel_agrees_with_register_parser") else {
            return;
        };
        let pid = std::process::id();
        let tag = format!("eg-test-binfmt-rs-{pid}-d");
        // "\0EGBF" + pid digits, fully escaped (no delimiter candidate inside).
        let mut u = String::from(r"\x00\x45\x47\x42\x46");
        for d in pid.to_string().bytes() {
            u.push_str(&format!(r"\x{d:02x}"));
        }
        let u_len = 5 + pid.to_string().len();
        let ext = format!("egbf{pid}");
        let long_magic = |n: usize| {
            let mut m = u.clone();
            for _ in u_len..n {
                m.push_str(r"\x01");
            }
            m
        };
        let n = |i: usize| format!("{tag}{i}");
        let cases: Vec<(String, Vec<u8>)> = {
            let mut c: Vec<String> = vec![
                ":N:M::U::/bin/true:".into(),
                ":N:M::U::/bin/true:\n".into(),
                ":N:M::U::/bin/true".into(),
                ":N:M::U::/bin/true:\n\n".into(),
                ":N:M:+3:U::/bin/true:".into(),
                ":N:M:-0:U::/bin/true:".into(),
                ":N:M:-1:U::/bin/true:".into(),
                ":N:M: 1:U::/bin/true:".into(),
                ":N:M:1\n:U::/bin/true:".into(),
                ":N:M:0x10:U::/bin/true:".into(),
                ":N:M:007:U::/bin/true:".into(),
                ":N:M::U\\x4::/bin/true:".into(),
                ":N:M::U\\b::/bin/true:".into(),
                ":N:M::U\\\\x41::/bin/true:".into(),
                ":N:M::U\0cd::/bin/true:".into(),
                ":N:M::U:\0z:/bin/true:".into(),
                ":N:M::U:\\xff:/bin/true:".into(),
                ":N:M::U::/bin/true:CCPF\n".into(),
                ":N:M::U::/bin/true:FX".into(),
                ":N:M::U::/bin/true:F:".into(),
                "|N|M||U||/bin/true|F".into(),
                "xNxMxxUxx/bin/truex".into(),
                "#N:q#M##U##/bin/true#".into(),
                ":N\nq:M::U::/bin/true:".into(),
                ":N:M::U::/bin/t\nrue:".into(),
                ":N:M::U::/bin/t\0rue:".into(),
                ":N:M::U:::".into(),
                ":N:X::U::/bin/true:".into(),
                ":N:MM::U::/bin/true:".into(),
                ":N:E::EXT::/bin/true:".into(),
                ":N:E:junk:EXT:junk:/bin/true:".into(),
                ":N:E::a/b::/bin/true:".into(),
                ":N:E::::/bin/true:".into(),
                ":.:M::U::/bin/true:".into(),
                ":status:M::U::/bin/true:".into(),
                format!(":N:M:{}:U::/bin/true:", 256 - u_len),
                format!(":N:M:{}:U::/bin/true:", 257 - u_len),
                format!(":N:M::{}::/bin/true:", long_magic(256)),
                format!(":N:M::{}::/bin/true:", long_magic(257)),
                format!(":N{}:M::U::/bin/true:", "n".repeat(256 - tag.len() - 2)),
                format!(":N{}:M::U::/bin/true:", "n".repeat(255 - tag.len() - 2)),
            ];
            c.iter_mut()
                .enumerate()
                .map(|(i, t)| {
                    let line = t.replace('N', &n(i)).replace("EXT", &ext).replace('U', &u);
                    (n(i), line.into_bytes())
                })
                .collect()
        };
        let mut reg = Registered {
            root: root.to_path_buf(),
            names: Vec::new(),
        };
        for (i, (name, line)) in cases.iter().enumerate() {
            let ours = parse_register_line(line);
            let kernel = std::fs::write(root.join("register"), line);
            let shown = show(line, 200);
            let Ok(()) = kernel else {
                assert!(
                    ours.is_err(),
                    "case {i} {shown}: kernel refused ({kernel:?}), parser accepted"
                );
                continue;
            };
            // Find the entry the kernel created (its name is the line's name field).
            let created = ours
                .as_ref()
                .map(|e| e.name.clone())
                .unwrap_or_else(|_| name.clone());
            reg.names.push(created.clone());
            let ours = ours.unwrap_or_else(|e| {
                panic!("case {i} {shown}: kernel accepted, parser refused: {e}")
            });
            let text = read_bounded(&root.join(&created), ENTRY_READ_CAP)
                .unwrap_or_else(|e| panic!("case {i} {shown}: read entry {created}: {e}"));
            let theirs =
                parse_entry(&created, &text).unwrap_or_else(|e| panic!("case {i} {shown}: {e}"));
            assert_eq!(theirs, ours, "case {i} {shown}");
            assert_eq!(to_entry_text(&ours), text, "case {i} {shown}");
            reg.write(&created, "-1");
        }
        drop(reg);
        for (name, _) in &cases {
            assert!(!root.join(name).exists(), "{name} left behind");
        }
    }

    // ------------------------------------------------------------------ properties

    fn arb_entry() -> impl Strategy<Value = Entry> {
        let name = "[a-zA-Z0-9_.-]{1,20}".prop_filter("not . or ..", |n| n != "." && n != "..");
        let interp = proptest::collection::vec(
            any::<u8>().prop_filter("no NUL, newline or colon", |b| {
                *b != 0 && *b != b'\n' && *b != b':'
            }),
            1..40,
        );
        let flags = (any::<bool>(), any::<bool>(), any::<bool>(), any::<bool>()).prop_map(
            |(p, o, c, f)| Flags {
                preserve_argv0: p,
                open_binary: o || c,
                credentials: c,
                fix_binary: f,
            },
        );
        let magic = (1usize..64).prop_flat_map(|len| {
            (
                0..=(BINPRM_BUF_SIZE - len),
                proptest::collection::vec(any::<u8>(), len),
                proptest::option::of(proptest::collection::vec(any::<u8>(), len)),
            )
                .prop_map(|(offset, magic, mask)| Matcher::Magic {
                    offset,
                    magic,
                    mask,
                })
        });
        let ext = proptest::collection::vec(
            any::<u8>().prop_filter("extension bytes", |b| {
                *b != 0 && *b != b'/' && *b != b'\n' && *b != b':'
            }),
            1..10,
        )
        .prop_map(Matcher::Extension);
        (name, any::<bool>(), prop_oneof![magic, ext], interp, flags).prop_map(
            |(name, enabled, matcher, interp, flags)| Entry {
                name,
                enabled,
                matcher,
                interpreter: OsString::from_vec(interp),
                flags,
            },
        )
    }

    proptest! {
        #[test]
        fn parse_entry_never_panics(name in ".{0,8}", content in proptest::collection::vec(any::<u8>(), 0..600)) {
            let _ = parse_entry(&name, &content);
        }

        #[test]
        fn parse_entry_never_panics_on_near_valid_text(
            lines in proptest::collection::vec(
                prop_oneof![
                    Just(b"enabled".to_vec()), Just(b"disabled".to_vec()),
                    "interpreter [ -~]{0,10}".prop_map(String::into_bytes),
                    "flags: [POCFX ]{0,5}".prop_map(String::into_bytes),
                    "offset [0-9-]{0,12}".prop_map(String::into_bytes),
                    "magic [0-9a-fA-Fz]{0,12}".prop_map(String::into_bytes),
                    "mask [0-9a-fA-Fz]{0,12}".prop_map(String::into_bytes),
                    "extension [./a-z]{0,5}".prop_map(String::into_bytes),
                ],
                0..8,
            )
        ) {
            let _ = parse_entry("x", &lines.join(&b'\n'));
        }

        #[test]
        fn parse_register_line_never_panics(line in proptest::collection::vec(any::<u8>(), 0..80)) {
            let _ = parse_register_line(&line);
        }

        #[test]
        fn parse_register_line_never_panics_on_near_valid_lines(
            del in prop_oneof![Just(b':'), Just(b'x'), Just(b'\\'), Just(b'P'), Just(b'a'), Just(0u8), any::<u8>()],
            fields in proptest::collection::vec("[MEx\\\\0-9a-fPOCF/\n]{0,6}", 7),
        ) {
            let mut line = vec![del];
            for (i, f) in fields.iter().enumerate() {
                if i > 0 { line.push(del); }
                line.extend_from_slice(f.as_bytes());
            }
            let _ = parse_register_line(&line);
        }

        #[test]
        fn entry_matches_never_panics(
            offset in prop_oneof![0usize..300, Just(usize::MAX), Just(usize::MAX - 3)],
            magic in proptest::collection::vec(any::<u8>(), 0..300),
            mask in proptest::option::of(proptest::collection::vec(any::<u8>(), 0..300)),
            ext in proptest::collection::vec(any::<u8>(), 0..8),
            header in proptest::collection::vec(any::<u8>(), 0..400),
            path in proptest::collection::vec(any::<u8>(), 0..40),
        ) {
            let mut e = magic_entry("p", true, offset, &magic);
            e.matcher = Matcher::Magic { offset, magic, mask };
            let _ = entry_matches(&e, &header, &path);
            let _ = emulated_arch(&e);
            e.matcher = Matcher::Extension(ext);
            let _ = entry_matches(&e, &header, &path);
            let _ = emulated_arch(&e);
        }

        #[test]
        fn text_and_register_line_round_trip(e in arb_entry()) {
            prop_assert_eq!(parse_entry(&e.name, &to_entry_text(&e)).unwrap(), e.clone());
            let enabled = Entry { enabled: true, ..e.clone() };
            prop_assert_eq!(parse_register_line(&to_register_line(&e)).unwrap(), enabled);
        }

        #[test]
        fn magic_match_follows_the_mask(e in arb_entry(), noise in proptest::collection::vec(any::<u8>(), 256), flip in 0usize..64, bit in 0u8..8) {
            let Matcher::Magic { offset, magic, mask } = &e.matcher else { return Ok(()); };
            // A header made of the magic over noise matches.
            let mut h = noise.clone();
            h[*offset..offset + magic.len()].copy_from_slice(magic);
            prop_assert!(entry_matches(&e, &h, b""));
            // Flipping one bit matches exactly when the mask ignores that bit.
            let j = flip % magic.len();
            h[offset + j] ^= 1 << bit;
            let cares = mask.as_ref().is_none_or(|m| m[j] & (1 << bit) != 0);
            prop_assert_eq!(entry_matches(&e, &h, b""), !cares);
        }
    }
}
