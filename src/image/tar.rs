//! A bounded reader of tar archives: the outer `docker save` / OCI layout tarball and the
//! layers inside it.
//!
//! This module owns the tar format and nothing else: ustar headers, POSIX pax extended headers
//! (`path`, `linkpath`, `size`, `uid`, `gid`), GNU long names (`L`, `K`) and base-256 numbers.
//! Everything it reads comes from an image anyone may publish, so every size is checked before
//! it is used: a pax header or long name larger than its limit is an error, never an
//! allocation; a header whose checksum is wrong, a number that does not fit, or an archive cut
//! short ends the read with an error naming the byte where it happened. Entry data is never
//! read here: the caller reads it through [`Reader::read_data`] or leaves it, and it is skipped
//! (seeked over when the source allows it).
//!
//! Sparse files (GNU `S`, pax `GNU.sparse.*`) are refused: their data is not laid out as the
//! file is, and image builders do not write them.

use std::io::{self, Read};

/// Size of a tar block.
pub const BLOCK: u64 = 512;
/// Largest pax extended header (`x` or `g`) read into memory.
pub const MAX_PAX_BYTES: u64 = 1 << 20;
/// Largest GNU long name or long link name (`L`, `K`) read into memory.
pub const MAX_LONG_NAME: u64 = 64 << 10;
/// Longest path or link target accepted, after every extension is applied.
pub const MAX_NAME_BYTES: usize = 4096;

/// Why a tar archive cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum TarError {
    /// The source failed.
    #[error("read error at byte {at}: {source}")]
    Io {
        /// Offset in the tar stream.
        at: u64,
        /// The cause.
        source: io::Error,
    },
    /// The archive ends in the middle of a header or of an entry's data.
    #[error("cut short at byte {at} (a truncated archive)")]
    Truncated {
        /// Offset in the tar stream where more was expected.
        at: u64,
    },
    /// The header's checksum does not match: not a tar archive, or a corrupt one.
    #[error("bad header checksum at byte {at} (not a tar archive, or a corrupt one)")]
    Checksum {
        /// Offset of the header.
        at: u64,
    },
    /// A header field or extension is malformed or over its limit.
    #[error("{what} at byte {at}")]
    Invalid {
        /// Offset of the header.
        at: u64,
        /// What is wrong.
        what: String,
    },
}

/// The kind of a tar entry (the typeflag).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `0`, NUL or `7`: a regular file.
    File,
    /// `1`: a hard link to [`Entry::link`].
    HardLink,
    /// `2`: a symbolic link with target [`Entry::link`].
    Symlink,
    /// `3`: a character device.
    Char,
    /// `4`: a block device.
    Block,
    /// `5`: a directory.
    Dir,
    /// `6`: a FIFO.
    Fifo,
    /// Any other typeflag (kept so the caller can say what it ignored).
    Other(u8),
}

/// One entry of the archive, with every extension header applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The path as stored (not cleaned), at most [`MAX_NAME_BYTES`].
    pub path: Vec<u8>,
    /// Link target for hard and symbolic links (empty otherwise).
    pub link: Vec<u8>,
    /// The typeflag.
    pub kind: Kind,
    /// Permission bits with setuid, setgid and sticky (`mode & 0o7777`).
    pub mode: u32,
    /// Owner; ids that do not fit 32 bits become the overflow id 65534.
    pub uid: u32,
    /// Group, likewise.
    pub gid: u32,
    /// Size of the data in bytes (0 for links, directories and devices).
    pub size: u64,
    /// Offset of the data in the tar stream.
    pub offset: u64,
    /// Offset of the entry's (first) header in the tar stream.
    pub header_at: u64,
}

/// A byte stream the reader can skip forward in.
pub trait Source: Read {
    /// Skips up to `n` bytes; returns how many were skipped (fewer only at the end).
    ///
    /// # Errors
    /// The underlying read or seek failed.
    fn skip(&mut self, n: u64) -> io::Result<u64>;
}

