//! What a file is, from its first bytes, when the kernel would only say ENOEXEC.
//!
//! This module owns the classification of a file's leading bytes for explanation: ELF and `#!`
//! scripts (the two formats the kernel runs itself, fs/binfmt_elf.c and fs/binfmt_script.c, both
//! recognised only at byte 0), Git LFS pointers checked out instead of the real file, well-known
//! foreign formats (Windows and macOS executables, archives, documents, an HTML error page saved
//! in place of a download), text that was meant to be a script but has no `#!` at byte 0, and
//! unrecognised or zero-filled data. It never reads the file itself; binfmt_misc matching is
//! done elsewhere.

/// What the first bytes of a file look like.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Format {
    /// The file has no bytes (the kernel says ENOEXEC).
    Empty,
    /// `"\x7fELF"` at byte 0.
    Elf,
    /// `"#!"` at byte 0.
    Script,
    /// A Git LFS pointer file (`"version https://git-lfs.github.com/spec/v1\n"`): the image was
    /// built from a checkout without the LFS objects.
    GitLfsPointer {
        /// The `oid` line's value, e.g. `"sha256:4d7a…"` (only when it is short and plain).
        oid: Option<String>,
        /// The `size` line's value: the size of the real file.
        size: Option<u64>,
    },
    /// A known format the kernel does not run, described for humans (for instance
    /// `"Windows PE executable"` or `"gzip data"`).
    Foreign(&'static str),
    /// Looks like text but has no `"#!"` at byte 0; the flags say what near-miss was found.
    Text(TextFlaws),
    /// Unrecognised data.
    Binary {
        /// Every byte looked at is zero (typical of a file whose contents were never written).
        all_zero: bool,
    },
}

/// Near-misses of a `#!` line in a text file. All false means plain text.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TextFlaws {
    /// A UTF-8 byte order mark (EF BB BF) comes before `"#!"`.
    pub bom_then_shebang: bool,
    /// Blank lines or spaces/tabs come before `"#!"`.
    pub leading_blank_then_shebang: bool,
    /// Starts with `"!#"` (the two characters swapped).
    pub bang_hash: bool,
    /// Starts with `"#"`, blanks, then `"!"` (for instance `"# !/bin/sh"`).
    pub hash_space_bang: bool,
    /// Starts with `"!/"` (the `'#'` is missing).
    pub bang_only: bool,
}

impl TextFlaws {
    /// Whether any near-miss was found.
    pub fn any(&self) -> bool {
        self.bom_then_shebang
            || self.leading_blank_then_shebang
            || self.bang_hash
            || self.hash_space_bang
            || self.bang_only
    }
}

const HTML: &str = "HTML document (an error page saved instead of the binary?)";

/// Classifies a file from its first bytes.
///
/// `header` is the first bytes of the file (up to 4096 are looked at); `file_size` is the size
/// of the whole file.
pub fn sniff(header: &[u8], file_size: u64) -> Format {
    let header = header.get(..4096).unwrap_or(header);
    if file_size == 0 {
        return Format::Empty;
    }
    if header.starts_with(b"\x7fELF") {
        return Format::Elf;
    }
    if header.starts_with(b"#!") {
        return Format::Script;
    }
    if let Some(name) = binary_magic(header) {
        return Format::Foreign(name);
    }
    if looks_like_text(header) {
        if let Some(lfs) = git_lfs_pointer(header) {
            return lfs;
        }
        if let Some(name) = text_format(header) {
            return Format::Foreign(name);
        }
        return Format::Text(text_flaws(header));
    }
    Format::Binary {
        all_zero: !header.is_empty() && header.iter().all(|&b| b == 0),
    }
}

fn be32(h: &[u8], at: usize) -> Option<u32> {
    let b = h.get(at..at.checked_add(4)?)?;
    Some(u32::from_be_bytes(b.try_into().ok()?))
}

fn le32(h: &[u8], at: usize) -> Option<u32> {
    be32(h, at).map(u32::swap_bytes)
}

