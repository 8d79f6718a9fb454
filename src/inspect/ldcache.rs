//! Bounded lookups in glibc's `/etc/ld.so.cache`, the index `ldconfig` writes of the libraries
//! in the directories of `/etc/ld.so.conf`.
//!
//! This module owns the cache's format as glibc's loader reads it (elf/dl-cache.c
//! `_dl_load_cache_lookup` and `search_cache`, sysdeps/generic/dl-cache.h): the new format
//! (`glibc-ld.so.cache1.1`), alone or after the old libc5 table (`ld.so-1.7.0`), or the old
//! table alone. A lookup is glibc's binary search over entries sorted by `_dl_cache_libcmp`,
//! done with positioned reads: one entry and one key per probe, so a lookup costs about
//! `log2(entries)` small reads whatever the file's size, and a file that lies about its counts
//! or offsets only makes the lookup fail.

use crate::inspect::elf::{Class, ReadAt, bytes_at, read_full};

use goblin::elf::header::{
    EM_386, EM_AARCH64, EM_ARM, EM_LOONGARCH, EM_PPC64, EM_RISCV, EM_S390, EM_X86_64,
};

/// `CACHEMAGIC`: the old (libc5) format.
const OLD_MAGIC: &[u8] = b"ld.so-1.7.0";
/// `CACHEMAGIC_NEW` followed by `CACHE_VERSION`.
const NEW_MAGIC: &[u8] = b"glibc-ld.so.cache1.1";
/// `struct cache_file`: magic (12 with padding) and nlibs.
const OLD_HEADER: u64 = 16;
/// `struct file_entry`: flags, key, value.
const OLD_ENTRY: u64 = 12;
/// `struct cache_file_new` up to its entries.
const NEW_HEADER: u64 = 48;
/// `struct file_entry_new`: flags, key, value, osversion, hwcap.
const NEW_ENTRY: u64 = 24;
/// Longest key or value read (`PATH_MAX`, NUL included).
const MAX_NAME: usize = 4096;
/// Entries of one name looked at (one per hwcaps subdirectory and flag combination).
pub const MAX_SAME_NAME: usize = 32;

/// `FLAG_ELF_LIBC6`: the type bits of a glibc library entry.
pub const FLAG_ELF_LIBC6: i32 = 0x0003;
/// `FLAG_TYPE_MASK`.
const FLAG_TYPE_MASK: i32 = 0x00ff;

/// An opened cache: where its entries and strings are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LdCache {
    /// File offset of the first entry.
    entries: u64,
    /// Bytes per entry.
    entry_size: u64,
    /// Number of entries.
    nlibs: u64,
    /// File offset that string indices count from.
    strings: u64,
    /// File size.
    size: u64,
    /// Multi-byte fields are big-endian (the new header's flags say so).
    big: bool,
}

fn u32_at(b: &[u8], at: usize, big: bool) -> Option<u32> {
    let x: [u8; 4] = b.get(at..at.checked_add(4)?)?.try_into().ok()?;
    Some(if big {
        u32::from_be_bytes(x)
    } else {
        u32::from_le_bytes(x)
    })
}

impl LdCache {
    /// Opens the cache in `file`: reads and checks its headers (two small reads). `None` when
    /// it is neither format, or its tables do not fit in the file.
    pub fn parse(file: &dyn ReadAt) -> Option<LdCache> {
        let size = file.size();
        let mut head = [0u8; NEW_HEADER as usize];
        let n = read_full(file, &mut head, 0);
        let head = head.get(..n)?;
        if head.starts_with(NEW_MAGIC) {
            return Self::new_format(0, head, size);
        }
        if !head.starts_with(OLD_MAGIC) {
            return None;
        }
        let nlibs = u64::from(u32_at(head, 12, false)?);
        let table_end = nlibs.checked_mul(OLD_ENTRY)?.checked_add(OLD_HEADER)?;
        if table_end > size {
            return None;
        }
        // The new table follows, aligned like struct cache_file_new (8 bytes).
        let new_at = table_end.checked_add(7)? & !7;
        let mut nh = [0u8; NEW_HEADER as usize];
        let n = read_full(file, &mut nh, new_at);
        if let Some(nh) = nh.get(..n).filter(|h| h.starts_with(NEW_MAGIC))
            && let Some(c) = Self::new_format(new_at, nh, size)
        {
            return Some(c);
        }
        // Old format alone: strings follow the entries and count from there.
        Some(LdCache {
            entries: OLD_HEADER,
            entry_size: OLD_ENTRY,
            nlibs,
            strings: table_end,
            size,
            big: false,
        })
    }