impl<S: Source + ?Sized> Source for Box<S> {
    fn skip(&mut self, n: u64) -> io::Result<u64> {
        (**self).skip(n)
    }
}

/// Skips by reading and dropping: for sources that cannot seek (a decompressor).
pub fn skip_by_reading(r: &mut dyn Read, n: u64) -> io::Result<u64> {
    io::copy(&mut r.take(n), &mut io::sink())
}

/// The overflow id the kernel shows for unmapped owners.
const OVERFLOW_ID: u32 = 65534;

/// A streaming tar reader over a [`Source`].
pub struct Reader<S: Source> {
    src: S,
    /// Bytes consumed from the stream.
    pos: u64,
    /// Data bytes of the current entry not yet consumed.
    data_left: u64,
    /// Padding after the current entry's data.
    pad_left: u64,
    done: bool,
}

/// Pax records that override the next header.
#[derive(Default)]
struct Overrides {
    path: Option<Vec<u8>>,
    link: Option<Vec<u8>>,
    size: Option<u64>,
    uid: Option<u64>,
    gid: Option<u64>,
}

impl<S: Source> Reader<S> {
    /// A reader at the start of `src`.
    pub fn new(src: S) -> Reader<S> {
        Reader {
            src,
            pos: 0,
            data_left: 0,
            pad_left: 0,
            done: false,
        }
    }

    /// Bytes consumed from the stream so far.
    pub fn position(&self) -> u64 {
        self.pos
    }

    /// The source, for the caller's own reads once the archive is done.
    pub fn into_inner(self) -> S {
        self.src
    }

    fn skip_exact(&mut self, n: u64) -> Result<(), TarError> {
        if n == 0 {
            return Ok(());
        }
        let at = self.pos;
        let got = self
            .src
            .skip(n)
            .map_err(|source| TarError::Io { at, source })?;
        self.pos = self.pos.saturating_add(got);
        if got < n {
            return Err(TarError::Truncated { at: self.pos });
        }
        Ok(())
    }

    /// Reads a whole block; `Ok(false)` when the stream ends exactly before it.
    fn read_block(&mut self, buf: &mut [u8; 512]) -> Result<bool, TarError> {
        let mut got = 0usize;
        while got < buf.len() {
            let dst = buf.get_mut(got..).unwrap_or_default();
            match self.src.read(dst) {
                Ok(0) => break,
                Ok(n) => got += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(source) => {
                    return Err(TarError::Io {
                        at: self.pos.saturating_add(got as u64),
                        source,
                    });
                }
            }
        }
        self.pos = self.pos.saturating_add(got as u64);
        match got {
            0 => Ok(false),
            512 => Ok(true),
            _ => Err(TarError::Truncated { at: self.pos }),
        }
    }

    /// Reads an extension entry's data (`size` bytes plus padding) into memory.
    fn read_extension(&mut self, size: u64, limit: u64, what: &str) -> Result<Vec<u8>, TarError> {
        let at = self.pos;
        if size > limit {
            return Err(TarError::Invalid {
                at,
                what: format!("{what} of {size} bytes is larger than the {limit}-byte limit"),
            });
        }
        // size <= limit (at most 1 MiB) fits usize.
        let len = usize::try_from(size).unwrap_or(0);
        let mut data = vec![0u8; len];
        let mut got = 0usize;
        while got < len {
            let dst = data.get_mut(got..).unwrap_or_default();
            match self.src.read(dst) {
                Ok(0) => {
                    return Err(TarError::Truncated {
                        at: self.pos.saturating_add(got as u64),
                    });
                }
                Ok(n) => got += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(source) => return Err(TarError::Io { at, source }),
            }
        }
        self.pos = self.pos.saturating_add(size);
        self.skip_exact(padding(size))?;
        Ok(data)
    }