/// Formats recognised by a fixed magic number.
fn binary_magic(h: &[u8]) -> Option<&'static str> {
    const MH_EXECUTE: u32 = 2;
    let starts = |m: &[u8]| h.starts_with(m);

    if starts(b"MZ") {
        // IMAGE_DOS_HEADER.e_lfanew at 0x3c points at the "PE\0\0" signature.
        let pe = le32(h, 0x3c)
            .and_then(|off| usize::try_from(off).ok())
            .and_then(|off| h.get(off..off.checked_add(4)?))
            == Some(b"PE\0\0");
        return Some(if pe {
            "Windows PE executable"
        } else {
            "DOS/Windows MZ executable"
        });
    }
    // Mach-O: the magic is written in the file's byte order.
    match be32(h, 0) {
        Some(0xfeed_facf) | Some(0xcffa_edfe) | Some(0xfeed_face) | Some(0xcefa_edfe) => {
            let magic = be32(h, 0).unwrap_or_default();
            let big = magic == 0xfeed_facf || magic == 0xfeed_face;
            let wide = magic == 0xfeed_facf || magic == 0xcffa_edfe;
            let filetype = if big { be32(h, 12) } else { le32(h, 12) };
            let exe = filetype == Some(MH_EXECUTE);
            return Some(match (wide, exe) {
                (true, true) => "Mach-O 64-bit executable",
                (true, false) => "Mach-O 64-bit binary",
                (false, true) => "Mach-O 32-bit executable",
                (false, false) => "Mach-O 32-bit binary",
            });
        }
        Some(0xcafe_babf) => return Some("Mach-O universal binary"),
        Some(0xcafe_babe) => {
            // Shared by Java classes and Mach-O fat binaries: a fat header's nfat_arch is small,
            // a class file's major version (bytes 6-7) is 45 or more.
            let nfat = be32(h, 4)?;
            let major = u16::from_be_bytes(h.get(6..8)?.try_into().ok()?);
            if (1..45).contains(&nfat) {
                return Some("Mach-O universal binary");
            }
            if major >= 45 {
                return Some("Java class file");
            }
            return None;
        }
        _ => {}
    }
    let table: &[(&[u8], &'static str)] = &[
        (b"!<arch>\n", "ar archive (static library or .deb)"),
        (b"PK\x03\x04", "zip archive (jar?)"),
        (b"PK\x05\x06", "zip archive (jar?)"),
        (b"\x1f\x8b", "gzip data"),
        (b"\xfd7zXZ\x00", "xz data"),
        (b"\x28\xb5\x2f\xfd", "zstd data"),
        (b"\x04\x22\x4d\x18", "lz4 data"),
        (b"7z\xbc\xaf\x27\x1c", "7-zip archive"),
        (b"Rar!\x1a\x07", "RAR archive"),
        (b"\0asm", "WebAssembly module"),
        (b"%PDF-", "PDF document"),
        (b"\x89PNG\r\n\x1a\n", "PNG image"),
        (b"\xff\xd8\xff", "JPEG image"),
        (b"GIF87a", "GIF image"),
        (b"GIF89a", "GIF image"),
        (b"hsqs", "squashfs filesystem image"),
        (b"SQLite format 3\0", "SQLite database"),
        (b"dex\n", "Android dex file"),
        (b"\xed\xab\xee\xdb", "RPM package"),
        (b"\xff\xfe", "UTF-16 text (a script saved as UTF-16?)"),
        (b"\xfe\xff", "UTF-16 text (a script saved as UTF-16?)"),
    ];
    if let Some((_, name)) = table.iter().find(|(m, _)| starts(m)) {
        return Some(name);
    }
    if starts(b"BZh") && h.get(3).is_some_and(|c| (b'1'..=b'9').contains(c)) {
        return Some("bzip2 data");
    }
    // POSIX and GNU tar: "ustar" at offset 257 of the first header block.
    if h.get(257..262) == Some(b"ustar") {
        return Some("tar archive");
    }
    // Python bytecode: a 16-bit little-endian magic then "\r\n" (3000..3999 for 3.x, 62011..62211
    // for 2.3 to 2.7).
    if h.get(2..4) == Some(b"\r\n") {
        let magic = u16::from_le_bytes(h.get(0..2)?.try_into().ok()?);
        if (3000..4000).contains(&magic) || (62011..=62211).contains(&magic) {
            return Some("Python bytecode");
        }
    }
    None
}

/// Whether the bytes read as text: no NUL, UTF-8 (a sequence cut by the end of the buffer
/// aside) or mostly ASCII, and few control characters.
fn looks_like_text(h: &[u8]) -> bool {
    if h.is_empty() || h.contains(&0) {
        return false;
    }
    let utf8 = match std::str::from_utf8(h) {
        Ok(_) => true,
        Err(e) => e.error_len().is_none(),
    };
    let control = h
        .iter()
        .filter(|&&c| {
            (c < 0x20 && !matches!(c, b'\t' | b'\n' | b'\r' | 0x0c | 0x1b | 0x08)) || c == 0x7f
        })
        .count();
    if control.saturating_mul(100) > h.len() {
        return false;
    }
    if utf8 {
        return true;
    }
    let ascii = h.iter().filter(|c| c.is_ascii()).count();
    ascii.saturating_mul(100) >= h.len().saturating_mul(95)
}

