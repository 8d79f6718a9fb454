//! Bounded reading of an ELF file's dynamic section: the libraries it needs (`DT_NEEDED`), the
//! directories it adds to the loader's search (`DT_RUNPATH`, `DT_RPATH`), its own name
//! (`DT_SONAME`) and `DT_FLAGS_1`.
//!
//! This module owns the bytes the dynamic loader reads right after the kernel hands over:
//! `PT_DYNAMIC` and the dynamic string table. Nothing else of the file is read. The string
//! table is found the way the loader finds it, by the virtual address in `DT_STRTAB`, mapped to
//! a file offset through the `PT_LOAD` segment that holds it.
//!
//! Reads are bounded whatever the file claims: one positioned read of `PT_DYNAMIC` (at most
//! [`MAX_DYNAMIC_BYTES`]), then one or two per string (at most [`MAX_STRING`] bytes each), for
//! at most [`MAX_NEEDED`] `DT_NEEDED` entries.

use crate::inspect::elf::{Class, ElfInfo, Endian, ReadAt, bytes_at};

use goblin::elf::dynamic::{
    DF_1_NODEFLIB, DT_FLAGS_1, DT_NEEDED, DT_NULL, DT_RPATH, DT_RUNPATH, DT_SONAME, DT_STRSZ,
    DT_STRTAB,
};
use goblin::elf::program_header::PT_DYNAMIC;

/// Most bytes of `PT_DYNAMIC` read: 4096 entries of an ELF64 file (real ones hold 20 to 60).
pub const MAX_DYNAMIC_BYTES: u64 = 64 * 1024;
/// Most `DT_NEEDED` entries kept.
pub const MAX_NEEDED: usize = 256;
/// Longest string read from the string table, terminating NUL included (`PATH_MAX`).
pub const MAX_STRING: usize = 4096;
/// The first read of a string: library names are short.
const SHORT_READ: usize = 256;
/// Strings whose offsets lie within this span are fetched with one read.
const WINDOW_SPAN: u64 = 16 * 1024;

/// What the dynamic section says.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Dynamic {
    /// `DT_NEEDED` names in order, without their NUL (empty names dropped).
    pub needed: Vec<Vec<u8>>,
    /// `DT_RUNPATH` (the last one, as the loaders keep it).
    pub runpath: Option<Vec<u8>>,
    /// `DT_RPATH` (the last one). The loaders ignore it when `DT_RUNPATH` is present.
    pub rpath: Option<Vec<u8>>,
    /// `DT_SONAME`.
    pub soname: Option<Vec<u8>>,
    /// `DT_FLAGS_1` (0 when absent).
    pub flags_1: u64,
    /// A bound was hit or an entry could not be read: the lists may be incomplete.
    pub incomplete: bool,
}

impl Dynamic {
    /// `DF_1_NODEFLIB`: glibc skips `/etc/ld.so.cache` and its default directories for this
    /// object's dependencies.
    pub fn nodeflib(&self) -> bool {
        self.flags_1 & DF_1_NODEFLIB != 0
    }

    /// The search path that applies to this object's own dependencies: `DT_RUNPATH`, else
    /// `DT_RPATH` (glibc elf/get-dynamic-info.h drops `DT_RPATH` when both are present; musl
    /// ldso/dynlink.c `decode_dyn` lets `DT_RUNPATH` win).
    pub fn search_path(&self) -> Option<&[u8]> {
        self.runpath.as_deref().or(self.rpath.as_deref())
    }
}

fn word(bytes: &[u8], at: usize, width: usize, endian: Endian) -> Option<u64> {
    let b = bytes.get(at..at.checked_add(width)?)?;
    let mut v: u64 = 0;
    match endian {
        Endian::Little => {
            for &x in b.iter().rev() {
                v = (v << 8) | u64::from(x);
            }
        }
        Endian::Big => {
            for &x in b {
                v = (v << 8) | u64::from(x);
            }
        }
    }
    Some(v)
}