    /// The next entry, skipping whatever of the current entry's data was not read.
    /// `Ok(None)` at the end of the archive (a zero block, or the end of the stream at a
    /// header boundary).
    ///
    /// # Errors
    /// See [`TarError`].
    pub fn next_entry(&mut self) -> Result<Option<Entry>, TarError> {
        if self.done {
            return Ok(None);
        }
        let rest = self.data_left.saturating_add(self.pad_left);
        self.data_left = 0;
        self.pad_left = 0;
        self.skip_exact(rest)?;
        let mut ov = Overrides::default();
        let mut first_header: Option<u64> = None;
        let mut block = [0u8; 512];
        loop {
            let at = self.pos;
            if !self.read_block(&mut block)? {
                self.done = true;
                return Ok(None);
            }
            if block.iter().all(|b| *b == 0) {
                // The end-of-archive marker (the second zero block is not required).
                self.done = true;
                return Ok(None);
            }
            first_header.get_or_insert(at);
            let h = parse_header(&block, at)?;
            match h.typeflag {
                b'x' => {
                    let data = self.read_extension(h.size, MAX_PAX_BYTES, "a pax header")?;
                    apply_pax(&data, &mut ov, at)?;
                    continue;
                }
                b'g' => {
                    // Global pax headers set defaults for later entries; nothing execguard
                    // reads is taken from them.
                    let _ = self.read_extension(h.size, MAX_PAX_BYTES, "a pax global header")?;
                    continue;
                }
                b'L' => {
                    let data = self.read_extension(h.size, MAX_LONG_NAME, "a GNU long name")?;
                    ov.path = Some(trim_nul(&data).to_vec());
                    continue;
                }
                b'K' => {
                    let data =
                        self.read_extension(h.size, MAX_LONG_NAME, "a GNU long link name")?;
                    ov.link = Some(trim_nul(&data).to_vec());
                    continue;
                }
                b'S' => {
                    return Err(TarError::Invalid {
                        at,
                        what: "a GNU sparse file (not supported)".into(),
                    });
                }
                _ => {}
            }
            let kind = match h.typeflag {
                b'0' | 0 | b'7' => Kind::File,
                b'1' => Kind::HardLink,
                b'2' => Kind::Symlink,
                b'3' => Kind::Char,
                b'4' => Kind::Block,
                b'5' => Kind::Dir,
                b'6' => Kind::Fifo,
                other => Kind::Other(other),
            };
            let path = ov.path.take().unwrap_or(h.name);
            let link = ov.link.take().unwrap_or(h.linkname);
            if path.len() > MAX_NAME_BYTES || link.len() > MAX_NAME_BYTES {
                return Err(TarError::Invalid {
                    at,
                    what: format!("a name longer than {MAX_NAME_BYTES} bytes"),
                });
            }
            if path.contains(&0) || link.contains(&0) {
                return Err(TarError::Invalid {
                    at,
                    what: "a name with a NUL byte".into(),
                });
            }
            // Links, directories, devices and FIFOs carry no data whatever the size field
            // says, as Go's archive/tar (which the engines use) reads them.
            let size = if matches!(kind, Kind::File | Kind::Other(_)) {
                ov.size.unwrap_or(h.size)
            } else {
                0
            };
            let data = size;
            let id = |v: u64| u32::try_from(v).unwrap_or(OVERFLOW_ID);
            let offset = self.pos;
            self.data_left = data;
            self.pad_left = padding(data);
            if offset.checked_add(data).is_none() {
                return Err(TarError::Invalid {
                    at,
                    what: format!("an entry size of {data} bytes"),
                });
            }
            return Ok(Some(Entry {
                path,
                link,
                kind,
                mode: u32::try_from(h.mode & 0o7777).unwrap_or(0),
                uid: id(ov.uid.unwrap_or(h.uid)),
                gid: id(ov.gid.unwrap_or(h.gid)),
                size,
                offset,
                header_at: first_header.unwrap_or(at),
            }));
        }
    }