/// Git LFS pointer (https://github.com/git-lfs/git-lfs/blob/main/docs/spec.md): a version
/// line, then `key value` lines.
fn git_lfs_pointer(h: &[u8]) -> Option<Format> {
    let rest = h
        .strip_prefix(b"version https://git-lfs.github.com/spec/v1\n")
        .or_else(|| h.strip_prefix(b"version https://hawser.github.com/spec/v1\n"))?;
    let mut oid = None;
    let mut size = None;
    for line in rest.split(|&c| c == b'\n').take(16) {
        if let Some(v) = line.strip_prefix(b"oid ") {
            let plain = v.len() <= 128
                && v.iter()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b':');
            if plain {
                oid = std::str::from_utf8(v).ok().map(str::to_owned);
            }
        } else if let Some(v) = line.strip_prefix(b"size ") {
            size = std::str::from_utf8(v)
                .ok()
                .and_then(|s| s.parse::<u64>().ok());
        }
    }
    Some(Format::GitLfsPointer { oid, size })
}

/// Text formats recognised by how they start (after a BOM and blanks).
fn text_format(h: &[u8]) -> Option<&'static str> {
    let t = trim_start(h.strip_prefix(b"\xef\xbb\xbf").unwrap_or(h));
    let lower: Vec<u8> = t.iter().take(512).map(u8::to_ascii_lowercase).collect();
    let has = |needle: &[u8]| lower.windows(needle.len()).any(|w| w == needle);
    if lower.starts_with(b"<!doctype html")
        || lower.starts_with(b"<html")
        || lower.starts_with(b"<head")
        || lower.starts_with(b"<body")
    {
        return Some(HTML);
    }
    if lower.starts_with(b"<?xml") {
        return Some(if has(b"<html") { HTML } else { "XML document" });
    }
    if lower.starts_with(b"<!--") && has(b"<html") {
        return Some(HTML);
    }
    match t.first() {
        Some(b'{') => {
            let next = trim_start(t.get(1..).unwrap_or_default()).first();
            if matches!(next, Some(b'"') | Some(b'}')) {
                return Some("JSON document");
            }
        }
        Some(b'[') => {
            let after = trim_start(t.get(1..).unwrap_or_default());
            let json = match after.first() {
                Some(b'{') | Some(b'[') | Some(b'"') | Some(b']') => true,
                Some(c) if c.is_ascii_digit() => true,
                Some(b'-') => after.get(1).is_some_and(u8::is_ascii_digit),
                _ => false,
            };
            if json {
                return Some("JSON document");
            }
        }
        _ => {}
    }
    None
}

fn trim_start(mut t: &[u8]) -> &[u8] {
    while let Some((c, rest)) = t.split_first() {
        if matches!(c, b' ' | b'\t' | b'\r' | b'\n' | 0x0c) {
            t = rest;
        } else {
            break;
        }
    }
    t
}