/// The NUL-terminated string at `at` (without the NUL), at most `max` bytes with the NUL:
/// a short read first, the rest only for a long string. `None` when the file ends first or no
/// NUL comes within `max` bytes.
fn cstr_at(header: &[u8], file: &dyn ReadAt, at: u64, max: usize) -> Option<Vec<u8>> {
    let first = max.min(SHORT_READ);
    let mut b = bytes_at(header, file, at, first);
    if let Some(n) = b.iter().position(|&c| c == 0) {
        b.truncate(n);
        return Some(b);
    }
    if b.len() < first || first == max {
        return None;
    }
    let mut b = bytes_at(header, file, at, max);
    let n = b.iter().position(|&c| c == 0)?;
    b.truncate(n);
    Some(b)
}

/// Reads the dynamic section of a parsed ELF file (`info` from [`crate::inspect::elf::parse`]
/// of the same `header` and `file`).
///
/// `None` when there is nothing to go on: no class or byte order, no `PT_DYNAMIC` (a static
/// program), or `DT_NEEDED` entries whose string table no `PT_LOAD` segment holds.
pub fn read(info: &ElfInfo, header: &[u8], file: &dyn ReadAt) -> Option<Dynamic> {
    let (class, endian) = (info.class?, info.endian?);
    let width = if class == Class::Elf64 { 8 } else { 4 };
    let entsize = 2 * width;
    let seg = info.segment(PT_DYNAMIC)?;
    let mut out = Dynamic::default();
    let mut len = seg.filesz;
    if len > MAX_DYNAMIC_BYTES {
        len = MAX_DYNAMIC_BYTES;
        out.incomplete = true;
    }
    let len = usize::try_from(len).ok()? / entsize * entsize;
    if len == 0 {
        return None;
    }
    let bytes = bytes_at(header, file, seg.offset, len);
    let mut needed_at: Vec<u64> = Vec::new();
    let (mut strtab, mut strsz, mut runpath, mut rpath, mut soname) =
        (None, None, None, None, None);
    let mut ended = false;
    for entry in bytes.chunks_exact(entsize) {
        let (Some(tag), Some(val)) = (
            word(entry, 0, width, endian),
            word(entry, width, width, endian),
        ) else {
            break;
        };
        match tag {
            DT_NULL => {
                ended = true;
                break;
            }
            DT_NEEDED => {
                if needed_at.len() < MAX_NEEDED {
                    needed_at.push(val);
                } else {
                    out.incomplete = true;
                }
            }
            DT_STRTAB => strtab = Some(val),
            DT_STRSZ => strsz = Some(val),
            DT_RUNPATH => runpath = Some(val),
            DT_RPATH => rpath = Some(val),
            DT_SONAME => soname = Some(val),
            DT_FLAGS_1 => out.flags_1 = val,
            _ => {}
        }
    }
    if !ended {
        out.incomplete = true;
    }
    if needed_at.is_empty() && runpath.is_none() && rpath.is_none() && soname.is_none() {
        return Some(out);
    }
    let table = info.file_offset(strtab?)?;
    let strsz = strsz.filter(|&s| s > 0);
    // The strings usually lie close together: one read for all of them when they do.
    let offs = needed_at
        .iter()
        .chain(runpath.iter())
        .chain(rpath.iter())
        .chain(soname.iter())
        .copied()
        .filter(|&o| strsz.is_none_or(|sz| o < sz));
    let (lo, hi) = offs.fold((u64::MAX, 0u64), |(lo, hi), o| (lo.min(o), hi.max(o)));
    let window: Option<(u64, Vec<u8>)> = (lo <= hi && hi - lo <= WINDOW_SPAN)
        .then(|| {
            let mut len = (hi - lo) as usize + SHORT_READ;
            if let Some(sz) = strsz {
                len = len.min(usize::try_from(sz - lo).unwrap_or(len));
            }
            table
                .checked_add(lo)
                .map(|at| (lo, bytes_at(header, file, at, len)))
        })
        .flatten();
    let string = |off: u64, out: &mut Dynamic| -> Option<Vec<u8>> {
        let mut max = MAX_STRING;
        if let Some(sz) = strsz {
            if off >= sz {
                out.incomplete = true;
                return None;
            }
            max = max.min(usize::try_from(sz - off).unwrap_or(MAX_STRING));
        }
        if let Some((lo, w)) = &window
            && let Some(rest) = off
                .checked_sub(*lo)
                .and_then(|d| usize::try_from(d).ok())
                .and_then(|d| w.get(d..))
        {
            let rest = rest.get(..rest.len().min(max)).unwrap_or_default();
            if let Some(n) = rest.iter().position(|&c| c == 0) {
                return rest.get(..n).map(<[u8]>::to_vec);
            }
        }
        let s = table
            .checked_add(off)
            .and_then(|at| cstr_at(header, file, at, max));
        if s.is_none() {
            out.incomplete = true;
        }
        s
    };
    for off in needed_at {
        if let Some(name) = string(off, &mut out).filter(|n| !n.is_empty()) {
            out.needed.push(name);
        }
    }
    out.runpath = runpath.and_then(|o| string(o, &mut out));
    out.rpath = rpath.and_then(|o| string(o, &mut out));
    out.soname = soname.and_then(|o| string(o, &mut out));
    Some(out)
}