    /// Reads data of the current entry (never its padding or the next header); 0 at its end.
    ///
    /// # Errors
    /// The source failed, or the archive ends inside the data.
    pub fn read_data(&mut self, buf: &mut [u8]) -> Result<usize, TarError> {
        let want = usize::try_from(self.data_left)
            .unwrap_or(usize::MAX)
            .min(buf.len());
        if want == 0 {
            return Ok(0);
        }
        let dst = buf.get_mut(..want).unwrap_or_default();
        loop {
            match self.src.read(dst) {
                Ok(0) => return Err(TarError::Truncated { at: self.pos }),
                Ok(n) => {
                    self.pos = self.pos.saturating_add(n as u64);
                    self.data_left = self.data_left.saturating_sub(n as u64);
                    return Ok(n);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(source) => {
                    return Err(TarError::Io {
                        at: self.pos,
                        source,
                    });
                }
            }
        }
    }

    /// Reads the whole data of the current entry when it is at most `limit` bytes.
    ///
    /// # Errors
    /// The entry is larger than `limit`, or [`Reader::read_data`] failed.
    pub fn read_all(&mut self, limit: u64) -> Result<Vec<u8>, TarError> {
        if self.data_left > limit {
            return Err(TarError::Invalid {
                at: self.pos,
                what: format!(
                    "an entry of {} bytes, larger than the {limit}-byte limit",
                    self.data_left
                ),
            });
        }
        let mut out = vec![0u8; usize::try_from(self.data_left).unwrap_or(0)];
        let mut got = 0;
        while got < out.len() {
            let n = self.read_data(out.get_mut(got..).unwrap_or_default())?;
            if n == 0 {
                break;
            }
            got += n;
        }
        out.truncate(got);
        Ok(out)
    }
}

/// Bytes of padding after `size` bytes of data.
fn padding(size: u64) -> u64 {
    (BLOCK - size % BLOCK) % BLOCK
}

fn trim_nul(b: &[u8]) -> &[u8] {
    let end = b.iter().position(|c| *c == 0).unwrap_or(b.len());
    b.get(..end).unwrap_or_default()
}

/// The fields of one 512-byte header.
struct RawHeader {
    name: Vec<u8>,
    mode: u64,
    uid: u64,
    gid: u64,
    size: u64,
    typeflag: u8,
    linkname: Vec<u8>,
}

fn field(block: &[u8; 512], start: usize, len: usize) -> &[u8] {
    block.get(start..start + len).unwrap_or_default()
}

/// A numeric header field: octal text (NUL or space terminated, leading blanks allowed) or a
/// GNU base-256 number (high bit of the first byte set). `None` when it is neither or does not
/// fit 64 bits (negative base-256 numbers included).
pub fn parse_number(f: &[u8]) -> Option<u64> {
    let first = *f.first()?;
    if first & 0x80 != 0 {
        if first == 0xff {
            return None;
        }
        let mut v = u64::from(first & 0x7f);
        for b in f.iter().skip(1) {
            v = v.checked_mul(256)?.checked_add(u64::from(*b))?;
        }
        return Some(v);
    }
    let mut v: u64 = 0;
    let mut seen = false;
    for b in f {
        match b {
            b' ' | 0 if !seen => continue,
            b' ' | 0 => break,
            b'0'..=b'7' => {
                seen = true;
                v = v.checked_mul(8)?.checked_add(u64::from(b - b'0'))?;
            }
            _ => return None,
        }
    }
    Some(v)
}

fn parse_header(block: &[u8; 512], at: u64) -> Result<RawHeader, TarError> {
    let stored = parse_number(field(block, 148, 8)).ok_or(TarError::Checksum { at })?;
    // The checksum counts the checksum field as eight spaces; some writers summed signed bytes.
    let mut unsigned: u64 = 0;
    let mut signed: i64 = 0;
    for (i, b) in block.iter().enumerate() {
        let b = if (148..156).contains(&i) { b' ' } else { *b };
        unsigned += u64::from(b);
        signed += i64::from(b as i8);
    }
    if stored != unsigned && i64::try_from(stored).ok() != Some(signed) {
        return Err(TarError::Checksum { at });
    }
    let num = |start: usize, len: usize, what: &str| {
        parse_number(field(block, start, len)).ok_or_else(|| TarError::Invalid {
            at,
            what: format!("a header with an unreadable {what} field"),
        })
    };
    let mode = num(100, 8, "mode")?;
    let uid = num(108, 8, "uid")?;
    let gid = num(116, 8, "gid")?;
    let size = num(124, 12, "size")?;
    let typeflag = block[156];
    let magic = field(block, 257, 6);
    let mut name = trim_nul(field(block, 0, 100)).to_vec();
    // POSIX ustar splits long names into prefix "/" name; the old GNU format uses the prefix
    // bytes for other things, and says so with its own magic ("ustar  ").
    if magic == b"ustar\0" {
        let prefix = trim_nul(field(block, 345, 155));
        if !prefix.is_empty() {
            let mut full = prefix.to_vec();
            full.push(b'/');
            full.extend_from_slice(&name);
            name = full;
        }
    }
    let linkname = trim_nul(field(block, 157, 100)).to_vec();
    Ok(RawHeader {
        name,
        mode,
        uid,
        gid,
        size,
        typeflag,
        linkname,
    })
}

/// Applies the records of a pax extended header (`"LEN key=value\n"` each).
fn apply_pax(data: &[u8], ov: &mut Overrides, at: u64) -> Result<(), TarError> {
    let bad = |what: &str| TarError::Invalid {
        at,
        what: format!("a malformed pax header ({what})"),
    };
    let mut rest = data;
    while !rest.is_empty() {
        // Trailing NUL padding after the last record is tolerated.
        if rest.iter().all(|b| *b == 0) {
            break;
        }
        let sp = rest
            .iter()
            .position(|b| *b == b' ')
            .ok_or_else(|| bad("a record without a length"))?;
        let len_text = std::str::from_utf8(rest.get(..sp).unwrap_or_default())
            .map_err(|_| bad("a record length that is not a number"))?;
        let len: usize = len_text
            .parse()
            .map_err(|_| bad("a record length that is not a number"))?;
        if len <= sp + 1 || len > rest.len() {
            return Err(bad("a record length past the end"));
        }
        let record = rest.get(sp + 1..len).unwrap_or_default();
        rest = rest.get(len..).unwrap_or_default();
        let record = record
            .strip_suffix(b"\n")
            .ok_or_else(|| bad("a record without a newline"))?;
        let eq = record
            .iter()
            .position(|b| *b == b'=')
            .ok_or_else(|| bad("a record without '='"))?;
        let key = record.get(..eq).unwrap_or_default();
        let value = record.get(eq + 1..).unwrap_or_default();
        let number = |v: &[u8]| -> Result<u64, TarError> {
            std::str::from_utf8(v)
                .ok()
                .and_then(|s| s.parse::<u64>().ok())
                .ok_or_else(|| bad("a number that does not parse"))
        };
        match key {
            b"path" => ov.path = Some(value.to_vec()),
            b"linkpath" => ov.link = Some(value.to_vec()),
            b"size" => ov.size = Some(number(value)?),
            b"uid" => ov.uid = Some(number(value)?),
            b"gid" => ov.gid = Some(number(value)?),
            k if k.starts_with(b"GNU.sparse.") => {
                return Err(TarError::Invalid {
                    at,
                    what: "a pax sparse file (not supported)".into(),
                });
            }
            _ => {}
        }
    }
    Ok(())
}

/// A [`Source`] over any reader that cannot seek.
pub struct Stream<R: Read>(pub R);

impl<R: Read> Read for Stream<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.0.read(buf)
    }
}