    fn new_format(at: u64, head: &[u8], size: u64) -> Option<LdCache> {
        if head.len() < NEW_HEADER as usize {
            return None;
        }
        // flags: 0 unset (native), 1 invalid, 2 little-endian, 3 big-endian.
        let big = match head.get(28)? & 3 {
            3 => true,
            1 => return None,
            _ => false,
        };
        let nlibs = u64::from(u32_at(head, 20, big)?);
        let end = nlibs
            .checked_mul(NEW_ENTRY)?
            .checked_add(NEW_HEADER)?
            .checked_add(at)?;
        if end > size {
            return None;
        }
        Some(LdCache {
            entries: at + NEW_HEADER,
            entry_size: NEW_ENTRY,
            nlibs,
            strings: at,
            size,
            big,
        })
    }

    /// Number of entries.
    pub fn len(&self) -> u64 {
        self.nlibs
    }

    /// True when the cache has no entries.
    pub fn is_empty(&self) -> bool {
        self.nlibs == 0
    }

    /// (flags, key, value) of entry `i`.
    fn entry(&self, file: &dyn ReadAt, i: u64) -> Option<(i32, u32, u32)> {
        let at = self.entries.checked_add(i.checked_mul(self.entry_size)?)?;
        let b = bytes_at(&[], file, at, 12);
        let flags = u32_at(&b, 0, self.big)? as i32;
        Some((flags, u32_at(&b, 4, self.big)?, u32_at(&b, 8, self.big)?))
    }

    /// The string at index `idx` (`_dl_cache_verify_ptr`: inside the file), without its NUL.
    fn string(&self, file: &dyn ReadAt, idx: u32, max: usize) -> Option<Vec<u8>> {
        let at = self.strings.checked_add(u64::from(idx))?;
        if at >= self.size {
            return None;
        }
        let mut b = bytes_at(&[], file, at, max.min(256));
        match b.iter().position(|&c| c == 0) {
            Some(n) => {
                b.truncate(n);
                Some(b)
            }
            None if b.len() == 256 && max > 256 => {
                let mut b = bytes_at(&[], file, at, max);
                let n = b.iter().position(|&c| c == 0)?;
                b.truncate(n);
                Some(b)
            }
            // A key cut short still orders: compare what is there.
            None => Some(b),
        }
    }