/// Crafted ELF files for the tests of this module and of the checks built on it.
#[cfg(test)]
pub(crate) mod build {
    use goblin::elf::header::{EM_X86_64, ET_DYN};

    /// A loadable ELF object: two `PT_LOAD` segments, `PT_DYNAMIC`, optionally `PT_INTERP`
    /// and a `PT_GNU_PROPERTY` note.
    #[derive(Clone, Debug)]
    pub(crate) struct Obj {
        pub elf64: bool,
        pub big: bool,
        pub machine: u16,
        pub e_type: u16,
        pub interp: Option<Vec<u8>>,
        pub needed: Vec<Vec<u8>>,
        pub runpath: Option<Vec<u8>>,
        pub rpath: Option<Vec<u8>>,
        pub soname: Option<Vec<u8>>,
        pub flags_1: u64,
        /// `GNU_PROPERTY_X86_ISA_1_NEEDED` value to write in a property note.
        pub isa_needed: Option<u32>,
        /// `p_vaddr - p_offset` of the second `PT_LOAD` (and of `PT_DYNAMIC` inside it).
        pub data_delta: u64,
        /// `p_align` of both `PT_LOAD` segments.
        pub align: u64,
        /// Write no `DT_STRTAB`.
        pub no_strtab: bool,
    }

    /// Where the string table lies (file offset and address: the first segment maps 1:1).
    pub(crate) const STRTAB: u64 = 0x400;
    /// Where the dynamic section lies in the file.
    pub(crate) const DYNAMIC: u64 = 0x1000;

    impl Obj {
        /// An x86-64 shared object needing `needed`.
        pub(crate) fn lib(needed: &[&str]) -> Obj {
            Obj {
                elf64: true,
                big: false,
                machine: EM_X86_64,
                e_type: ET_DYN,
                interp: None,
                needed: needed.iter().map(|n| n.as_bytes().to_vec()).collect(),
                runpath: None,
                rpath: None,
                soname: None,
                flags_1: 0,
                isa_needed: None,
                data_delta: 0,
                align: 0x1000,
                no_strtab: false,
            }
        }

        /// An x86-64 program with the glibc loader.
        pub(crate) fn program(needed: &[&str]) -> Obj {
            Obj {
                interp: Some(b"/lib64/ld-linux-x86-64.so.2".to_vec()),
                ..Obj::lib(needed)
            }
        }

        fn put(&self, out: &mut Vec<u8>, at: u64, v: u64, width: usize) {
            let at = at as usize;
            let mut field = v.to_le_bytes()[..width].to_vec();
            if self.big {
                field.reverse();
            }
            if out.len() < at + width {
                out.resize(at + width, 0);
            }
            out[at..at + width].copy_from_slice(&field);
        }