impl<R: Read> Source for Stream<R> {
    fn skip(&mut self, n: u64) -> io::Result<u64> {
        skip_by_reading(&mut self.0, n)
    }
}

/// A window `[start, end)` of a file read with positioned reads: seeking is free and the file's
/// own offset is never moved, so several windows of one file can be read at once.
pub struct Slice<'a> {
    file: &'a std::fs::File,
    pos: u64,
    end: u64,
}

impl<'a> Slice<'a> {
    /// The bytes `[start, start + len)` of `file`.
    pub fn new(file: &'a std::fs::File, start: u64, len: u64) -> Slice<'a> {
        Slice {
            file,
            pos: start,
            end: start.saturating_add(len),
        }
    }
}

impl Read for Slice<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        use std::os::unix::fs::FileExt;
        let left = usize::try_from(self.end.saturating_sub(self.pos)).unwrap_or(usize::MAX);
        let n = left.min(buf.len());
        if n == 0 {
            return Ok(0);
        }
        let got = self
            .file
            .read_at(buf.get_mut(..n).unwrap_or_default(), self.pos)?;
        self.pos = self.pos.saturating_add(got as u64);
        Ok(got)
    }
}

impl Source for Slice<'_> {
    fn skip(&mut self, n: u64) -> io::Result<u64> {
        let k = n.min(self.end.saturating_sub(self.pos));
        self.pos += k;
        Ok(k)
    }
}