    /// The paths the cache gives for library `name` whose flags suit the program
    /// (`want` from [`cache_flags`]; `None` accepts any glibc library entry), in cache order,
    /// at most [`MAX_SAME_NAME`]. Empty when the name is not in the cache.
    pub fn lookup(&self, file: &dyn ReadAt, name: &[u8], want: Option<i32>) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        if self.nlibs == 0 || name.is_empty() || name.len() >= MAX_NAME {
            return out;
        }
        // search_cache: entries are sorted so that _dl_cache_libcmp(name, key) < 0 moves right.
        let (mut left, mut right) = (0u64, self.nlibs - 1);
        let mut hit = None;
        let mut probes = 0;
        while left <= right && probes < 64 {
            probes += 1;
            let middle = left + (right - left) / 2;
            let Some((_, key, _)) = self.entry(file, middle) else {
                return out;
            };
            let Some(k) = self.string(file, key, MAX_NAME) else {
                return out;
            };
            match libcmp(name, &k) {
                std::cmp::Ordering::Equal => {
                    hit = Some(middle);
                    break;
                }
                std::cmp::Ordering::Less => left = middle + 1,
                std::cmp::Ordering::Greater => {
                    if middle == 0 {
                        break;
                    }
                    right = middle - 1;
                }
            }
        }
        let Some(mut first) = hit else {
            return out;
        };
        // Back to the first entry of this name, then forward over all of them.
        let same = |i: u64| {
            self.entry(file, i)
                .and_then(|(_, key, _)| self.string(file, key, MAX_NAME))
                .is_some_and(|k| libcmp(name, &k) == std::cmp::Ordering::Equal)
        };
        let mut steps = 0;
        while first > 0 && steps < MAX_SAME_NAME && same(first - 1) {
            first -= 1;
            steps += 1;
        }
        let mut i = first;
        while i < self.nlibs && out.len() < MAX_SAME_NAME && i - first < MAX_SAME_NAME as u64 {
            let Some((flags, key, value)) = self.entry(file, i) else {
                break;
            };
            let same_name = self
                .string(file, key, MAX_NAME)
                .is_some_and(|k| libcmp(name, &k) == std::cmp::Ordering::Equal);
            if !same_name {
                break;
            }
            if flags_match(flags, want)
                && let Some(path) = self.string(file, value, MAX_NAME)
                && !out.contains(&path)
            {
                out.push(path);
            }
            i += 1;
        }
        out
    }
}

/// Whether an entry's flags suit the program (`_dl_cache_check_flags`).
fn flags_match(flags: i32, want: Option<i32>) -> bool {
    match want {
        Some(w) if w == FLAG_ELF_LIBC6 => flags == FLAG_ELF_LIBC6 || flags == 1,
        Some(w) => flags == w,
        None => flags & FLAG_TYPE_MASK == FLAG_ELF_LIBC6,
    }
}

/// The cache flags glibc's loader accepts for a program of this class, machine and `e_flags`
/// (sysdeps/*/dl-cache.h `_dl_cache_check_flags`), or `None` when execguard does not know them
/// (then any glibc library entry is taken, and the library's own header decides).
pub fn cache_flags(class: Option<Class>, machine: u16, e_flags: u32) -> Option<i32> {
    let lib64 = class == Some(Class::Elf64);
    let arch = match machine {
        EM_X86_64 if lib64 => 0x0300,
        EM_X86_64 => 0x0800,
        EM_386 => 0,
        EM_AARCH64 if lib64 => 0x0a00,
        // EF_ARM_ABI_FLOAT_HARD.
        EM_ARM if e_flags & 0x400 != 0 => 0x0900,
        EM_PPC64 if lib64 => 0x0500,
        EM_S390 if lib64 => 0x0400,
        // FLAG_RISCV_FLOAT_ABI_DOUBLE for lp64d (EF_RISCV_FLOAT_ABI_DOUBLE).
        EM_RISCV if lib64 && e_flags & 0x6 == 0x4 => 0x1000,
        // FLAG_LARCH_FLOAT_ABI_DOUBLE for lp64d.
        EM_LOONGARCH if lib64 && e_flags & 0x7 == 0x3 => 0x1200,
        _ => return None,
    };
    Some(FLAG_ELF_LIBC6 | arch)
}