fn text_flaws(h: &[u8]) -> TextFlaws {
    let (bom, after_bom) = match h.strip_prefix(b"\xef\xbb\xbf") {
        Some(rest) => (true, rest),
        None => (false, h),
    };
    let rest = trim_start(after_bom);
    let blank = rest.len() != after_bom.len();
    let shebang = rest.starts_with(b"#!");
    let hash_space_bang = rest.strip_prefix(b"#").is_some_and(|r| {
        let r2 = r
            .iter()
            .position(|&c| c != b' ' && c != b'\t')
            .and_then(|i| r.get(i..))
            .unwrap_or_default();
        r2.len() < r.len() && r2.starts_with(b"!")
    });
    let bang_only = rest.strip_prefix(b"!").is_some_and(|r| {
        r.iter()
            .find(|&&c| c != b' ' && c != b'\t')
            .is_some_and(|&c| c == b'/')
    });
    TextFlaws {
        bom_then_shebang: bom && shebang,
        leading_blank_then_shebang: blank && shebang,
        bang_hash: rest.starts_with(b"!#"),
        hash_space_bang,
        bang_only,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn s(h: &[u8]) -> Format {
        sniff(h, h.len() as u64)
    }

    fn flaws(h: &[u8]) -> TextFlaws {
        match s(h) {
            Format::Text(f) => f,
            other => panic!("expected text for {h:?}, got {other:?}"),
        }
    }

    #[test]
    fn empty_elf_script() {
        assert_eq!(sniff(b"", 0), Format::Empty);
        assert_eq!(s(b"\x7fELF\x02\x01\x01"), Format::Elf);
        assert_eq!(s(b"#!/bin/sh\n"), Format::Script);
        assert_eq!(s(b"#!"), Format::Script);
        // A header that could not be read from a non-empty file is not "empty".
        assert_eq!(sniff(b"", 10), Format::Binary { all_zero: false });
    }

    #[test]
    fn zero_filled_and_random() {
        assert_eq!(s(&[0u8; 4096]), Format::Binary { all_zero: true });
        // Only the first 4096 bytes are looked at.
        let mut v = vec![0u8; 8192];
        v[5000] = 1;
        assert_eq!(sniff(&v, 8192), Format::Binary { all_zero: true });
        assert_eq!(
            s(&[0u8, 1, 2, 3, 0xff, 0x80, 0, 7]),
            Format::Binary { all_zero: false }
        );
    }

    #[test]
    fn git_lfs_pointer() {
        let p = b"version https://git-lfs.github.com/spec/v1\noid sha256:4d7a214614ab2935c943f9e0ff69d22eadbb8f32b1258daaa5e2ca24d17e2393\nsize 12345\n";
        assert_eq!(
            s(p),
            Format::GitLfsPointer {
                oid: Some(
                    "sha256:4d7a214614ab2935c943f9e0ff69d22eadbb8f32b1258daaa5e2ca24d17e2393"
                        .into()
                ),
                size: Some(12345)
            }
        );
        let bad = b"version https://git-lfs.github.com/spec/v1\noid sha256:\x1b[31mX\nsize lots\n";
        assert_eq!(
            s(bad),
            Format::GitLfsPointer {
                oid: None,
                size: None
            }
        );
    }

    #[test]
    fn windows_and_mac() {
        let mut pe = vec![0u8; 256];
        pe[0] = b'M';
        pe[1] = b'Z';
        pe[0x3c] = 0x80;
        pe[0x80..0x84].copy_from_slice(b"PE\0\0");
        assert_eq!(s(&pe), Format::Foreign("Windows PE executable"));
        pe[0x80] = b'X';
        assert_eq!(s(&pe), Format::Foreign("DOS/Windows MZ executable"));
        // e_lfanew pointing far away must not panic.
        pe[0x3c..0x40].copy_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(s(&pe), Format::Foreign("DOS/Windows MZ executable"));

        let mut macho = vec![0u8; 32];
        macho[0..4].copy_from_slice(&[0xcf, 0xfa, 0xed, 0xfe]);
        macho[12..16].copy_from_slice(&2u32.to_le_bytes());
        assert_eq!(s(&macho), Format::Foreign("Mach-O 64-bit executable"));
        macho[12..16].copy_from_slice(&6u32.to_le_bytes());
        assert_eq!(s(&macho), Format::Foreign("Mach-O 64-bit binary"));
        let mut ppc = vec![0u8; 32];
        ppc[0..4].copy_from_slice(&[0xfe, 0xed, 0xfa, 0xce]);
        ppc[12..16].copy_from_slice(&2u32.to_be_bytes());
        assert_eq!(s(&ppc), Format::Foreign("Mach-O 32-bit executable"));
    }

    #[test]
    fn cafebabe_java_or_fat() {
        // Java 8 class: minor 0, major 52.
        assert_eq!(
            s(b"\xca\xfe\xba\xbe\x00\x00\x00\x34rest"),
            Format::Foreign("Java class file")
        );
        // Java 1.1 with minor 3 (45.3).
        assert_eq!(
            s(b"\xca\xfe\xba\xbe\x00\x03\x00\x2drest"),
            Format::Foreign("Java class file")
        );
        // Fat binary with two architectures.
        assert_eq!(
            s(b"\xca\xfe\xba\xbe\x00\x00\x00\x02\x01\x00\x00\x07"),
            Format::Foreign("Mach-O universal binary")
        );
        // Too short to tell: not claimed.
        assert!(matches!(s(b"\xca\xfe\xba\xbe"), Format::Binary { .. }));
    }

    #[test]
    fn archives_and_documents() {
        let cases: &[(&[u8], &str)] = &[
            (
                b"!<arch>\ndebian-binary   ",
                "ar archive (static library or .deb)",
            ),
            (b"PK\x03\x04\x14\x00", "zip archive (jar?)"),
            (b"\x1f\x8b\x08\x00", "gzip data"),
            (b"\xfd7zXZ\x00\x00", "xz data"),
            (b"\x28\xb5\x2f\xfd\x00", "zstd data"),
            (b"BZh91AY&SY", "bzip2 data"),
            (b"\0asm\x01\0\0\0", "WebAssembly module"),
            (b"%PDF-1.7\n", "PDF document"),
            (b"\x89PNG\r\n\x1a\n\0\0", "PNG image"),
            (b"\x55\x0d\x0d\x0a\0\0\0\0", "Python bytecode"),
            (
                b"\xff\xfe#\0!\0/\0",
                "UTF-16 text (a script saved as UTF-16?)",
            ),
        ];
        for (bytes, name) in cases {
            assert_eq!(s(bytes), Format::Foreign(name), "{bytes:?}");
        }
        // "BZh" without a block size digit is not bzip2.
        assert!(!matches!(s(b"BZhx"), Format::Foreign(_)));
        let mut tar = vec![0u8; 512];
        tar[..8].copy_from_slice(b"bin/app\0");
        tar[257..263].copy_from_slice(b"ustar\0");
        assert_eq!(s(&tar), Format::Foreign("tar archive"));
    }

    #[test]
    fn text_formats() {
        assert_eq!(
            s(b"<!DOCTYPE html>\n<html><body>404</body></html>"),
            Format::Foreign(HTML)
        );
        assert_eq!(s(b"\n  <html lang=en>"), Format::Foreign(HTML));
        assert_eq!(
            s(b"<?xml version=\"1.0\"?>\n<Error><Code>AccessDenied</Code></Error>"),
            Format::Foreign("XML document")
        );
        assert_eq!(
            s(b"<?xml version=\"1.0\"?>\n<html xmlns=\"x\">"),
            Format::Foreign(HTML)
        );
        assert_eq!(
            s(b"{\"errors\":[{\"code\":\"UNAUTHORIZED\"}]}"),
            Format::Foreign("JSON document")
        );
        assert_eq!(s(b"[\n  {\"a\": 1}\n]"), Format::Foreign("JSON document"));
        // A shell test bracket is not JSON.
        assert_eq!(
            s(b"[ -f /etc/x ] && exit 0\n"),
            Format::Text(TextFlaws::default())
        );
    }

    #[test]
    fn shebang_near_misses() {
        let f = flaws(b"\xef\xbb\xbf#!/bin/sh\n");
        assert!(f.bom_then_shebang && !f.leading_blank_then_shebang);
        let f = flaws(b"\n\n#!/bin/bash\n");
        assert!(f.leading_blank_then_shebang && !f.bom_then_shebang);
        let f = flaws(b"  #!/bin/bash\n");
        assert!(f.leading_blank_then_shebang);
        let f = flaws(b"\r\n#!/bin/bash\r\n");
        assert!(f.leading_blank_then_shebang);
        let f = flaws(b"\xef\xbb\xbf\n#!/bin/sh\n");
        assert!(f.bom_then_shebang && f.leading_blank_then_shebang);
        assert!(flaws(b"!#/bin/sh\n").bang_hash);
        assert!(flaws(b"# !/bin/sh\n").hash_space_bang);
        assert!(flaws(b"#\t!/bin/sh\n").hash_space_bang);
        assert!(flaws(b"!/usr/bin/env bash\n").bang_only);
        assert!(flaws(b"! /bin/sh\n").bang_only);
        let plain = flaws(b"echo hello\n");
        assert!(!plain.any());
        // A comment is not a near-miss.
        assert!(!flaws(b"# comment\necho\n").any());
    }

    #[test]
    fn latin1_text_and_cut_utf8() {
        assert!(matches!(
            s(b"echo 'caf\xe9 au lait is served here, in Latin-1'\n"),
            Format::Text(_)
        ));
        // Mostly high bytes is not text.
        assert!(matches!(s(b"\xe9\xe9\xe9\xe9ab"), Format::Binary { .. }));
        // A multi-byte character cut by the 4096-byte window is still text.
        let mut v = vec![b'a'; 4095];
        v.extend_from_slice("é".as_bytes());
        assert!(matches!(sniff(&v, 10_000), Format::Text(_)));
    }

    proptest! {
        #[test]
        fn never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..5000), size in any::<u64>()) {
            let _ = sniff(&bytes, size);
        }

        #[test]
        fn magic_prefixes_never_panic(prefix in prop_oneof![
            Just(&b"MZ"[..]), Just(&b"\xca\xfe\xba\xbe"[..]), Just(&b"\xcf\xfa\xed\xfe"[..]),
            Just(&b"version https://git-lfs.github.com/spec/v1\n"[..]), Just(&b"\xef\xbb\xbf"[..]),
            Just(&b"#"[..]), Just(&b"!"[..]), Just(&b"["[..]), Just(&b"{"[..]),
        ], tail in proptest::collection::vec(any::<u8>(), 0..300)) {
            let mut v = prefix.to_vec();
            v.extend_from_slice(&tail);
            let _ = sniff(&v, v.len() as u64);
        }
    }
}