/// Test helpers that write tar archives (ustar, with pax headers for long names).
#[cfg(test)]
pub mod write {
    /// One ustar header block for `name` (at most 100 bytes) of `typeflag`.
    pub fn header(name: &[u8], typeflag: u8, mode: u32, size: u64, link: &[u8]) -> [u8; 512] {
        let mut h = [0u8; 512];
        h[..name.len().min(100)].copy_from_slice(&name[..name.len().min(100)]);
        let oct = |h: &mut [u8; 512], at: usize, len: usize, v: u64| {
            let s = format!("{v:0w$o}\0", w = len - 1);
            if s.len() == len {
                h[at..at + len].copy_from_slice(s.as_bytes());
            } else {
                // GNU base-256 for what octal cannot hold.
                let f = &mut h[at..at + len];
                f.fill(0);
                f[len - 8..].copy_from_slice(&v.to_be_bytes());
                f[0] = 0x80;
            }
        };
        oct(&mut h, 100, 8, u64::from(mode));
        oct(&mut h, 108, 8, 0);
        oct(&mut h, 116, 8, 0);
        oct(&mut h, 124, 12, size);
        oct(&mut h, 136, 12, 0);
        h[156] = typeflag;
        h[157..157 + link.len().min(100)].copy_from_slice(&link[..link.len().min(100)]);
        h[257..263].copy_from_slice(b"ustar\0");
        h[263..265].copy_from_slice(b"00");
        h[148..156].copy_from_slice(b"        ");
        let sum: u64 = h.iter().map(|b| u64::from(*b)).sum();
        let s = format!("{sum:06o}\0 ");
        h[148..156].copy_from_slice(s.as_bytes());
        h
    }

    /// Appends an entry (pax header first when the name or link is long) with its data.
    pub fn entry(
        out: &mut Vec<u8>,
        name: &[u8],
        typeflag: u8,
        mode: u32,
        data: &[u8],
        link: &[u8],
    ) {
        if name.len() > 100 || link.len() > 100 {
            let mut pax = Vec::new();
            for (k, v) in [(&b"path"[..], name), (&b"linkpath"[..], link)] {
                if v.len() > 100 {
                    let body_len = 1 + k.len() + 1 + v.len() + 1;
                    let mut len = body_len + 1;
                    while format!("{len}").len() + body_len != len {
                        len = format!("{len}").len() + body_len;
                    }
                    pax.extend_from_slice(format!("{len} ").as_bytes());
                    pax.extend_from_slice(k);
                    pax.push(b'=');
                    pax.extend_from_slice(v);
                    pax.push(b'\n');
                }
            }
            out.extend_from_slice(&header(
                b"././@PaxHeader",
                b'x',
                0o644,
                pax.len() as u64,
                b"",
            ));
            out.extend_from_slice(&pax);
            pad(out);
        }
        out.extend_from_slice(&header(name, typeflag, mode, data.len() as u64, link));
        out.extend_from_slice(data);
        pad(out);
    }