/// glibc's `_dl_cache_libcmp`: byte order, except that runs of digits compare as numbers
/// (`libfoo.so.10` after `libfoo.so.9`). The end of a slice counts as NUL.
pub fn libcmp(a: &[u8], b: &[u8]) -> std::cmp::Ordering {
    use std::cmp::Ordering;
    let at = |s: &[u8], i: usize| s.get(i).copied().unwrap_or(0);
    let (mut i, mut j) = (0usize, 0usize);
    while at(a, i) != 0 {
        let (c1, c2) = (at(a, i), at(b, j));
        if c1.is_ascii_digit() {
            if !c2.is_ascii_digit() {
                return Ordering::Greater;
            }
            // Compare the runs as numbers: skip leading zeros, then longer is bigger, then
            // digit by digit (glibc computes int values; this never overflows).
            let run = |s: &[u8], mut k: usize| {
                while at(s, k) == b'0' && at(s, k + 1).is_ascii_digit() {
                    k += 1;
                }
                let start = k;
                while at(s, k).is_ascii_digit() {
                    k += 1;
                }
                (start, k)
            };
            let (s1, e1) = run(a, i);
            let (s2, e2) = run(b, j);
            let ord = (e1 - s1)
                .cmp(&(e2 - s2))
                .then_with(|| a.get(s1..e1).cmp(&b.get(s2..e2)));
            if ord != Ordering::Equal {
                return ord;
            }
            i = e1;
            j = e2;
        } else if c2.is_ascii_digit() {
            return Ordering::Less;
        } else if c1 != c2 {
            return c1.cmp(&c2);
        } else {
            i += 1;
            j += 1;
        }
    }
    0u8.cmp(&at(b, j))
}

/// Cache files for the tests of this module and of the checks built on it.
#[cfg(test)]
pub(crate) mod build {
    use super::{NEW_ENTRY, NEW_HEADER, NEW_MAGIC, libcmp};