        /// The file's bytes.
        pub(crate) fn build(&self) -> Vec<u8> {
            let w = if self.elf64 { 8 } else { 4 };
            let mut out = vec![0u8; DYNAMIC as usize];
            out[..4].copy_from_slice(b"\x7fELF");
            out[4] = if self.elf64 { 2 } else { 1 };
            out[5] = if self.big { 2 } else { 1 };
            out[6] = 1;
            self.put(&mut out, 16, self.e_type.into(), 2);
            self.put(&mut out, 18, self.machine.into(), 2);
            self.put(&mut out, 20, 1, 4);
            // Strings.
            let mut strtab: Vec<u8> = vec![0];
            let mut add = |s: &[u8]| {
                let at = strtab.len() as u64;
                strtab.extend_from_slice(s);
                strtab.push(0);
                at
            };
            let needed: Vec<u64> = self.needed.iter().map(|n| add(n)).collect();
            let runpath = self.runpath.as_deref().map(&mut add);
            let rpath = self.rpath.as_deref().map(&mut add);
            let soname = self.soname.as_deref().map(&mut add);
            out[STRTAB as usize..STRTAB as usize + strtab.len()].copy_from_slice(&strtab);
            // Dynamic entries.
            let mut dynamic: Vec<(u64, u64)> = needed.iter().map(|&o| (1, o)).collect();
            if !self.no_strtab {
                dynamic.push((5, STRTAB));
                dynamic.push((10, strtab.len() as u64));
            }
            if let Some(o) = runpath {
                dynamic.push((29, o));
            }
            if let Some(o) = rpath {
                dynamic.push((15, o));
            }
            if let Some(o) = soname {
                dynamic.push((14, o));
            }
            if self.flags_1 != 0 {
                dynamic.push((0x6fff_fffb, self.flags_1));
            }
            dynamic.push((0, 0));
            let dyn_len = (dynamic.len() * 2 * w) as u64;
            for (i, (tag, val)) in dynamic.iter().enumerate() {
                let at = DYNAMIC + (i * 2 * w) as u64;
                self.put(&mut out, at, *tag, w);
                self.put(&mut out, at + w as u64, *val, w);
            }
            let total = DYNAMIC + dyn_len;
            // Program headers: (type, offset, vaddr, filesz, align).
            let mut ph: Vec<(u32, u64, u64, u64, u64)> = Vec::new();
            if let Some(i) = &self.interp {
                out[0x200..0x200 + i.len()].copy_from_slice(i);
                ph.push((3, 0x200, 0x200, i.len() as u64 + 1, 1));
            }
            ph.push((1, 0, 0, DYNAMIC, self.align));
            ph.push((1, DYNAMIC, DYNAMIC + self.data_delta, dyn_len, self.align));
            ph.push((2, DYNAMIC, DYNAMIC + self.data_delta, dyn_len, w as u64));
            if let Some(isa) = self.isa_needed {
                // namesz 4, descsz 16, NT_GNU_PROPERTY_TYPE_0, "GNU", one property + pad.
                let note = 0x300u64;
                self.put(&mut out, note, 4, 4);
                self.put(&mut out, note + 4, 16, 4);
                self.put(&mut out, note + 8, 5, 4);
                out[note as usize + 12..note as usize + 16].copy_from_slice(b"GNU\0");
                self.put(&mut out, note + 16, 0xc000_8002, 4);
                self.put(&mut out, note + 20, 4, 4);
                self.put(&mut out, note + 24, isa.into(), 4);
                ph.push((0x6474_e553, note, note, 32, 8));
            }
            let phoff: u64 = if self.elf64 { 64 } else { 52 };
            let phent: u64 = if self.elf64 { 56 } else { 32 };
            if self.elf64 {
                self.put(&mut out, 32, phoff, 8);
                self.put(&mut out, 52, 64, 2);
                self.put(&mut out, 54, phent, 2);
                self.put(&mut out, 56, ph.len() as u64, 2);
            } else {
                self.put(&mut out, 28, phoff, 4);
                self.put(&mut out, 40, 52, 2);
                self.put(&mut out, 42, phent, 2);
                self.put(&mut out, 44, ph.len() as u64, 2);
            }
            for (i, &(t, off, vaddr, filesz, align)) in ph.iter().enumerate() {
                let b = phoff + i as u64 * phent;
                if self.elf64 {
                    self.put(&mut out, b, t.into(), 4);
                    self.put(&mut out, b + 4, 4, 4);
                    self.put(&mut out, b + 8, off, 8);
                    self.put(&mut out, b + 16, vaddr, 8);
                    self.put(&mut out, b + 24, vaddr, 8);
                    self.put(&mut out, b + 32, filesz, 8);
                    self.put(&mut out, b + 40, filesz, 8);
                    self.put(&mut out, b + 48, align, 8);
                } else {
                    self.put(&mut out, b, t.into(), 4);
                    self.put(&mut out, b + 4, off, 4);
                    self.put(&mut out, b + 8, vaddr, 4);
                    self.put(&mut out, b + 12, vaddr, 4);
                    self.put(&mut out, b + 16, filesz, 4);
                    self.put(&mut out, b + 20, filesz, 4);
                    self.put(&mut out, b + 24, 4, 4);
                    self.put(&mut out, b + 28, align, 4);
                }
            }
            out.resize(total as usize, 0);
            out
        }
    }
}