    /// Pads to a block boundary.
    pub fn pad(out: &mut Vec<u8>) {
        while !out.len().is_multiple_of(512) {
            out.push(0);
        }
    }

    /// The end-of-archive marker.
    pub fn finish(out: &mut Vec<u8>) {
        out.extend_from_slice(&[0u8; 1024]);
    }
}

#[cfg(test)]
mod tests {
    use super::write::*;
    use super::*;
    use proptest::prelude::*;

    fn read_all(bytes: &[u8]) -> Result<Vec<Entry>, TarError> {
        let mut r = Reader::new(Stream(bytes));
        let mut v = Vec::new();
        while let Some(e) = r.next_entry()? {
            v.push(e);
        }
        Ok(v)
    }

    #[test]
    fn ustar_entries_with_data_links_and_long_names() {
        let mut t = Vec::new();
        entry(&mut t, b"bin/", b'5', 0o755, b"", b"");
        entry(
            &mut t,
            b"bin/app",
            b'0',
            0o755,
            b"#!/bin/sh\necho hi\n",
            b"",
        );
        entry(&mut t, b"bin/sh", b'2', 0o777, b"", b"busybox");
        let long = [b'd'; 150];
        let mut name = b"deep/".to_vec();
        name.extend_from_slice(&long);
        entry(&mut t, &name, b'0', 0o644, b"x", b"");
        entry(&mut t, b"bin/hard", b'1', 0o755, b"", b"bin/app");
        finish(&mut t);
        let es = read_all(&t).unwrap();
        assert_eq!(es.len(), 5);
        assert_eq!(es[0].kind, Kind::Dir);
        assert_eq!(
            (es[1].kind, es[1].size, es[1].mode),
            (Kind::File, 18, 0o755)
        );
        assert_eq!(
            &t[es[1].offset as usize..es[1].offset as usize + 9],
            b"#!/bin/sh"
        );
        assert_eq!(
            (es[2].kind, es[2].link.as_slice()),
            (Kind::Symlink, &b"busybox"[..])
        );
        assert_eq!(es[3].path, name);
        assert_eq!(
            (es[4].kind, es[4].link.as_slice()),
            (Kind::HardLink, &b"bin/app"[..])
        );
    }

    #[test]
    fn reading_data_then_moving_on() {
        let mut t = Vec::new();
        entry(&mut t, b"a", b'0', 0o644, b"hello world", b"");
        entry(&mut t, b"b", b'0', 0o644, b"second", b"");
        finish(&mut t);
        let mut r = Reader::new(Stream(&t[..]));
        r.next_entry().unwrap().unwrap();
        let mut buf = [0u8; 5];
        assert_eq!(r.read_data(&mut buf).unwrap(), 5);
        assert_eq!(&buf, b"hello");
        let b = r.next_entry().unwrap().unwrap();
        assert_eq!(b.path, b"b");
        assert_eq!(r.read_all(100).unwrap(), b"second");
        assert!(r.next_entry().unwrap().is_none());
        assert!(r.next_entry().unwrap().is_none());
    }