    /// Writes a cache the way ldconfig does (new format, entries sorted for the loader's
    /// binary search): (name, flags, path).
    pub(crate) fn write_cache(libs: &[(&str, i32, &str)], old_first: bool) -> Vec<u8> {
        let mut libs: Vec<(&str, i32, &str)> = libs.to_vec();
        // ldconfig sorts descending by _dl_cache_libcmp (then by flags).
        libs.sort_by(|a, b| libcmp(b.0.as_bytes(), a.0.as_bytes()));
        let mut out = Vec::new();
        if old_first {
            out.extend_from_slice(b"ld.so-1.7.0\0");
            out.extend_from_slice(&0u32.to_le_bytes());
            while out.len() % 8 != 0 {
                out.push(0);
            }
        }
        let base = out.len();
        let strings_at = NEW_HEADER as usize + libs.len() * NEW_ENTRY as usize;
        let mut strings = Vec::new();
        let mut entries = Vec::new();
        for (name, flags, path) in &libs {
            let k = strings_at + strings.len();
            strings.extend_from_slice(name.as_bytes());
            strings.push(0);
            let v = strings_at + strings.len();
            strings.extend_from_slice(path.as_bytes());
            strings.push(0);
            entries.extend_from_slice(&flags.to_le_bytes());
            entries.extend_from_slice(&(k as u32).to_le_bytes());
            entries.extend_from_slice(&(v as u32).to_le_bytes());
            entries.extend_from_slice(&0u32.to_le_bytes());
            entries.extend_from_slice(&0u64.to_le_bytes());
        }
        out.extend_from_slice(NEW_MAGIC);
        out.extend_from_slice(&(libs.len() as u32).to_le_bytes());
        out.extend_from_slice(&(strings.len() as u32).to_le_bytes());
        out.push(2); // little-endian
        out.extend_from_slice(&[0; 3]);
        out.extend_from_slice(&0u32.to_le_bytes());
        out.extend_from_slice(&[0; 12]);
        assert_eq!(out.len() - base, NEW_HEADER as usize);
        out.extend_from_slice(&entries);
        out.extend_from_slice(&strings);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::build::write_cache;
    use super::*;
    use proptest::prelude::*;
    use std::cmp::Ordering;

    const X64: i32 = 0x0303;

    fn sample() -> Vec<(String, i32, String)> {
        let mut v = Vec::new();
        for i in 0..300 {
            let name = format!("lib{}x.so.{}", (b'a' + (i % 26) as u8) as char, i);
            let path = format!("/usr/lib/x86_64-linux-gnu/{name}");
            v.push((name, X64, path));
        }
        v.push((
            "libc.so.6".into(),
            X64,
            "/lib/x86_64-linux-gnu/libc.so.6".into(),
        ));
        v.push((
            "libc.so.6".into(),
            0x0003,
            "/lib/i386-linux-gnu/libc.so.6".into(),
        ));
        v.push(("libfoo.so.9".into(), X64, "/opt/9/libfoo.so.9".into()));
        v.push(("libfoo.so.10".into(), X64, "/opt/10/libfoo.so.10".into()));
        v
    }

    fn cache_of(v: &[(String, i32, String)], old_first: bool) -> Vec<u8> {
        let libs: Vec<(&str, i32, &str)> = v
            .iter()
            .map(|(a, f, b)| (a.as_str(), *f, b.as_str()))
            .collect();
        write_cache(&libs, old_first)
    }

    #[test]
    fn finds_every_entry_by_binary_search() {
        let v = sample();
        for old_first in [false, true] {
            let bytes = cache_of(&v, old_first);
            let c = LdCache::parse(&bytes).unwrap_or_else(|| panic!("cache not recognised"));
            assert_eq!(c.len(), v.len() as u64);
            for (name, flags, path) in &v {
                if *flags != X64 {
                    continue;
                }
                let got = c.lookup(&bytes, name.as_bytes(), Some(X64));
                assert_eq!(got, vec![path.as_bytes().to_vec()], "{name}");
            }
            assert!(c.lookup(&bytes, b"libnothere.so.1", Some(X64)).is_empty());
            assert!(c.lookup(&bytes, b"", Some(X64)).is_empty());
        }
    }

    #[test]
    fn flags_select_the_architecture() {
        let bytes = cache_of(&sample(), false);
        let c = LdCache::parse(&bytes).unwrap_or_else(|| panic!());
        assert_eq!(
            c.lookup(&bytes, b"libc.so.6", Some(0x0003)),
            vec![b"/lib/i386-linux-gnu/libc.so.6".to_vec()]
        );
        assert_eq!(c.lookup(&bytes, b"libc.so.6", None).len(), 2);
        assert!(c.lookup(&bytes, b"libc.so.6", Some(0x0a03)).is_empty());
        assert_eq!(cache_flags(Some(Class::Elf64), EM_X86_64, 0), Some(X64));
        assert_eq!(cache_flags(Some(Class::Elf64), EM_AARCH64, 0), Some(0x0a03));
        assert_eq!(cache_flags(Some(Class::Elf32), EM_386, 0), Some(3));
        assert_eq!(
            cache_flags(Some(Class::Elf32), EM_ARM, 0x0500_0400),
            Some(0x0903)
        );
        assert_eq!(cache_flags(Some(Class::Elf32), EM_ARM, 0x0500_0200), None);
    }

    #[test]
    fn libcmp_orders_numbers_numerically() {
        assert_eq!(libcmp(b"libfoo.so.10", b"libfoo.so.9"), Ordering::Greater);
        assert_eq!(libcmp(b"libfoo.so.9", b"libfoo.so.10"), Ordering::Less);
        assert_eq!(libcmp(b"libfoo.so.09", b"libfoo.so.9"), Ordering::Equal);
        assert_eq!(libcmp(b"liba.so", b"liba.so"), Ordering::Equal);
        assert_eq!(libcmp(b"liba.so", b"liba.so.1"), Ordering::Less);
        assert_eq!(libcmp(b"liba.so.1", b"liba.so"), Ordering::Greater);
        assert_eq!(libcmp(b"lib1", b"liba"), Ordering::Greater);
        assert_eq!(libcmp(b"liba", b"lib1"), Ordering::Less);
        assert_eq!(libcmp(b"", b""), Ordering::Equal);
        assert_eq!(
            libcmp(b"99999999999999999999999", b"1"),
            Ordering::Greater,
            "no overflow"
        );
    }

    #[test]
    fn rejects_what_is_not_a_cache() {
        assert_eq!(LdCache::parse(&b"".to_vec()), None);
        assert_eq!(LdCache::parse(&b"\x7fELF".to_vec()), None);
        // nlibs larger than the file.
        let mut bytes = cache_of(&sample(), false);
        bytes[20..24].copy_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(LdCache::parse(&bytes), None);
        // "invalid" endianness flag.
        let mut bytes = cache_of(&sample(), false);
        bytes[28] = 1;
        assert_eq!(LdCache::parse(&bytes), None);
        // Old format alone, empty: a valid cache without entries.
        let mut old = b"ld.so-1.7.0\0".to_vec();
        old.extend_from_slice(&0u32.to_le_bytes());
        let c = LdCache::parse(&old).unwrap_or_else(|| panic!());
        assert!(c.is_empty());
        assert!(c.lookup(&old, b"libc.so.6", None).is_empty());
    }

    #[test]
    fn bogus_offsets_only_fail_the_lookup() {
        let mut bytes = cache_of(&sample(), false);
        // Point every key far past the end.
        let n = u32::from_le_bytes(bytes[20..24].try_into().unwrap_or_default()) as usize;
        for i in 0..n {
            let at = 48 + i * 24 + 4;
            bytes[at..at + 4].copy_from_slice(&u32::MAX.to_le_bytes());
        }
        let c = LdCache::parse(&bytes).unwrap_or_else(|| panic!());
        assert!(c.lookup(&bytes, b"libc.so.6", None).is_empty());
    }

    #[test]
    fn real_host_cache() {
        let Ok(f) = std::fs::File::open("/etc/ld.so.cache") else {
            return;
        };
        let c = LdCache::parse(&f).unwrap_or_else(|| panic!("host cache not recognised"));
        assert!(!c.is_empty());
        let got = c.lookup(
            &f,
            b"libc.so.6",
            cache_flags(Some(Class::Elf64), EM_X86_64, 0),
        );
        assert!(
            got.iter().any(|p| p.ends_with(b"/libc.so.6")),
            "{:?}",
            got.iter()
                .map(|p| String::from_utf8_lossy(p).into_owned())
                .collect::<Vec<_>>()
        );
    }

    proptest! {
        #[test]
        fn never_panics_on_arbitrary_bytes(
            bytes in proptest::collection::vec(any::<u8>(), 0..2048),
            name in proptest::collection::vec(any::<u8>(), 0..64),
            new in any::<bool>(),
        ) {
            let mut bytes = bytes;
            let magic: &[u8] = if new { NEW_MAGIC } else { OLD_MAGIC };
            if bytes.len() >= magic.len() {
                bytes[..magic.len()].copy_from_slice(magic);
            }
            if let Some(c) = LdCache::parse(&bytes) {
                let got = c.lookup(&bytes, &name, None);
                prop_assert!(got.len() <= MAX_SAME_NAME);
            }
        }

        #[test]
        fn libcmp_is_antisymmetric(a in "[a-c0-2.]{0,8}", b in "[a-c0-2.]{0,8}") {
            prop_assert_eq!(libcmp(a.as_bytes(), b.as_bytes()), libcmp(b.as_bytes(), a.as_bytes()).reverse());
        }

        #[test]
        fn every_written_name_is_found(names in proptest::collection::btree_set("lib[a-z0-9]{1,6}\\.so\\.[0-9]{1,3}", 1..40)) {
            // libcmp treats leading zeros as equal numbers: keep names distinct under it.
            let mut uniq: Vec<String> = Vec::new();
            for n in names {
                if !uniq.iter().any(|u| libcmp(u.as_bytes(), n.as_bytes()) == Ordering::Equal) {
                    uniq.push(n);
                }
            }
            let v: Vec<(String, i32, String)> = uniq.iter().map(|n| (n.clone(), X64, format!("/l/{n}"))).collect();
            let bytes = cache_of(&v, false);
            let c = LdCache::parse(&bytes);
            prop_assert!(c.is_some());
            if let Some(c) = c {
                for (n, _, p) in &v {
                    prop_assert_eq!(c.lookup(&bytes, n.as_bytes(), Some(X64)), vec![p.as_bytes().to_vec()]);
                }
            }
        }
    }
}