#[cfg(test)]
mod tests {
    use super::build::{DYNAMIC, Obj, STRTAB};
    use super::*;
    use crate::inspect::elf;
    use goblin::elf::header::EM_S390;
    use proptest::prelude::*;

    fn parse(bytes: &[u8], head: usize) -> Option<Dynamic> {
        let head = &bytes[..bytes.len().min(head)];
        let info = elf::parse(head, &bytes).unwrap_or_else(|| panic!("not elf"));
        assert_eq!(info.defect, None, "{info:?}");
        read(&info, head, &bytes)
    }

    fn v(s: &[&str]) -> Vec<Vec<u8>> {
        s.iter().map(|x| x.as_bytes().to_vec()).collect()
    }

    #[test]
    fn reads_needed_runpath_soname_and_flags() {
        let mut o = Obj::program(&["libfoo.so.1", "libc.so.6"]);
        o.runpath = Some(b"$ORIGIN/../lib".to_vec());
        o.soname = Some(b"prog".to_vec());
        o.flags_1 = DF_1_NODEFLIB;
        let bytes = o.build();
        for head in [64, 1024, 4096, bytes.len()] {
            let d = parse(&bytes, head).unwrap_or_else(|| panic!("no dynamic"));
            assert_eq!(d.needed, v(&["libfoo.so.1", "libc.so.6"]));
            assert_eq!(d.runpath.as_deref(), Some(&b"$ORIGIN/../lib"[..]));
            assert_eq!(d.rpath, None);
            assert_eq!(d.soname.as_deref(), Some(&b"prog"[..]));
            assert!(d.nodeflib());
            assert!(!d.incomplete);
            assert_eq!(d.search_path(), Some(&b"$ORIGIN/../lib"[..]));
        }
    }

    #[test]
    fn runpath_wins_over_rpath() {
        let mut o = Obj::lib(&[]);
        o.rpath = Some(b"/old".to_vec());
        let d = parse(&o.build(), 4096).unwrap_or_default();
        assert_eq!(d.search_path(), Some(&b"/old"[..]));
        o.runpath = Some(b"/new".to_vec());
        let d = parse(&o.build(), 4096).unwrap_or_default();
        assert_eq!(d.search_path(), Some(&b"/new"[..]));
        assert_eq!(d.rpath.as_deref(), Some(&b"/old"[..]));
    }

    #[test]
    fn thirty_two_bit_and_big_endian() {
        let mut o = Obj::lib(&["libz.so.1"]);
        o.elf64 = false;
        let d = parse(&o.build(), 4096).unwrap_or_default();
        assert_eq!(d.needed, v(&["libz.so.1"]));
        let mut o = Obj::lib(&["libz.so.1", "libc.so.6"]);
        o.big = true;
        o.machine = EM_S390;
        let d = parse(&o.build(), 4096).unwrap_or_default();
        assert_eq!(d.needed, v(&["libz.so.1", "libc.so.6"]));
    }

    #[test]
    fn strtab_is_found_through_pt_load() {
        // The dynamic section sits in a segment whose addresses are shifted from the file
        // offsets; the string table is in the first one, mapped 1:1.
        let mut o = Obj::lib(&["liba.so"]);
        o.data_delta = 0x1000;
        let d = parse(&o.build(), 4096).unwrap_or_default();
        assert_eq!(d.needed, v(&["liba.so"]));
        // A DT_STRTAB no PT_LOAD holds: nothing can be named.
        let mut bytes = Obj::lib(&["liba.so"]).build();
        // The entry after DT_NEEDED is DT_STRTAB: point it far away.
        let at = DYNAMIC as usize + 16 + 8;
        bytes[at..at + 8].copy_from_slice(&(1u64 << 40).to_le_bytes());
        assert_eq!(parse(&bytes, 4096), None);
        // No DT_STRTAB at all.
        let mut o = Obj::lib(&["liba.so"]);
        o.no_strtab = true;
        assert_eq!(parse(&o.build(), 4096), None);
        // Without needed names or paths, no string table is needed.
        let mut o = Obj::lib(&[]);
        o.no_strtab = true;
        assert_eq!(parse(&o.build(), 4096), Some(Dynamic::default()));
    }