    #[test]
    fn truncation_checksum_and_limits_are_errors() {
        let mut t = Vec::new();
        entry(&mut t, b"a", b'0', 0o644, &[7u8; 2000], b"");
        // Cut inside the data.
        let cut = &t[..1024];
        assert!(matches!(read_all(cut), Err(TarError::Truncated { .. })));
        // Cut inside a header.
        assert!(matches!(
            read_all(&t[..100]),
            Err(TarError::Truncated { .. })
        ));
        // A flipped byte in the header.
        let mut bad = t.clone();
        bad[10] ^= 1;
        assert!(matches!(read_all(&bad), Err(TarError::Checksum { .. })));
        // A pax header over the limit is refused before anything is allocated.
        let mut big = Vec::new();
        big.extend_from_slice(&header(b"pax", b'x', 0o644, MAX_PAX_BYTES + 1, b""));
        assert!(matches!(read_all(&big), Err(TarError::Invalid { .. })));
        let mut long = Vec::new();
        long.extend_from_slice(&header(b"././@LongLink", b'L', 0o644, u64::MAX / 2, b""));
        assert!(matches!(read_all(&long), Err(TarError::Invalid { .. })));
        // Sparse files are refused.
        let mut sp = Vec::new();
        sp.extend_from_slice(&header(b"s", b'S', 0o644, 0, b""));
        assert!(matches!(read_all(&sp), Err(TarError::Invalid { .. })));
    }

    #[test]
    fn a_huge_size_field_is_an_error_not_a_hang() {
        let mut t = Vec::new();
        let mut h = header(b"big", b'0', 0o644, 0, b"");
        // Base-256 size 2^62.
        h[124..136].copy_from_slice(&[0x80, 0, 0, 0, 0x40, 0, 0, 0, 0, 0, 0, 0]);
        h[148..156].copy_from_slice(b"        ");
        let sum: u64 = h.iter().map(|b| u64::from(*b)).sum();
        h[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
        t.extend_from_slice(&h);
        let mut r = Reader::new(Stream(&t[..]));
        let e = r.next_entry().unwrap().unwrap();
        assert_eq!(e.size, 1 << 62);
        assert!(matches!(r.next_entry(), Err(TarError::Truncated { .. })));
    }

    #[test]
    fn numbers() {
        assert_eq!(parse_number(b"0000755\0"), Some(0o755));
        assert_eq!(parse_number(b"  755 \0"), Some(0o755));
        assert_eq!(parse_number(b"\0\0\0"), Some(0));
        assert_eq!(parse_number(b"12a"), None);
        assert_eq!(parse_number(&[0x80, 1, 0]), Some(256));
        assert_eq!(parse_number(&[0xff, 1]), None);
        assert_eq!(
            parse_number(&[0x80, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]),
            None
        );
    }

    #[test]
    fn pax_overrides_and_bad_records() {
        let mut ov = Overrides::default();
        apply_pax(b"12 size=100\n", &mut ov, 0).unwrap();
        assert_eq!(ov.size, Some(100));
        assert!(apply_pax(b"99 size=100\n", &mut ov, 0).is_err());
        assert!(apply_pax(b"5 a=b", &mut ov, 0).is_err());
        assert!(apply_pax(b"x", &mut ov, 0).is_err());
        assert!(apply_pax(b"12 size=abc\n", &mut ov, 0).is_err());
    }

    #[test]
    fn an_empty_stream_is_an_empty_archive() {
        assert!(read_all(b"").unwrap().is_empty());
        assert!(read_all(&[0u8; 1024]).unwrap().is_empty());
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..3000)) {
            let _ = read_all(&bytes);
        }

        #[test]
        fn a_valid_header_then_garbage_never_panics(
            size in 0u64..5000,
            tail in proptest::collection::vec(any::<u8>(), 0..2000),
            flag in prop::sample::select(vec![b'0', b'1', b'2', b'5', b'x', b'L', b'K', b'g', b'Z']),
        ) {
            let mut t = header(b"name", flag, 0o755, size, b"link").to_vec();
            t.extend_from_slice(&tail);
            let _ = read_all(&t);
        }
    }
}