    #[test]
    fn static_programs_have_no_dynamic_section() {
        let mut bytes = Obj::lib(&[]).build();
        // Turn PT_DYNAMIC (third header) into PT_NULL.
        let at = 64 + 2 * 56;
        bytes[at..at + 4].copy_from_slice(&0u32.to_le_bytes());
        assert_eq!(parse(&bytes, 4096), None);
    }

    #[test]
    fn bad_string_offsets_and_unterminated_strings() {
        let mut bytes = Obj::lib(&["libok.so", "libbad.so"]).build();
        // The second DT_NEEDED points past DT_STRSZ.
        let at = DYNAMIC as usize + 16 + 8;
        bytes[at..at + 8].copy_from_slice(&0xffffu64.to_le_bytes());
        let d = parse(&bytes, 4096).unwrap_or_default();
        assert_eq!(d.needed, v(&["libok.so"]));
        assert!(d.incomplete);
        // A string running to the end of the table without a NUL (DT_STRSZ bounds it).
        let mut bytes = Obj::lib(&["libok.so"]).build();
        let s = STRTAB as usize + 1;
        bytes[s + 8] = b'x'; // overwrite the NUL after libok.so
        let d = parse(&bytes, 4096).unwrap_or_default();
        assert!(d.needed.is_empty());
        assert!(d.incomplete);
    }

    #[test]
    fn a_long_name_takes_a_second_read() {
        let long = "l".repeat(1000);
        let o = Obj::lib(&[&long]);
        let bytes = o.build();
        let d = parse(&bytes, 64).unwrap_or_default();
        assert_eq!(d.needed, vec![long.into_bytes()]);
    }

    #[test]
    fn missing_dt_null_marks_incomplete() {
        let mut bytes = Obj::lib(&["liba.so"]).build();
        // Drop the final DT_NULL: the section ends without one.
        let n = bytes.len();
        bytes[n - 16..].copy_from_slice(&[0x77; 16]);
        let d = parse(&bytes, 4096).unwrap_or_default();
        assert_eq!(d.needed, v(&["liba.so"]));
        assert!(d.incomplete);
    }

    #[test]
    fn real_host_binaries() {
        let Ok(bytes) = std::fs::read("/bin/ls") else {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "/bin/ls missing"
            );
            return;
        };
        let d = parse(&bytes, 4096).unwrap_or_else(|| panic!("/bin/ls has no dynamic section"));
        assert!(d.needed.iter().any(|n| n == b"libc.so.6"), "{d:?}");
        assert!(!d.incomplete);
        if let Ok(bytes) = std::fs::read("/lib/x86_64-linux-gnu/libc.so.6") {
            let d = parse(&bytes, 4096).unwrap_or_default();
            assert_eq!(d.soname.as_deref(), Some(&b"libc.so.6"[..]));
        }
    }

    proptest! {
        #[test]
        fn never_panics_on_arbitrary_bytes(
            bytes in proptest::collection::vec(any::<u8>(), 0..4096),
            cut in 0usize..4096,
        ) {
            let head = &bytes[..cut.min(bytes.len())];
            if let Some(info) = elf::parse(head, &bytes) {
                let _ = read(&info, head, &bytes);
            }
        }

        #[test]
        fn never_panics_on_mutated_objects(
            flips in proptest::collection::vec((0usize..0x1200, any::<u8>()), 1..24),
            elf64 in any::<bool>(),
            big in any::<bool>(),
        ) {
            let mut o = Obj::lib(&["liba.so.1", "libb.so.2"]);
            o.elf64 = elf64;
            o.big = big;
            o.runpath = Some(b"$ORIGIN".to_vec());
            let mut bytes = o.build();
            for (at, b) in flips {
                if let Some(x) = bytes.get_mut(at) {
                    *x = b;
                }
            }
            if let Some(info) = elf::parse(&bytes, &bytes)
                && let Some(d) = read(&info, &bytes, &bytes)
            {
                prop_assert!(d.needed.len() <= MAX_NEEDED);
                prop_assert!(d.needed.iter().all(|n| n.len() < MAX_STRING));
            }
        }
    }
}
