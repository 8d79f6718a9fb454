//! Bounded reading of an ELF file's header, program headers and `PT_INTERP`, and of what the
//! loader reads next from the same headers: the x86 ISA level note (`PT_GNU_PROPERTY`) and
//! whether the loadable segments can be mapped with the host's page size.
//!
//! This module owns what execguard knows about an ELF file before the kernel loads it: class,
//! byte order, `e_machine`, `e_type`, OSABI and flags, the program interpreter path, how far the
//! loadable segments reach, and the first defect the kernel's ELF loader would stop on. It follows
//! `load_elf_binary` and `load_elf_phdrs` in fs/binfmt_elf.c, in their order and with their
//! limits, leaving out what depends on the host (`elf_check_arch`, the interpreter's existence):
//! other modules decide those.
//!
//! Reads are bounded whatever the file claims: the caller hands in the first bytes, and at most
//! one positioned read fetches program headers lying past them (at most 64 KiB, the kernel's own
//! cap) and one fetches `PT_INTERP` (at most `PATH_MAX`). A 2 GB file costs what a 2 KB one does.
//! Parsing goes through goblin with the context taken from `e_ident`, so big-endian files
//! (s390x, ppc64) are read in their own byte order.

use std::fmt;
use std::io;

use goblin::container::{Container, Ctx};
use goblin::elf::header::{
    EM_68K, EM_386, EM_AARCH64, EM_ALTERA_NIOS2, EM_ARC_COMPACT, EM_ARM, EM_BPF, EM_CSKY, EM_IA_64,
    EM_LOONGARCH, EM_MICROBLAZE, EM_MIPS, EM_OPENRISC, EM_PARISC, EM_PPC, EM_PPC64, EM_RISCV,
    EM_S390, EM_SH, EM_SPARC, EM_SPARC32PLUS, EM_SPARCV9, EM_X86_64, EM_XTENSA, ET_CORE, ET_DYN,
    ET_EXEC, ET_NONE, ET_REL, Header,
};
use goblin::elf::program_header::{PT_DYNAMIC, PT_GNU_PROPERTY, PT_INTERP, PT_LOAD, ProgramHeader};

/// Positioned reads on the opened file (implemented for `std::fs::File` via
/// `FileExt::read_at`, and for byte buffers in tests).
pub trait ReadAt {
    /// Reads up to `buf.len()` bytes at `offset`; returns how many were read (0 at end of file).
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize>;
    /// Size of the file in bytes.
    fn size(&self) -> u64;
}

impl ReadAt for std::fs::File {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        std::os::unix::fs::FileExt::read_at(self, buf, offset)
    }

    /// The size from `fstat`; 0 when that fails (the reads then decide what exists).
    fn size(&self) -> u64 {
        self.metadata().map(|m| m.len()).unwrap_or(0)
    }
}

impl ReadAt for [u8] {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        let src = usize::try_from(offset)
            .ok()
            .and_then(|start| self.get(start..))
            .unwrap_or_default();
        let n = src.len().min(buf.len());
        if let (Some(dst), Some(src)) = (buf.get_mut(..n), src.get(..n)) {
            dst.copy_from_slice(src);
        }
        Ok(n)
    }

    fn size(&self) -> u64 {
        self.len() as u64
    }
}

impl ReadAt for Vec<u8> {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        self.as_slice().read_at(buf, offset)
    }

    fn size(&self) -> u64 {
        self.len() as u64
    }
}

impl<T: ReadAt + ?Sized> ReadAt for &T {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        (**self).read_at(buf, offset)
    }

    fn size(&self) -> u64 {
        (**self).size()
    }
}

/// `EI_CLASS`: the word size the file is laid out for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Class {
    /// `ELFCLASS32`.
    Elf32,
    /// `ELFCLASS64`.
    Elf64,
}

/// `EI_DATA`: the byte order of every multi-byte field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Endian {
    /// `ELFDATA2LSB`.
    Little,
    /// `ELFDATA2MSB`.
    Big,
}

/// What was read from an ELF file.
///
/// Fields that could not be read (past the end of the file, or behind an invalid class or byte
/// order) are zero, like the kernel's zero-filled header buffer. `interp`, `load_end` and
/// `is_static_pie` are filled only once the program headers were read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ElfInfo {
    /// `EI_CLASS`; `None` when the byte is neither 1 nor 2.
    pub class: Option<Class>,
    /// `EI_DATA`; `None` when the byte is neither 1 nor 2.
    pub endian: Option<Endian>,
    /// `e_machine`.
    pub machine: u16,
    /// `e_type`.
    pub e_type: u16,
    /// `EI_OSABI`.
    pub osabi: u8,
    /// `e_flags` (for example the ARM EABI version and float ABI, or the ppc64 ABI version).
    pub flags: u32,
    /// The first `PT_INTERP` path, up to its first NUL (so without the trailing NUL). Also set
    /// with [`Defect::InterpNotTerminated`], to show what the file holds.
    pub interp: Option<Vec<u8>>,
    /// The first thing the kernel's ELF loader stops on, in fs/binfmt_elf.c order.
    pub defect: Option<Defect>,
    /// The largest `p_offset + p_filesz` over `PT_LOAD` segments with file contents.
    pub load_end: u64,
    /// `ET_DYN` without `PT_INTERP` (a static-pie executable, or a shared object).
    pub is_static_pie: bool,
    /// The `PT_LOAD`, `PT_DYNAMIC` and `PT_GNU_PROPERTY` program headers, in file order (filled
    /// once the program headers were read).
    pub segments: Vec<Segment>,
}

/// One program header, reduced to what the loaders look at after the kernel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Segment {
    /// `p_type`.
    pub p_type: u32,
    /// `p_offset`: where its bytes start in the file.
    pub offset: u64,
    /// `p_vaddr`: where they go in memory.
    pub vaddr: u64,
    /// `p_filesz`.
    pub filesz: u64,
    /// `p_memsz`.
    pub memsz: u64,
    /// `p_align`.
    pub align: u64,
    /// `p_flags` (`PF_R` 4, `PF_W` 2, `PF_X` 1).
    pub flags: u32,
}

impl ElfInfo {
    /// The file offset of virtual address `vaddr`: inside the file bytes of the first
    /// `PT_LOAD` segment that maps it. `None` when no segment's file bytes hold it.
    pub fn file_offset(&self, vaddr: u64) -> Option<u64> {
        self.segments
            .iter()
            .filter(|s| s.p_type == PT_LOAD)
            .find(|s| vaddr >= s.vaddr && vaddr - s.vaddr < s.filesz)
            .and_then(|s| s.offset.checked_add(vaddr - s.vaddr))
    }

    /// The first segment of `p_type`.
    pub fn segment(&self, p_type: u32) -> Option<&Segment> {
        self.segments.iter().find(|s| s.p_type == p_type)
    }
}

/// The first reason, in the kernel's order, why the ELF loader refuses or the process dies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Defect {
    /// The file is shorter than the ELF header (ENOEXEC).
    HeaderTruncated {
        /// File size in bytes.
        size: u64,
    },
    /// `e_type` is neither `ET_EXEC` nor `ET_DYN` (ENOEXEC).
    BadType(u16),
    /// `load_elf_phdrs` refuses the table: wrong `e_phentsize`, `e_phnum` 0, or a table over the
    /// size limit (ENOEXEC).
    BadPhdrs {
        /// What is wrong, naming the fields.
        reason: String,
    },
    /// The program header table lies beyond the end of the file (ENOEXEC).
    PhdrsPastEnd {
        /// Offset one past the table's last byte.
        end: u64,
        /// File size in bytes.
        size: u64,
    },
    /// `PT_INTERP`'s `p_filesz` is over `PATH_MAX` or under 2 (ENOEXEC).
    InterpBadSize {
        /// `p_filesz`.
        size: u64,
    },
    /// `PT_INTERP` lies beyond the end of the file: `elf_read` comes up short (EIO).
    InterpPastEnd {
        /// Offset one past the path's last byte.
        end: u64,
        /// File size in bytes.
        size: u64,
    },
    /// The last byte of `PT_INTERP` is not NUL (ENOEXEC).
    InterpNotTerminated,
    /// A loadable segment reaches past the end of the file: execve succeeds and the process
    /// dies by SIGBUS or SIGSEGV when it touches the missing pages.
    SegmentsPastEnd {
        /// [`ElfInfo::load_end`].
        end: u64,
        /// File size in bytes.
        size: u64,
    },
    /// A loadable segment the kernel cannot map (`p_filesz` over `p_memsz`, or an address
    /// range past the user address space): `load_elf_binary` gives up after the point of no
    /// return, so execve "succeeds" and the process is killed by SIGSEGV.
    BadSegment {
        /// What is wrong, naming the fields.
        reason: String,
    },
}

impl Defect {
    /// The errno execve returns for this defect (`None` when execve succeeds and the process
    /// dies later).
    pub fn errno(&self) -> Option<i32> {
        match self {
            Defect::HeaderTruncated { .. }
            | Defect::BadType(_)
            | Defect::BadPhdrs { .. }
            | Defect::PhdrsPastEnd { .. }
            | Defect::InterpBadSize { .. }
            | Defect::InterpNotTerminated => Some(libc::ENOEXEC),
            // elf_read turns a short read into -EIO. (A p_offset above i64::MAX makes
            // kernel_read fail with EINVAL instead; no real file gets there.)
            Defect::InterpPastEnd { .. } => Some(libc::EIO),
            Defect::SegmentsPastEnd { .. } | Defect::BadSegment { .. } => None,
        }
    }
}

impl fmt::Display for Defect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Defect::HeaderTruncated { size } => {
                write!(
                    f,
                    "the file is only {size} bytes, shorter than an ELF header"
                )
            }
            Defect::BadType(t) => write!(
                f,
                "e_type {t} ({}) is neither an executable nor a position-independent executable",
                type_name(*t)
            ),
            Defect::BadPhdrs { reason } => write!(f, "program headers refused: {reason}"),
            Defect::PhdrsPastEnd { end, size } => write!(
                f,
                "program headers end at byte {end}, past the end of the {size}-byte file"
            ),
            Defect::InterpBadSize { size } => write!(
                f,
                "PT_INTERP is {size} bytes, outside the 2 to {PATH_MAX} bytes the kernel accepts"
            ),
            Defect::InterpPastEnd { end, size } => write!(
                f,
                "the interpreter path ends at byte {end}, past the end of the {size}-byte file"
            ),
            Defect::InterpNotTerminated => {
                f.write_str("the interpreter path in PT_INTERP does not end with a NUL byte")
            }
            Defect::BadSegment { reason } => write!(f, "{reason}"),
            Defect::SegmentsPastEnd { end, size } => write!(
                f,
                "loadable segments end at byte {end}, past the end of the {size}-byte file (truncated file)"
            ),
        }
    }
}

/// `PATH_MAX`: the largest `PT_INTERP` the kernel reads (fs/binfmt_elf.c `load_elf_binary`).
pub const PATH_MAX: u64 = libc::PATH_MAX as u64;

/// The kernel's cap on the program header table (fs/binfmt_elf.c `load_elf_phdrs`).
pub const MAX_PHDR_TABLE: u64 = 65536;

const EHDR32_SIZE: usize = 52;
const EHDR64_SIZE: usize = 64;
/// Not in goblin's constant list: the historic Alpha value Linux uses.
const EM_ALPHA: u16 = 0x9026;
/// Qualcomm Hexagon, not in goblin's constant list.
const EM_HEXAGON: u16 = 164;

/// The program header table limit of a given kernel.
///
/// Before Linux 6.17, `load_elf_phdrs` also refused tables larger than `ELF_MIN_ALIGN` (the page
/// size): 73 64-bit entries with 4 KiB pages. 6.17 dropped that check and kept only the 64 KiB
/// cap. `kernel_release` is `uname -r`; a release that does not parse gets the 64 KiB cap.
pub fn phdr_table_limit(kernel_release: &str, page_size: u64) -> u64 {
    let mut parts = kernel_release
        .split(|c: char| !c.is_ascii_digit())
        .map(|p| p.parse::<u64>().ok());
    match (parts.next().flatten(), parts.next().flatten()) {
        (Some(major), Some(minor)) if (major, minor) < (6, 17) && page_size > 0 => {
            page_size.min(MAX_PHDR_TABLE)
        }
        _ => MAX_PHDR_TABLE,
    }
}

/// Parses the ELF header, program headers and `PT_INTERP` with the 64 KiB program header cap of
/// Linux 6.17 and later (see [`parse_with_limit`] for older kernels).
///
/// `header` is the first bytes of the file (the caller reads up to 4096). More is read only with
/// bounded positioned reads: program headers beyond `header` (at most 64 KiB), `PT_INTERP` (at
/// most `PATH_MAX`), and the rest of the ELF header when `header` is shorter than it.
/// Returns `None` when the bytes are not ELF (no `\x7fELF` magic).
pub fn parse(header: &[u8], file: &dyn ReadAt) -> Option<ElfInfo> {
    parse_with_limit(header, file, MAX_PHDR_TABLE)
}

/// [`parse`] with the program header table limit of the target kernel, as given by
/// [`phdr_table_limit`].
pub fn parse_with_limit(
    header: &[u8],
    file: &dyn ReadAt,
    phdr_table_limit: u64,
) -> Option<ElfInfo> {
    // The header may have been read before the file grew or shrank; trust the bytes in hand.
    let size = file.size().max(header.len() as u64);

    // fs/exec.c reads the start of the file into a zero-filled buffer; do the same for the
    // ELF header, completing a short `header` from the file.
    let mut ehdr = [0u8; EHDR64_SIZE];
    let have = header.len().min(EHDR64_SIZE);
    if let (Some(dst), Some(src)) = (ehdr.get_mut(..have), header.get(..have)) {
        dst.copy_from_slice(src);
    }
    let mut avail = have;
    if avail < EHDR64_SIZE
        && size > avail as u64
        && let Some(rest) = ehdr.get_mut(avail..)
    {
        avail += read_full(file, rest, avail as u64);
    }

    // load_elf_binary: "First of all, some simple consistency checks".
    if avail < 4 || ehdr.get(..4) != Some(b"\x7fELF") {
        return None;
    }
    let class = match ehdr[4] {
        1 => Some(Class::Elf32),
        2 => Some(Class::Elf64),
        _ => None,
    };
    let endian = match ehdr[5] {
        1 => Some(Endian::Little),
        2 => Some(Endian::Big),
        _ => None,
    };
    let mut info = ElfInfo {
        class,
        endian,
        machine: 0,
        e_type: 0,
        osabi: ehdr[7],
        flags: 0,
        interp: None,
        defect: None,
        load_end: 0,
        is_static_pie: false,
        segments: Vec::new(),
    };
    // e_type and e_machine sit at the same offsets in both classes.
    if let Some(endian) = endian {
        info.e_type = read_u16(&ehdr, 16, endian);
        info.machine = read_u16(&ehdr, 18, endian);
    }
    let ehdr_size = match class {
        Some(Class::Elf32) => EHDR32_SIZE,
        _ => EHDR64_SIZE,
    };
    let parsed = match (class, endian) {
        (Some(_), Some(_)) => goblin::elf::Elf::parse_header(&ehdr).ok(),
        _ => None,
    };
    if let Some(h) = &parsed {
        info.flags = h.e_flags;
    }
    if avail < ehdr_size {
        info.defect = Some(Defect::HeaderTruncated { size: avail as u64 });
        return Some(info);
    }
    if endian.is_some() && info.e_type != ET_EXEC && info.e_type != ET_DYN {
        info.defect = Some(Defect::BadType(info.e_type));
        return Some(info);
    }
    // With an invalid class or byte order the kernel reads the header in its own layout; what
    // it then decides depends on the host, so no defect is claimed here.
    let Some(h) = parsed else {
        return Some(info);
    };
    let container = if class == Some(Class::Elf64) {
        Container::Big
    } else {
        Container::Little
    };
    let le = if endian == Some(Endian::Big) {
        goblin::container::Endian::Big
    } else {
        goblin::container::Endian::Little
    };
    let ctx = Ctx::new(container, le);

    let phdrs = match load_phdrs(&h, ctx, header, file, size, phdr_table_limit) {
        Ok(p) => p,
        Err(defect) => {
            info.defect = Some(defect);
            return Some(info);
        }
    };

    info.load_end = phdrs
        .iter()
        .filter(|p| p.p_type == PT_LOAD && p.p_filesz > 0)
        .map(|p| p.p_offset.saturating_add(p.p_filesz))
        .max()
        .unwrap_or(0);
    info.segments = phdrs
        .iter()
        .filter(|p| matches!(p.p_type, PT_LOAD | PT_DYNAMIC | PT_GNU_PROPERTY))
        .map(|p| Segment {
            p_type: p.p_type,
            offset: p.p_offset,
            vaddr: p.p_vaddr,
            filesz: p.p_filesz,
            memsz: p.p_memsz,
            align: p.p_align,
            flags: p.p_flags,
        })
        .collect();
    let first_interp = phdrs.iter().find(|p| p.p_type == PT_INTERP);
    info.is_static_pie = info.e_type == ET_DYN && first_interp.is_none();

    // load_elf_binary only looks at the first PT_INTERP (it breaks out of the loop after it).
    if let Some(ph) = first_interp {
        match read_interp(ph, header, file, size) {
            Ok(path) => info.interp = Some(path),
            Err((defect, path)) => {
                info.interp = path;
                info.defect = Some(defect);
                return Some(info);
            }
        }
    }

    // fs/binfmt_elf.c load_elf_binary, for each PT_LOAD after the point of no return:
    // `BAD_ADDR(k) || p_filesz > p_memsz || p_memsz > TASK_SIZE || TASK_SIZE - p_memsz < k`
    // fails the exec with SIGSEGV. TASK_SIZE is the largest any kernel uses (56-bit with
    // 5-level paging; the compat 4 GiB for ELF32), so only what fails everywhere is flagged.
    let task_size: u64 = if class == Some(Class::Elf64) {
        (1u64 << 56) - 4096
    } else {
        0xffff_e000
    };
    if let Some(p) = phdrs.iter().filter(|p| p.p_type == PT_LOAD).find(|p| {
        p.p_filesz > p.p_memsz
            || p.p_vaddr >= task_size
            || p.p_memsz > task_size
            || task_size - p.p_memsz < p.p_vaddr
    }) {
        let reason = if p.p_filesz > p.p_memsz {
            format!(
                "a loadable segment has p_filesz {:#x} over p_memsz {:#x}",
                p.p_filesz, p.p_memsz
            )
        } else {
            format!(
                "a loadable segment at {:#x} (+{:#x} bytes) lies past the user address space",
                p.p_vaddr, p.p_memsz
            )
        };
        info.defect = Some(Defect::BadSegment { reason });
        return Some(info);
    }

    // The segments are mapped after the point of no return: a short file is not refused, the
    // process faults on the missing pages.
    if info.load_end > size {
        info.defect = Some(Defect::SegmentsPastEnd {
            end: info.load_end,
            size,
        });
    }
    Some(info)
}

fn read_u16(bytes: &[u8], at: usize, endian: Endian) -> u16 {
    let b: [u8; 2] = bytes
        .get(at..at + 2)
        .and_then(|s| s.try_into().ok())
        .unwrap_or_default();
    match endian {
        Endian::Little => u16::from_le_bytes(b),
        Endian::Big => u16::from_be_bytes(b),
    }
}

/// Reads as many bytes as the file has at `offset`, up to `buf.len()`; I/O errors end the read.
pub(crate) fn read_full(file: &dyn ReadAt, buf: &mut [u8], offset: u64) -> usize {
    let mut done = 0usize;
    let mut interrupts = 0;
    while done < buf.len() {
        let Some(pos) = offset.checked_add(done as u64) else {
            break;
        };
        let Some(dst) = buf.get_mut(done..) else {
            break;
        };
        match file.read_at(dst, pos) {
            Ok(0) => break,
            Ok(n) => done += n.min(dst.len()),
            Err(e) if e.kind() == io::ErrorKind::Interrupted && interrupts < 8 => interrupts += 1,
            Err(_) => break,
        }
    }
    done
}

/// `len` bytes at `offset`: from `header` when they lie inside it, otherwise with one
/// positioned read. The caller has bounded `len`. Returns fewer bytes when the file is shorter.
pub(crate) fn bytes_at(header: &[u8], file: &dyn ReadAt, offset: u64, len: usize) -> Vec<u8> {
    let inside = usize::try_from(offset)
        .ok()
        .and_then(|start| header.get(start..start.checked_add(len)?));
    if let Some(slice) = inside {
        return slice.to_vec();
    }
    let mut buf = vec![0u8; len];
    let got = read_full(file, &mut buf, offset);
    buf.truncate(got);
    buf
}

/// fs/binfmt_elf.c `load_elf_phdrs`.
fn load_phdrs(
    h: &Header,
    ctx: Ctx,
    header: &[u8],
    file: &dyn ReadAt,
    size: u64,
    limit: u64,
) -> Result<Vec<ProgramHeader>, Defect> {
    let entsize = ProgramHeader::size(ctx) as u64;
    let class = if ctx.is_big() { "ELF64" } else { "ELF32" };
    // "If the size of this structure has changed, then punt".
    if u64::from(h.e_phentsize) != entsize {
        return Err(Defect::BadPhdrs {
            reason: format!(
                "e_phentsize is {}, the kernel expects {entsize} for {class}",
                h.e_phentsize
            ),
        });
    }
    // "Sanity check the number of program headers and their total size".
    let table = entsize * u64::from(h.e_phnum);
    if table == 0 {
        return Err(Defect::BadPhdrs {
            reason: "e_phnum is 0, there are no program headers".to_owned(),
        });
    }
    let limit = limit.clamp(1, MAX_PHDR_TABLE);
    if table > limit {
        return Err(Defect::BadPhdrs {
            reason: format!(
                "e_phnum {} makes a {table}-byte table, over the kernel's {limit}-byte limit",
                h.e_phnum
            ),
        });
    }
    // elf_read of the table: a short read (or an offset past the end) fails the load.
    let end = h.e_phoff.checked_add(table);
    let end = match end {
        Some(end) if end <= size => end,
        _ => {
            return Err(Defect::PhdrsPastEnd {
                end: end.unwrap_or(u64::MAX),
                size,
            });
        }
    };
    // table <= MAX_PHDR_TABLE, so this fits any usize.
    let len = usize::try_from(table).unwrap_or(0);
    let bytes = bytes_at(header, file, h.e_phoff, len);
    if bytes.len() < len {
        return Err(Defect::PhdrsPastEnd {
            end,
            size: h.e_phoff.saturating_add(bytes.len() as u64),
        });
    }
    ProgramHeader::parse(&bytes, 0, usize::from(h.e_phnum), ctx).map_err(|e| Defect::BadPhdrs {
        reason: format!("the program header table does not parse: {e}"),
    })
}

/// The `PT_INTERP` part of fs/binfmt_elf.c `load_elf_binary`. On error, also returns what the
/// path holds when it could be read.
fn read_interp(
    ph: &ProgramHeader,
    header: &[u8],
    file: &dyn ReadAt,
    size: u64,
) -> Result<Vec<u8>, (Defect, Option<Vec<u8>>)> {
    if ph.p_filesz > PATH_MAX || ph.p_filesz < 2 {
        return Err((Defect::InterpBadSize { size: ph.p_filesz }, None));
    }
    let end = match ph.p_offset.checked_add(ph.p_filesz) {
        Some(end) if end <= size => end,
        end => {
            return Err((
                Defect::InterpPastEnd {
                    end: end.unwrap_or(u64::MAX),
                    size,
                },
                None,
            ));
        }
    };
    // p_filesz <= PATH_MAX here.
    let len = usize::try_from(ph.p_filesz).unwrap_or(0);
    let bytes = bytes_at(header, file, ph.p_offset, len);
    if bytes.len() < len {
        return Err((
            Defect::InterpPastEnd {
                end,
                size: ph.p_offset.saturating_add(bytes.len() as u64),
            },
            None,
        ));
    }
    // open_exec sees a C string: everything up to the first NUL.
    let path_len = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    let path = bytes.get(..path_len).unwrap_or_default().to_vec();
    if bytes.last() != Some(&0) {
        return Err((Defect::InterpNotTerminated, Some(path)));
    }
    Ok(path)
}

/// The architecture family of `e_machine`, in kernel/`uname -m` style (`"x86_64"`,
/// `"aarch64"`, `"arm"`, `"ppc64"`, `"s390x"`, `"riscv64"`, `"mips"`…), or `"unknown"`.
/// Use [`arch_name`] when class and byte order are known: they tell ppc64 from ppc64le.
pub fn machine_name(machine: u16) -> &'static str {
    match machine {
        EM_X86_64 => "x86_64",
        EM_386 => "i386",
        EM_AARCH64 => "aarch64",
        EM_ARM => "arm",
        EM_PPC64 => "ppc64",
        EM_PPC => "ppc",
        EM_S390 => "s390x",
        EM_RISCV => "riscv64",
        EM_MIPS => "mips",
        EM_LOONGARCH => "loongarch64",
        EM_SPARCV9 => "sparc64",
        EM_SPARC | EM_SPARC32PLUS => "sparc",
        EM_IA_64 => "ia64",
        EM_ALPHA => "alpha",
        EM_PARISC => "parisc",
        EM_68K => "m68k",
        EM_SH => "sh4",
        EM_MICROBLAZE => "microblaze",
        EM_XTENSA => "xtensa",
        EM_OPENRISC => "or1k",
        EM_HEXAGON => "hexagon",
        EM_CSKY => "csky",
        EM_ARC_COMPACT => "arc",
        EM_ALTERA_NIOS2 => "nios2",
        EM_BPF => "bpf",
        _ => "unknown",
    }
}

/// The architecture name as `uname -m` and qemu-user spell it, from class, byte order and
/// `e_machine`: `"ppc64le"`, `"aarch64"`, `"arm"` (any EM_ARM little-endian, hard or soft
/// float), `"s390x"`, `"mips64el"`… or `"unknown (e_machine N)"`.
pub fn arch_name(class: Option<Class>, endian: Option<Endian>, machine: u16) -> String {
    let little = endian == Some(Endian::Little);
    let big = endian == Some(Endian::Big);
    let elf32 = class == Some(Class::Elf32);
    let elf64 = class == Some(Class::Elf64);
    let name = match machine {
        EM_X86_64 if elf32 => "x32",
        EM_AARCH64 if big => "aarch64_be",
        EM_ARM if big => "armeb",
        EM_PPC64 if little => "ppc64le",
        EM_PPC if little => "ppcle",
        EM_S390 if elf32 => "s390",
        EM_RISCV if elf32 => "riscv32",
        EM_LOONGARCH if elf32 => "loongarch32",
        EM_MIPS => match (elf64, little) {
            (true, true) => "mips64el",
            (true, false) => "mips64",
            (false, true) => "mipsel",
            (false, false) => "mips",
        },
        EM_PARISC if elf64 => "parisc64",
        EM_SH if big => "sh4eb",
        EM_MICROBLAZE if little => "microblazeel",
        EM_XTENSA if big => "xtensaeb",
        other => machine_name(other),
    };
    if name == "unknown" {
        format!("unknown (e_machine {machine})")
    } else {
        name.to_owned()
    }
}

fn type_name(e_type: u16) -> &'static str {
    match e_type {
        ET_NONE => "no file type",
        ET_REL => "relocatable object",
        ET_EXEC => "executable",
        ET_DYN => "shared object",
        ET_CORE => "core dump",
        _ => "unknown type",
    }
}

/// Printable ASCII as is, everything else (and the backslash) as `\xNN`.
fn escape(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    for &b in bytes {
        if (0x20..0x7f).contains(&b) && b != b'\\' {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("\\x{b:02x}"));
        }
    }
    out
}

/// One line in the style of file(1), e.g. `"ELF 64-bit LSB executable, aarch64, dynamically
/// linked (/lib/ld-linux-aarch64.so.1)"`, followed by `"; "` and the defect when there is one.
/// Untrusted bytes (the interpreter path) are escaped.
pub fn describe(info: &ElfInfo) -> String {
    let class = match info.class {
        Some(Class::Elf32) => "32-bit",
        Some(Class::Elf64) => "64-bit",
        None => "invalid-class",
    };
    let order = match info.endian {
        Some(Endian::Little) => "LSB",
        Some(Endian::Big) => "MSB",
        None => "invalid-byte-order",
    };
    let kind = match info.e_type {
        ET_EXEC => "executable".to_owned(),
        ET_DYN if info.interp.is_some() => "pie executable".to_owned(),
        ET_DYN if info.is_static_pie => "static-pie executable or shared object".to_owned(),
        ET_DYN => "shared object".to_owned(),
        ET_REL => "relocatable object".to_owned(),
        ET_CORE => "core dump".to_owned(),
        other => format!("file of type {other:#x}"),
    };
    let mut out = format!(
        "ELF {class} {order} {kind}, {}",
        arch_name(info.class, info.endian, info.machine)
    );
    let phdrs_read = matches!(
        info.defect,
        None | Some(Defect::InterpBadSize { .. })
            | Some(Defect::InterpPastEnd { .. })
            | Some(Defect::InterpNotTerminated)
            | Some(Defect::SegmentsPastEnd { .. })
            | Some(Defect::BadSegment { .. })
    );
    let interp_defect = matches!(
        info.defect,
        Some(Defect::InterpBadSize { .. })
            | Some(Defect::InterpPastEnd { .. })
            | Some(Defect::InterpNotTerminated)
    );
    if phdrs_read && !interp_defect && info.class.is_some() && info.endian.is_some() {
        match &info.interp {
            Some(path) => out.push_str(&format!(", dynamically linked ({})", escape(path))),
            None => out.push_str(", statically linked"),
        }
    }
    if let Some(defect) = &info.defect {
        out.push_str("; ");
        out.push_str(&defect.to_string());
    }
    out
}

/// `GNU_PROPERTY_X86_ISA_1_NEEDED` (elf.h): the x86 ISA levels an object needs.
pub const GNU_PROPERTY_X86_ISA_1_NEEDED: u32 = 0xc000_8002;
/// `NT_GNU_PROPERTY_TYPE_0` (elf.h).
const NT_GNU_PROPERTY_TYPE_0: u32 = 5;
/// Most bytes of `PT_GNU_PROPERTY` read (real notes are a few dozen bytes).
pub const MAX_PROPERTY_NOTE: u64 = 4096;

fn read_u32_le(bytes: &[u8], at: u64) -> Option<u32> {
    let at = usize::try_from(at).ok()?;
    let b: [u8; 4] = bytes.get(at..at.checked_add(4)?)?.try_into().ok()?;
    Some(u32::from_le_bytes(b))
}

/// The x86 ISA levels an x86-64 file needs: `GNU_PROPERTY_X86_ISA_1_NEEDED` in the first
/// `NT_GNU_PROPERTY_TYPE_0` note of its `PT_GNU_PROPERTY` segment, as a bit mask (bit 0
/// x86-64-baseline, bit 1 v2, bit 2 v3, bit 3 v4).
///
/// Read the way glibc's loader reads it (sysdeps/x86/dl-prop.h `_dl_process_pt_gnu_property`
/// and `_dl_process_gnu_property`): the segment must be 8-byte aligned, only the first GNU
/// property note counts, its properties must come in ascending type order and fit in the note,
/// and a malformed note records nothing. `None` for other machines and classes, without the
/// property, or when the note is malformed. One bounded read (at most [`MAX_PROPERTY_NOTE`]
/// bytes), none when the note lies inside `header`.
pub fn x86_isa_needed(info: &ElfInfo, header: &[u8], file: &dyn ReadAt) -> Option<u32> {
    if info.machine != EM_X86_64
        || info.class != Some(Class::Elf64)
        || info.endian != Some(Endian::Little)
    {
        return None;
    }
    let seg = info.segment(PT_GNU_PROPERTY)?;
    if seg.align != 8 {
        return None;
    }
    let len = seg.filesz.min(seg.memsz).min(MAX_PROPERTY_NOTE);
    let bytes = bytes_at(header, file, seg.offset, usize::try_from(len).ok()?);
    let size = bytes.len() as u64;
    let mut pos: u64 = 0;
    // "while ((ElfW(Addr)) (note + 1) - start < size)": a note header must start inside.
    while pos.checked_add(12)? < size {
        let namesz = read_u32_le(&bytes, pos)?;
        let descsz = read_u32_le(&bytes, pos + 4)?;
        let n_type = read_u32_le(&bytes, pos + 8)?;
        let name_at = usize::try_from(pos + 12).ok()?;
        if namesz == 4
            && n_type == NT_GNU_PROPERTY_TYPE_0
            && bytes.get(name_at..name_at + 4) == Some(&b"GNU\0"[..])
        {
            if descsz < 8 || descsz % 8 != 0 {
                return None;
            }
            let start = pos + 16;
            let end = start.checked_add(u64::from(descsz))?;
            if end > size {
                return None;
            }
            let mut p = start;
            let mut last_type = 0u32;
            let mut needed = None;
            loop {
                let p_type = read_u32_le(&bytes, p)?;
                let datasz = read_u32_le(&bytes, p + 4)?;
                if p_type < last_type {
                    return None;
                }
                p += 8;
                let data_end = p.checked_add(u64::from(datasz))?;
                if data_end > end {
                    return None;
                }
                last_type = p_type;
                if p_type == GNU_PROPERTY_X86_ISA_1_NEEDED && datasz == 4 {
                    needed = read_u32_le(&bytes, p);
                }
                p = p.checked_add(u64::from(datasz).checked_add(7)? & !7)?;
                if end.saturating_sub(p) < 8 {
                    break;
                }
            }
            // Only one NT_GNU_PROPERTY_TYPE_0 note is handled.
            return needed;
        }
        // ELF_NOTE_NEXT_OFFSET with 8-byte alignment.
        let desc = (12u64 + u64::from(namesz)).checked_add(7)? & !7;
        let next = desc.checked_add(u64::from(descsz))?.checked_add(7)? & !7;
        pos = pos.checked_add(next)?;
    }
    None
}

/// The highest x86-64 level in an ISA bit mask: 4 for x86-64-v4 down to 1 for
/// x86-64-baseline, 0 for none.
pub fn isa_level(bits: u32) -> u8 {
    match bits & 0xf {
        b if b & 8 != 0 => 4,
        b if b & 4 != 0 => 3,
        b if b & 2 != 0 => 2,
        b if b & 1 != 0 => 1,
        _ => 0,
    }
}

/// The bit mask of every level up to `level` (what a CPU of that level supports).
pub fn isa_bits_up_to(level: u8) -> u32 {
    match level {
        0 => 0,
        1 => 0b1,
        2 => 0b11,
        3 => 0b111,
        _ => 0b1111,
    }
}

/// The name of an x86-64 level as compilers and glibc spell it (`x86-64-v3`).
pub fn isa_level_name(level: u8) -> &'static str {
    match level {
        0 => "none",
        1 => "x86-64-baseline",
        2 => "x86-64-v2",
        3 => "x86-64-v3",
        _ => "x86-64-v4",
    }
}

/// Why loadable segments aligned for smaller pages do not fit `page_size`-byte pages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PageMisfit {
    /// The segment's file offset and address disagree modulo the page size, so no
    /// page-aligned file offset maps it at its address: the kernel refuses the mapping of the
    /// program and its loader (fs/binfmt_elf.c `elf_map` passes
    /// `p_offset - ELF_PAGEOFFSET(p_vaddr)` to `vm_mmap`, which refuses an offset that is not
    /// page-aligned, and past the point of no return fs/exec.c `bprm_execve` kills the process
    /// with SIGSEGV); glibc's loader refuses such a library (elf/dl-load.c
    /// `_dl_map_object_from_fd`: "ELF load command address/offset not page-aligned").
    Offset(Segment),
    /// Two segments share one page and the later one lacks a permission of the earlier (code
    /// followed by read-only data): both the kernel and the loaders map the segments in order,
    /// so the later mapping replaces the page and the earlier segment's code or data there
    /// loses that permission; the process faults when it uses it.
    SharedPage(Segment, Segment),
}

/// The first way the `PT_LOAD` segments aligned below `page_size` do not fit it (see
/// [`PageMisfit`]). `None` when they fit (segments aligned to at least the page size always
/// do), or `page_size` is not a power of two above 1.
pub fn page_misfit(info: &ElfInfo, page_size: u64) -> Option<PageMisfit> {
    if page_size < 2 || !page_size.is_power_of_two() {
        return None;
    }
    let loads: Vec<&Segment> = info
        .segments
        .iter()
        .filter(|s| s.p_type == PT_LOAD && s.memsz > 0)
        .collect();
    let mask = page_size - 1;
    if let Some(s) = loads
        .iter()
        .find(|s| s.align < page_size && s.vaddr.wrapping_sub(s.offset) & mask != 0)
    {
        return Some(PageMisfit::Offset(**s));
    }
    // Consecutive segments (the loaders require ascending p_vaddr).
    for pair in loads.windows(2) {
        let (a, b) = match pair {
            [a, b] => (*a, *b),
            _ => continue,
        };
        if a.align >= page_size && b.align >= page_size || a.flags & !b.flags & 7 == 0 {
            continue;
        }
        let last = a.vaddr.saturating_add(a.memsz - 1) & !mask;
        let first = b.vaddr & !mask;
        if first <= last {
            return Some(PageMisfit::SharedPage(*a, *b));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::cell::Cell;
    use std::io::Write;

    /// Counts the reads a parse makes.
    struct Counting<'a> {
        inner: &'a dyn ReadAt,
        calls: Cell<usize>,
        bytes: Cell<u64>,
    }

    impl<'a> Counting<'a> {
        fn new(inner: &'a dyn ReadAt) -> Self {
            Counting {
                inner,
                calls: Cell::new(0),
                bytes: Cell::new(0),
            }
        }
    }

    impl ReadAt for Counting<'_> {
        fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
            self.calls.set(self.calls.get() + 1);
            self.bytes.set(self.bytes.get() + buf.len() as u64);
            self.inner.read_at(buf, offset)
        }
        fn size(&self) -> u64 {
            self.inner.size()
        }
    }

    /// Holds some bytes but claims any size.
    struct Liar {
        data: Vec<u8>,
        size: u64,
    }

    impl ReadAt for Liar {
        fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
            self.data.read_at(buf, offset)
        }
        fn size(&self) -> u64 {
            self.size
        }
    }

    /// A synthetic ELF file, encoded by hand (not through goblin) so the tests check the parser
    /// against the format, not against itself.
    #[derive(Clone)]
    struct Spec {
        elf64: bool,
        big: bool,
        e_type: u16,
        machine: u16,
        flags: u32,
        phoff: u64,
        phentsize: Option<u16>,
        phnum: Option<u16>,
        /// (p_type, p_offset, p_filesz)
        phdrs: Vec<(u32, u64, u64)>,
        blobs: Vec<(usize, Vec<u8>)>,
        len: usize,
    }

    impl Spec {
        fn new(elf64: bool, big: bool, machine: u16) -> Self {
            Spec {
                elf64,
                big,
                e_type: ET_EXEC,
                machine,
                flags: 0,
                phoff: if elf64 { 64 } else { 52 },
                phentsize: None,
                phnum: None,
                phdrs: vec![],
                blobs: vec![],
                len: 0,
            }
        }

        fn put(&self, out: &mut Vec<u8>, at: usize, v: u64, width: usize) {
            let bytes = v.to_le_bytes();
            let mut field: Vec<u8> = bytes[..width].to_vec();
            if self.big {
                field.reverse();
            }
            if out.len() < at + width {
                out.resize(at + width, 0);
            }
            out[at..at + width].copy_from_slice(&field);
        }

        fn build(&self) -> Vec<u8> {
            let mut out = vec![0u8; if self.elf64 { 64 } else { 52 }];
            out[..4].copy_from_slice(b"\x7fELF");
            out[4] = if self.elf64 { 2 } else { 1 };
            out[5] = if self.big { 2 } else { 1 };
            out[6] = 1;
            out[7] = 3;
            self.put(&mut out, 16, self.e_type.into(), 2);
            self.put(&mut out, 18, self.machine.into(), 2);
            self.put(&mut out, 20, 1, 4);
            let entsize: u16 = if self.elf64 { 56 } else { 32 };
            let phentsize = self.phentsize.unwrap_or(entsize);
            let phnum = self.phnum.unwrap_or(self.phdrs.len() as u16);
            if self.elf64 {
                self.put(&mut out, 32, self.phoff, 8);
                self.put(&mut out, 48, self.flags.into(), 4);
                self.put(&mut out, 52, 64, 2);
                self.put(&mut out, 54, phentsize.into(), 2);
                self.put(&mut out, 56, phnum.into(), 2);
            } else {
                self.put(&mut out, 28, self.phoff, 4);
                self.put(&mut out, 36, self.flags.into(), 4);
                self.put(&mut out, 40, 52, 2);
                self.put(&mut out, 42, phentsize.into(), 2);
                self.put(&mut out, 44, phnum.into(), 2);
            }
            for (i, &(p_type, off, filesz)) in self.phdrs.iter().enumerate() {
                let base = self.phoff as usize + i * usize::from(entsize);
                if self.elf64 {
                    self.put(&mut out, base, p_type.into(), 4);
                    self.put(&mut out, base + 4, 5, 4);
                    self.put(&mut out, base + 8, off, 8);
                    self.put(&mut out, base + 32, filesz, 8);
                    self.put(&mut out, base + 40, filesz, 8);
                } else {
                    self.put(&mut out, base, p_type.into(), 4);
                    self.put(&mut out, base + 4, off, 4);
                    self.put(&mut out, base + 16, filesz, 4);
                    self.put(&mut out, base + 20, filesz, 4);
                    self.put(&mut out, base + 24, 5, 4);
                }
            }
            for (at, blob) in &self.blobs {
                if out.len() < at + blob.len() {
                    out.resize(at + blob.len(), 0);
                }
                out[*at..at + blob.len()].copy_from_slice(blob);
            }
            if out.len() < self.len {
                out.resize(self.len, 0);
            }
            out
        }
    }

    const INTERP: &[u8] = b"/lib/ld-musl-x86_64.so.1\0";

    fn dynamic(elf64: bool, big: bool, machine: u16) -> Spec {
        let mut s = Spec::new(elf64, big, machine);
        s.e_type = ET_DYN;
        s.phdrs = vec![
            (PT_INTERP, 0x200, INTERP.len() as u64),
            (PT_LOAD, 0, 0x1000),
        ];
        s.blobs = vec![(0x200, INTERP.to_vec())];
        s.len = 0x1000;
        s
    }

    /// Moves the interpreter path (and keeps the file long enough for it).
    fn interp_at(mut s: Spec, off: usize) -> Spec {
        s.phdrs[0].1 = off as u64;
        s.blobs = vec![(off, INTERP.to_vec())];
        s.len = s.len.max(off + INTERP.len());
        s
    }

    fn parse_all(bytes: &[u8]) -> ElfInfo {
        let head = &bytes[..bytes.len().min(4096)];
        match parse(head, &bytes) {
            Some(info) => info,
            None => panic!("not recognised as ELF"),
        }
    }

    #[test]
    fn dynamic_little_endian_64() {
        let bytes = dynamic(true, false, EM_X86_64).build();
        let info = parse_all(&bytes);
        assert_eq!(info.class, Some(Class::Elf64));
        assert_eq!(info.endian, Some(Endian::Little));
        assert_eq!(info.machine, EM_X86_64);
        assert_eq!(info.e_type, ET_DYN);
        assert_eq!(info.osabi, 3);
        assert_eq!(
            info.interp.as_deref(),
            Some(&b"/lib/ld-musl-x86_64.so.1"[..])
        );
        assert_eq!(info.defect, None);
        assert_eq!(info.load_end, 0x1000);
        assert!(!info.is_static_pie);
        assert_eq!(
            describe(&info),
            "ELF 64-bit LSB pie executable, x86_64, dynamically linked (/lib/ld-musl-x86_64.so.1)"
        );
    }

    #[test]
    fn big_endian_fields_are_read_big_endian() {
        // s390x: 64-bit big-endian. Were the fields read little-endian, e_machine 22 would come
        // out as 0x1600 and the offsets would be garbage.
        let mut s = dynamic(true, true, EM_S390);
        s.flags = 0x0102_0304;
        let info = parse_all(&s.build());
        assert_eq!(info.endian, Some(Endian::Big));
        assert_eq!(info.machine, EM_S390);
        assert_eq!(info.flags, 0x0102_0304);
        assert_eq!(info.interp.as_deref(), Some(&INTERP[..INTERP.len() - 1]));
        assert_eq!(info.defect, None);
        assert_eq!(arch_name(info.class, info.endian, info.machine), "s390x");
        assert!(describe(&info).starts_with("ELF 64-bit MSB pie executable, s390x"));

        // ppc64 big-endian vs little-endian.
        let be = parse_all(&dynamic(true, true, EM_PPC64).build());
        let le = parse_all(&dynamic(true, false, EM_PPC64).build());
        assert_eq!(arch_name(be.class, be.endian, be.machine), "ppc64");
        assert_eq!(arch_name(le.class, le.endian, le.machine), "ppc64le");

        // 32-bit big-endian MIPS and little-endian ARM.
        let mips = parse_all(&dynamic(false, true, EM_MIPS).build());
        assert_eq!(mips.class, Some(Class::Elf32));
        assert_eq!(mips.defect, None);
        assert_eq!(mips.interp.as_deref(), Some(&INTERP[..INTERP.len() - 1]));
        assert_eq!(arch_name(mips.class, mips.endian, mips.machine), "mips");
        let arm = parse_all(&dynamic(false, false, EM_ARM).build());
        assert_eq!(arch_name(arm.class, arm.endian, arm.machine), "arm");
        assert_eq!(arm.load_end, 0x1000);
    }

    #[test]
    fn static_and_static_pie() {
        let mut s = Spec::new(true, false, EM_AARCH64);
        s.phdrs = vec![(PT_LOAD, 0, 0x800)];
        s.len = 0x800;
        let info = parse_all(&s.build());
        assert_eq!(info.interp, None);
        assert!(!info.is_static_pie);
        assert_eq!(
            describe(&info),
            "ELF 64-bit LSB executable, aarch64, statically linked"
        );
        s.e_type = ET_DYN;
        let info = parse_all(&s.build());
        assert!(info.is_static_pie);
        assert_eq!(info.defect, None);
        assert!(describe(&info).contains("static-pie"));
    }

    #[test]
    fn not_elf() {
        assert_eq!(parse(b"", &Vec::new()), None);
        assert_eq!(parse(b"\x7fEL", &b"\x7fEL".to_vec()), None);
        assert_eq!(parse(b"#!/bin/sh\n", &b"#!/bin/sh\n".to_vec()), None);
        assert_eq!(
            parse(b"\x7fELG\x02\x01", &b"\x7fELG\x02\x01".to_vec()),
            None
        );
    }

    #[test]
    fn truncated_header_reports_what_exists() {
        let full = dynamic(true, false, EM_AARCH64).build();
        // 30 bytes: ident, e_type and e_machine exist, e_phoff and the rest do not.
        let cut = full[..30].to_vec();
        let info = parse(&cut, &cut).unwrap_or_else(|| panic!("not elf"));
        assert_eq!(info.class, Some(Class::Elf64));
        assert_eq!(info.endian, Some(Endian::Little));
        assert_eq!(info.machine, EM_AARCH64);
        assert_eq!(info.e_type, ET_DYN);
        assert_eq!(info.defect, Some(Defect::HeaderTruncated { size: 30 }));
        assert_eq!(
            info.defect.as_ref().and_then(Defect::errno),
            Some(libc::ENOEXEC)
        );
        // e_machine is past the end: zero, like the kernel's buffer.
        let cut = full[..18].to_vec();
        let info = parse(&cut, &cut).unwrap_or_else(|| panic!("not elf"));
        assert_eq!(info.machine, 0);
        assert_eq!(info.e_type, ET_DYN);
        assert_eq!(info.defect, Some(Defect::HeaderTruncated { size: 18 }));
        // Half of it exists: the low byte is read, the high byte is zero.
        let cut = full[..19].to_vec();
        let info = parse(&cut, &cut).unwrap_or_else(|| panic!("not elf"));
        assert_eq!(info.machine, EM_AARCH64);
        let cut = dynamic(true, true, EM_PPC64).build()[..19].to_vec();
        let info = parse(&cut, &cut).unwrap_or_else(|| panic!("not elf"));
        assert_eq!(info.machine, 0, "big-endian: byte 18 is the high byte");
        // Only the magic: class byte reads as zero.
        let info = parse(b"\x7fELF", &b"\x7fELF".to_vec()).unwrap_or_else(|| panic!("not elf"));
        assert_eq!(info.class, None);
        assert_eq!(info.defect, Some(Defect::HeaderTruncated { size: 4 }));
        // A 32-bit header needs 52 bytes, not 64.
        let full32 = dynamic(false, false, EM_ARM).build();
        let cut = full32[..52].to_vec();
        let info = parse(&cut, &cut).unwrap_or_else(|| panic!("not elf"));
        assert_ne!(info.defect, Some(Defect::HeaderTruncated { size: 52 }));
        assert!(matches!(info.defect, Some(Defect::PhdrsPastEnd { .. })));
    }

    #[test]
    fn short_header_buffer_is_completed_from_the_file() {
        let full = dynamic(true, true, EM_PPC64).build();
        let info = parse(&full[..10], &full).unwrap_or_else(|| panic!("not elf"));
        assert_eq!(info.defect, None);
        assert_eq!(info.machine, EM_PPC64);
        assert_eq!(info.interp.as_deref(), Some(&INTERP[..INTERP.len() - 1]));
    }

    #[test]
    fn bad_type() {
        for t in [ET_NONE, ET_REL, ET_CORE, 0xfe00] {
            let mut s = dynamic(true, false, EM_X86_64);
            s.e_type = t;
            // Program headers past the end too: the type check comes first.
            s.phoff = 1 << 40;
            s.phnum = Some(2);
            let info = parse_all(&Spec { phdrs: vec![], ..s }.build());
            assert_eq!(info.defect, Some(Defect::BadType(t)));
            assert_eq!(
                info.defect.as_ref().and_then(Defect::errno),
                Some(libc::ENOEXEC)
            );
        }
    }

    #[test]
    fn bad_phdrs() {
        let mut s = dynamic(true, false, EM_X86_64);
        s.phentsize = Some(32);
        let info = parse_all(&s.build());
        match &info.defect {
            Some(Defect::BadPhdrs { reason }) => assert!(reason.contains("e_phentsize is 32")),
            other => panic!("{other:?}"),
        }
        let mut s = dynamic(true, false, EM_X86_64);
        s.phnum = Some(0);
        assert!(matches!(
            parse_all(&s.build()).defect,
            Some(Defect::BadPhdrs { .. })
        ));
        // 1171 * 56 = 65576 > 65536; 1170 * 56 = 65520 fits.
        let mut s = interp_at(dynamic(true, false, EM_X86_64), 0x10400);
        s.phnum = Some(1171);
        s.len = 70_000;
        assert!(matches!(
            parse_all(&s.build()).defect,
            Some(Defect::BadPhdrs { .. })
        ));
        s.phnum = Some(1170);
        let info = parse_all(&s.build());
        assert_eq!(info.defect, None, "{info:?}");
        assert_eq!(info.interp.as_deref(), Some(&INTERP[..INTERP.len() - 1]));
        // 32-bit: 2049 * 32 > 65536.
        let mut s = dynamic(false, false, EM_ARM);
        s.phnum = Some(2049);
        s.len = 70_000;
        assert!(matches!(
            parse_all(&s.build()).defect,
            Some(Defect::BadPhdrs { .. })
        ));
        // e_phnum at its maximum.
        let mut s = dynamic(true, false, EM_X86_64);
        s.phnum = Some(u16::MAX);
        assert!(matches!(
            parse_all(&s.build()).defect,
            Some(Defect::BadPhdrs { .. })
        ));
    }

    #[test]
    fn page_size_limit_of_older_kernels() {
        assert_eq!(phdr_table_limit("6.1.0-18-amd64", 4096), 4096);
        assert_eq!(phdr_table_limit("6.16.3", 4096), 4096);
        assert_eq!(phdr_table_limit("5.14.0-427.el9.aarch64", 65536), 65536);
        assert_eq!(phdr_table_limit("6.17.0", 4096), MAX_PHDR_TABLE);
        assert_eq!(phdr_table_limit("7.0.1", 4096), MAX_PHDR_TABLE);
        assert_eq!(phdr_table_limit("garbage", 4096), MAX_PHDR_TABLE);
        let mut s = interp_at(dynamic(true, false, EM_X86_64), 0x1800);
        s.len = 0x2000;
        s.phnum = Some(74);
        let bytes = s.build();
        let old = parse_with_limit(&bytes[..4096], &bytes, 4096).unwrap_or_else(|| panic!());
        assert!(matches!(old.defect, Some(Defect::BadPhdrs { .. })));
        let new = parse(&bytes[..4096], &bytes).unwrap_or_else(|| panic!());
        assert_eq!(new.defect, None);
        s.phnum = Some(73);
        let bytes = s.build();
        let old = parse_with_limit(&bytes[..4096], &bytes, 4096).unwrap_or_else(|| panic!());
        assert_eq!(old.defect, None);
    }

    #[test]
    fn phdrs_past_end() {
        let mut s = dynamic(true, false, EM_X86_64);
        s.len = 0x1000;
        s.phoff = 0x1000 - 60; // two entries of 56 bytes do not fit
        s.blobs.clear();
        let bytes = s.build();
        let bytes = bytes[..0x1000].to_vec();
        let info = parse_all(&bytes);
        assert_eq!(
            info.defect,
            Some(Defect::PhdrsPastEnd {
                end: 0x1000 - 60 + 112,
                size: 0x1000
            })
        );
        for phoff in [1u64 << 40, u64::MAX - 5, u64::MAX] {
            let mut s = dynamic(true, false, EM_X86_64);
            s.phoff = phoff;
            s.phnum = Some(2);
            let mut bytes = Spec {
                phdrs: vec![],
                ..s.clone()
            }
            .build();
            bytes.resize(0x1000, 0);
            let c_bytes = bytes.clone();
            let counting = Counting::new(&c_bytes);
            let info = parse(&bytes, &counting).unwrap_or_else(|| panic!());
            assert!(
                matches!(info.defect, Some(Defect::PhdrsPastEnd { .. })),
                "{info:?}"
            );
            assert_eq!(
                info.defect.as_ref().and_then(Defect::errno),
                Some(libc::ENOEXEC)
            );
            assert_eq!(counting.calls.get(), 0, "bounds are checked before reading");
        }
    }

    #[test]
    fn interp_defects() {
        for filesz in [0u64, 1, PATH_MAX + 1, u64::MAX] {
            let mut s = dynamic(true, false, EM_X86_64);
            s.phdrs[0].2 = filesz;
            let info = parse_all(&s.build());
            assert_eq!(info.defect, Some(Defect::InterpBadSize { size: filesz }));
            assert_eq!(
                info.defect.as_ref().and_then(Defect::errno),
                Some(libc::ENOEXEC)
            );
        }
        // PATH_MAX exactly is accepted (and read beyond the header buffer).
        let mut s = dynamic(true, false, EM_X86_64);
        let mut long = vec![b'a'; PATH_MAX as usize - 1];
        long.push(0);
        s.phdrs[0] = (PT_INTERP, 0x2000, PATH_MAX);
        s.blobs = vec![(0x2000, long)];
        s.len = 0x3000;
        let info = parse_all(&s.build());
        assert_eq!(info.defect, None);
        assert_eq!(info.interp.map(|p| p.len()), Some(PATH_MAX as usize - 1));

        // Past the end: EIO.
        for off in [0xff0u64, 1 << 40, u64::MAX] {
            let mut s = dynamic(true, false, EM_X86_64);
            s.phdrs[0].1 = off;
            s.blobs.clear();
            let info = parse_all(&s.build());
            assert!(
                matches!(info.defect, Some(Defect::InterpPastEnd { .. })),
                "{info:?}"
            );
            assert_eq!(
                info.defect.as_ref().and_then(Defect::errno),
                Some(libc::EIO)
            );
            assert_eq!(info.interp, None);
        }

        // Not NUL-terminated.
        let mut s = dynamic(true, false, EM_X86_64);
        s.blobs = vec![(0x200, b"/lib/ld.so\x01".to_vec())];
        s.phdrs[0].2 = 11;
        let info = parse_all(&s.build());
        assert_eq!(info.defect, Some(Defect::InterpNotTerminated));
        assert_eq!(info.interp.as_deref(), Some(&b"/lib/ld.so\x01"[..]));
        assert!(describe(&info).contains("does not end with a NUL"));

        // Control bytes in the path are escaped in the description.
        let mut s = dynamic(true, false, EM_X86_64);
        s.blobs = vec![(0x200, b"/lib/\x1b[31mld\\.so\0".to_vec())];
        s.phdrs[0].2 = 17;
        let info = parse_all(&s.build());
        assert_eq!(info.defect, None);
        let text = describe(&info);
        assert!(text.ends_with("(/lib/\\x1b[31mld\\x5c.so)"), "{text}");
    }

    #[test]
    fn interp_stops_at_first_nul_and_first_phdr() {
        let mut s = dynamic(true, false, EM_X86_64);
        s.blobs = vec![(0x200, b"/lib/ld.so\0junk\0".to_vec())];
        s.phdrs[0].2 = 16;
        assert_eq!(
            parse_all(&s.build()).interp.as_deref(),
            Some(&b"/lib/ld.so"[..])
        );
        // A second, broken PT_INTERP is never looked at.
        let mut s = dynamic(true, false, EM_X86_64);
        s.phdrs.push((PT_INTERP, 0, 1));
        assert_eq!(parse_all(&s.build()).defect, None);
        // A broken first one wins over a good second one.
        let mut s = dynamic(true, false, EM_X86_64);
        s.phdrs.insert(0, (PT_INTERP, 0, 1));
        assert_eq!(
            parse_all(&s.build()).defect,
            Some(Defect::InterpBadSize { size: 1 })
        );
    }

    #[test]
    fn segments_the_kernel_cannot_map_are_bad_segment() {
        // (p_vaddr, p_memsz) written over an otherwise good 64-bit PT_LOAD of 0x100 bytes.
        let build = |vaddr: u64, memsz: u64| {
            let mut s = Spec::new(true, false, EM_X86_64);
            s.phdrs.push((PT_LOAD, 0, 0x100));
            s.len = 0x200;
            let mut b = s.build();
            b[64 + 16..64 + 24].copy_from_slice(&vaddr.to_le_bytes());
            b[64 + 40..64 + 48].copy_from_slice(&memsz.to_le_bytes());
            parse_all(&b)
        };
        assert_eq!(build(0x40_0000, 0x100).defect, None);
        assert_eq!(
            build(0x40_0000, 0x1000).defect,
            None,
            "bss after the file bytes"
        );
        for (vaddr, memsz, what) in [
            (0x40_0000, 0x10, "p_filesz 0x100 over p_memsz 0x10"),
            (0xffff_8000_0000_0000, 0x100, "past the user address space"),
            (0x40_0000, u64::MAX, "past the user address space"),
            ((1 << 56) - 0x1000, 0x2000, "past the user address space"),
        ] {
            let info = build(vaddr, memsz);
            match &info.defect {
                Some(Defect::BadSegment { reason }) => assert!(reason.contains(what), "{reason}"),
                other => panic!("{vaddr:#x} {memsz:#x}: {other:?}"),
            }
            assert_eq!(info.defect.as_ref().and_then(Defect::errno), None);
        }
    }

    #[test]
    fn segments_past_end() {
        let mut s = dynamic(true, false, EM_X86_64);
        s.phdrs.push((PT_LOAD, 0x1000, 1 << 30));
        let info = parse_all(&s.build());
        assert_eq!(
            info.defect,
            Some(Defect::SegmentsPastEnd {
                end: 0x1000 + (1 << 30),
                size: 0x1000
            })
        );
        assert_eq!(info.defect.as_ref().and_then(Defect::errno), None);
        assert!(describe(&info).contains("dynamically linked"));
        // An interpreter defect comes first.
        s.phdrs[0].2 = 1;
        assert_eq!(
            parse_all(&s.build()).defect,
            Some(Defect::InterpBadSize { size: 1 })
        );
        // p_filesz 0 (bss only) needs no file bytes; overflow saturates.
        let mut s = dynamic(true, false, EM_X86_64);
        s.phdrs.push((PT_LOAD, u64::MAX, 0));
        assert_eq!(parse_all(&s.build()).defect, None);
        s.phdrs.push((PT_LOAD, u64::MAX, 10));
        assert_eq!(parse_all(&s.build()).load_end, u64::MAX);
    }

    #[test]
    fn phdrs_and_interp_beyond_the_header_buffer() {
        let mut s = dynamic(true, false, EM_X86_64);
        s.phoff = 0x2000;
        s.phdrs[0].1 = 0x3000;
        s.blobs = vec![(0x3000, INTERP.to_vec())];
        s.phdrs[1].2 = 0x4000;
        s.len = 0x4000;
        let bytes = s.build();
        let counting = Counting::new(&bytes);
        let info = parse(&bytes[..4096], &counting).unwrap_or_else(|| panic!());
        assert_eq!(info.defect, None);
        assert_eq!(info.interp.as_deref(), Some(&INTERP[..INTERP.len() - 1]));
        assert_eq!(counting.calls.get(), 2);
        assert_eq!(counting.bytes.get(), 112 + INTERP.len() as u64);
    }

    fn sparse_case(total: u64) -> (usize, u64, ElfInfo) {
        let mut s = dynamic(true, false, EM_X86_64);
        s.phoff = 0x2000; // outside the first 4096 bytes: one read
        s.phdrs[0].1 = 0x3000;
        s.blobs = vec![(0x3000, INTERP.to_vec())];
        s.phdrs[1].2 = total;
        let bytes = s.build();
        let mut f = tempfile::tempfile().unwrap_or_else(|e| panic!("tempfile: {e}"));
        f.write_all(&bytes).unwrap_or_else(|e| panic!("write: {e}"));
        f.set_len(total).unwrap_or_else(|e| panic!("set_len: {e}"));
        let counting = Counting::new(&f);
        let info = parse(&bytes[..4096], &counting).unwrap_or_else(|| panic!());
        (counting.calls.get(), counting.bytes.get(), info)
    }

    #[test]
    fn two_gigabyte_sparse_file_costs_the_same() {
        let (small_calls, small_bytes, small) = sparse_case(16 * 1024);
        let (big_calls, big_bytes, big) = sparse_case(2 << 30);
        assert_eq!(small.defect, None);
        assert_eq!(big.defect, None);
        assert_eq!(big.load_end, 2 << 30);
        assert_eq!(small_calls, big_calls);
        assert_eq!(small_bytes, big_bytes);
        assert!(big_bytes < 1024);
    }

    #[test]
    fn absurd_phoff_inside_a_huge_file_reads_one_bounded_table() {
        // Claims 2 GB, table of 1170 entries 1.5 GB in: one read of 65520 bytes, no more.
        let mut s = dynamic(true, false, EM_X86_64);
        s.phoff = 3 << 29;
        s.phnum = Some(1170);
        let bytes = Spec { phdrs: vec![], ..s }.build();
        let liar = Liar {
            data: bytes.clone(),
            size: 2 << 30,
        };
        let counting = Counting::new(&liar);
        let info = parse(&bytes, &counting).unwrap_or_else(|| panic!());
        // The bytes are not really there: a short read.
        assert!(matches!(info.defect, Some(Defect::PhdrsPastEnd { .. })));
        assert_eq!(counting.calls.get(), 1);
        assert_eq!(counting.bytes.get(), 1170 * 56);
    }

    #[test]
    fn invalid_class_or_byte_order() {
        let mut bytes = dynamic(true, false, EM_X86_64).build();
        bytes[4] = 9;
        let info = parse_all(&bytes);
        assert_eq!(info.class, None);
        assert_eq!(info.machine, EM_X86_64);
        assert_eq!(info.defect, None);
        assert_eq!(info.interp, None);
        assert!(describe(&info).starts_with("ELF invalid-class LSB"));
        bytes[4] = 2;
        bytes[5] = 0;
        let info = parse_all(&bytes);
        assert_eq!(info.endian, None);
        assert_eq!(info.machine, 0);
        assert_eq!(info.defect, None);
    }

    #[test]
    fn file_impl_reads_positioned() {
        let bytes = dynamic(true, true, EM_S390).build();
        let mut f = tempfile::tempfile().unwrap_or_else(|e| panic!("tempfile: {e}"));
        f.write_all(&bytes).unwrap_or_else(|e| panic!("write: {e}"));
        assert_eq!(ReadAt::size(&f), bytes.len() as u64);
        let info = parse(&bytes[..100], &f).unwrap_or_else(|| panic!());
        assert_eq!(info.interp.as_deref(), Some(&INTERP[..INTERP.len() - 1]));
        let mut buf = [0u8; 8];
        assert_eq!(
            ReadAt::read_at(&f, &mut buf, bytes.len() as u64 + 10).ok(),
            Some(0)
        );
    }

    #[test]
    fn names() {
        assert_eq!(machine_name(EM_X86_64), "x86_64");
        assert_eq!(machine_name(EM_RISCV), "riscv64");
        assert_eq!(machine_name(0xbeef), "unknown");
        assert_eq!(arch_name(None, None, 0xbeef), "unknown (e_machine 48879)");
        assert_eq!(
            arch_name(Some(Class::Elf32), Some(Endian::Little), EM_386),
            "i386"
        );
        assert_eq!(
            arch_name(Some(Class::Elf32), Some(Endian::Little), EM_X86_64),
            "x32"
        );
        assert_eq!(
            arch_name(Some(Class::Elf64), Some(Endian::Little), EM_MIPS),
            "mips64el"
        );
        assert_eq!(
            arch_name(Some(Class::Elf64), Some(Endian::Big), EM_AARCH64),
            "aarch64_be"
        );
        assert_eq!(
            arch_name(Some(Class::Elf64), Some(Endian::Little), EM_LOONGARCH),
            "loongarch64"
        );
    }

    fn real(path: &str) -> Option<(Vec<u8>, std::fs::File)> {
        match std::fs::File::open(path) {
            Ok(f) => {
                let mut head = vec![0u8; 4096];
                let n = read_full(&f, &mut head, 0);
                head.truncate(n);
                Some((head, f))
            }
            Err(e) => {
                assert!(
                    std::env::var("CI").as_deref() != Ok("true"),
                    "fixture {path} missing under CI: {e}"
                );
                eprintln!("skipping {path}: {e}");
                None
            }
        }
    }

    #[test]
    fn real_host_binaries() {
        if let Some((head, f)) = real("/bin/busybox") {
            let info = parse(&head, &f).unwrap_or_else(|| panic!("busybox not elf"));
            assert_eq!(info.machine, EM_X86_64);
            assert_eq!(info.class, Some(Class::Elf64));
            assert_eq!(info.interp, None);
            assert_eq!(info.defect, None);
            assert!(info.load_end <= ReadAt::size(&f));
            assert!(
                describe(&info).contains("statically linked"),
                "{}",
                describe(&info)
            );
        }
        if let Some((head, f)) = real("/bin/ls") {
            let info = parse(&head, &f).unwrap_or_else(|| panic!("ls not elf"));
            assert_eq!(info.defect, None);
            let interp = info.interp.clone().unwrap_or_default();
            assert!(interp.starts_with(b"/lib"), "{interp:?}");
            assert!(interp.windows(3).any(|w| w == b"ld-"));
            assert!(describe(&info).contains("dynamically linked (/lib"));
        }
    }

    #[test]
    fn foreign_busybox_fixtures() {
        let cases = [
            ("arm64", Class::Elf64, Endian::Little, EM_AARCH64, "aarch64"),
            ("armhf", Class::Elf32, Endian::Little, EM_ARM, "arm"),
            ("ppc64el", Class::Elf64, Endian::Little, EM_PPC64, "ppc64le"),
            ("s390x", Class::Elf64, Endian::Big, EM_S390, "s390x"),
        ];
        for (dir, class, endian, machine, arch) in cases {
            let path = format!("/var/cache/execguard-fixtures/{dir}/bin/busybox");
            let Some((head, f)) = real(&path) else {
                continue;
            };
            let info = parse(&head, &f).unwrap_or_else(|| panic!("{path} not elf"));
            assert_eq!(info.class, Some(class), "{path}");
            assert_eq!(info.endian, Some(endian), "{path}");
            assert_eq!(info.machine, machine, "{path}");
            assert_eq!(info.defect, None, "{path}");
            assert_eq!(info.interp, None, "{path}: static busybox");
            assert_eq!(arch_name(info.class, info.endian, info.machine), arch);
            assert!(
                info.load_end > 0 && info.load_end <= ReadAt::size(&f),
                "{path}"
            );
        }
    }

    /// An x86-64 object with a GNU property note at 0x300 holding `props` (type, data).
    fn with_note(props: &[(u32, &[u8])], align: u64, namesz: u32) -> Vec<u8> {
        let mut o = crate::inspect::dynamic::build::Obj::lib(&[]);
        o.isa_needed = Some(0);
        let mut bytes = o.build();
        let mut desc = Vec::new();
        for (t, d) in props {
            desc.extend_from_slice(&t.to_le_bytes());
            desc.extend_from_slice(&(d.len() as u32).to_le_bytes());
            desc.extend_from_slice(d);
            while desc.len() % 8 != 0 {
                desc.push(0);
            }
        }
        let mut note = Vec::new();
        note.extend_from_slice(&namesz.to_le_bytes());
        note.extend_from_slice(&(desc.len() as u32).to_le_bytes());
        note.extend_from_slice(&5u32.to_le_bytes());
        note.extend_from_slice(b"GNU\0");
        note.extend_from_slice(&desc);
        bytes[0x300..0x300 + note.len()].copy_from_slice(&note);
        // PT_GNU_PROPERTY is the last program header: fix its size and alignment.
        let ph = 64 + 3 * 56;
        bytes[ph + 32..ph + 40].copy_from_slice(&(note.len() as u64).to_le_bytes());
        bytes[ph + 40..ph + 48].copy_from_slice(&(note.len() as u64).to_le_bytes());
        bytes[ph + 48..ph + 56].copy_from_slice(&align.to_le_bytes());
        bytes
    }

    fn isa_of(bytes: &[u8], head: usize) -> Option<u32> {
        let head = &bytes[..head.min(bytes.len())];
        let info = parse(head, &bytes).unwrap_or_else(|| panic!("not elf"));
        x86_isa_needed(&info, head, &bytes)
    }

    #[test]
    fn isa_level_note_as_glibc_reads_it() {
        let v4 = 0b1001u32.to_le_bytes();
        // The property alone, after a lower one, and beyond the header buffer.
        let b = with_note(&[(GNU_PROPERTY_X86_ISA_1_NEEDED, &v4)], 8, 4);
        assert_eq!(isa_of(&b, 4096), Some(0b1001));
        assert_eq!(isa_of(&b, 64), Some(0b1001));
        let b = with_note(
            &[
                (0xc000_0002, &[3, 0, 0, 0]),
                (GNU_PROPERTY_X86_ISA_1_NEEDED, &v4),
            ],
            8,
            4,
        );
        assert_eq!(isa_of(&b, 4096), Some(0b1001));
        // Out of order: glibc records nothing.
        let b = with_note(
            &[
                (GNU_PROPERTY_X86_ISA_1_NEEDED, &v4),
                (0xc000_0002, &[3, 0, 0, 0]),
            ],
            8,
            4,
        );
        assert_eq!(isa_of(&b, 4096), None);
        // Wrong data size, wrong segment alignment, wrong note name size.
        let b = with_note(&[(GNU_PROPERTY_X86_ISA_1_NEEDED, &[9, 0])], 8, 4);
        assert_eq!(isa_of(&b, 4096), None);
        let b = with_note(&[(GNU_PROPERTY_X86_ISA_1_NEEDED, &v4)], 4, 4);
        assert_eq!(isa_of(&b, 4096), None);
        let b = with_note(&[(GNU_PROPERTY_X86_ISA_1_NEEDED, &v4)], 8, 5);
        assert_eq!(isa_of(&b, 4096), None);
        // A data size running past the note.
        let mut b = with_note(&[(GNU_PROPERTY_X86_ISA_1_NEEDED, &v4)], 8, 4);
        b[0x300 + 16 + 4..0x300 + 16 + 8].copy_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(isa_of(&b, 4096), None);
        // Other machines carry no x86 ISA level.
        let mut b = with_note(&[(GNU_PROPERTY_X86_ISA_1_NEEDED, &v4)], 8, 4);
        b[18..20].copy_from_slice(&EM_AARCH64.to_le_bytes());
        assert_eq!(isa_of(&b, 4096), None);
        // Levels.
        assert_eq!(isa_level(0b1001), 4);
        assert_eq!(isa_level(0b0101), 3);
        assert_eq!(isa_level(0b0011), 2);
        assert_eq!(isa_level(0b0001), 1);
        assert_eq!(isa_level(0), 0);
        assert_eq!(isa_bits_up_to(3), 0b0111);
        assert_eq!(isa_level_name(4), "x86-64-v4");
    }

    #[test]
    fn isa_level_note_of_a_real_compiled_binary() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
        let src = dir.path().join("m.c");
        std::fs::write(&src, "int main(void) { return 0; }\n").unwrap_or_else(|e| panic!("{e}"));
        let exe = dir.path().join("m");
        let ok = std::process::Command::new("cc")
            .args(["-O0", "-Wl,-z,x86-64-v3", "-o"])
            .arg(&exe)
            .arg(&src)
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "cc failed in CI"
            );
            return;
        }
        let bytes = std::fs::read(&exe).unwrap_or_else(|e| panic!("{e}"));
        let bits = isa_of(&bytes, 4096).unwrap_or_else(|| panic!("no ISA note"));
        assert_eq!(isa_level(bits), 3, "{bits:#x}");
    }

    fn load(offset: u64, vaddr: u64, memsz: u64, align: u64, flags: u32) -> Segment {
        Segment {
            p_type: PT_LOAD,
            offset,
            vaddr,
            filesz: memsz,
            memsz,
            align,
            flags,
        }
    }

    fn info_with(segments: Vec<Segment>) -> ElfInfo {
        let mut info = parse_all(&dynamic(true, false, EM_X86_64).build());
        info.segments = segments;
        info
    }

    #[test]
    fn page_misfits() {
        const R: u32 = 4;
        const RX: u32 = 5;
        const RW: u32 = 6;
        // Offset and address 4K apart: fine with 4K pages, unmappable with 16K or 64K.
        let i = info_with(vec![
            load(0, 0, 0x800, 0x1000, R),
            load(0x1000, 0x12000, 0x800, 0x1000, RW),
        ]);
        assert_eq!(page_misfit(&i, 4096), None);
        assert!(
            matches!(page_misfit(&i, 16384), Some(PageMisfit::Offset(s)) if s.vaddr == 0x12000)
        );
        assert!(matches!(
            page_misfit(&i, 65536),
            Some(PageMisfit::Offset(_))
        ));
        // The same layout with 64K alignment (what arm64 toolchains emit) always fits.
        let i = info_with(vec![
            load(0, 0, 0x800, 0x10000, R),
            load(0x10000, 0x10000, 0x800, 0x10000, RW),
        ]);
        assert_eq!(page_misfit(&i, 65536), None);
        // Code followed by read-only data in the same 16K page: the data's mapping takes
        // execute away from the code's tail.
        let i = info_with(vec![
            load(0x1000, 0x1000, 0x2000, 0x1000, RX),
            load(0x3000, 0x3000, 0x100, 0x1000, R),
        ]);
        assert_eq!(page_misfit(&i, 4096), None);
        assert!(
            matches!(page_misfit(&i, 16384), Some(PageMisfit::SharedPage(a, b)) if a.flags == RX && b.flags == R)
        );
        // Read-only headers followed by code: the later mapping only adds permissions.
        let i = info_with(vec![
            load(0, 0, 0x100, 0x1000, R),
            load(0x1000, 0x1000, 0x100, 0x1000, RX),
        ]);
        assert_eq!(page_misfit(&i, 16384), None);
        // Not a power of two: nothing is claimed.
        let i = info_with(vec![load(0, 0x1000, 0x10, 0x1000, R)]);
        assert_eq!(page_misfit(&i, 0), None);
        assert_eq!(page_misfit(&i, 12288), None);
        assert!(matches!(page_misfit(&i, 8192), Some(PageMisfit::Offset(_))));
        // Extreme values do not overflow.
        let i = info_with(vec![
            load(u64::MAX, 0, u64::MAX, 0, RX),
            load(0, u64::MAX, u64::MAX, 0, R),
        ]);
        let _ = page_misfit(&i, 1 << 16);
    }

    #[test]
    fn segments_and_file_offsets() {
        let mut o = crate::inspect::dynamic::build::Obj::lib(&["liba.so"]);
        o.data_delta = 0x1000;
        let bytes = o.build();
        let info = parse_all(&bytes);
        let loads: Vec<_> = info
            .segments
            .iter()
            .filter(|s| s.p_type == PT_LOAD)
            .collect();
        assert_eq!(loads.len(), 2);
        assert!(info.segment(PT_DYNAMIC).is_some());
        assert_eq!(info.file_offset(0x400), Some(0x400));
        assert_eq!(info.file_offset(0x2000), Some(0x1000));
        assert_eq!(
            info.file_offset(0x1000),
            None,
            "a hole between the segments"
        );
        assert_eq!(info.file_offset(u64::MAX), None);
    }

    fn elf_prefix() -> impl Strategy<Value = Vec<u8>> {
        (any::<bool>(), any::<bool>(), any::<u16>(), any::<u16>()).prop_map(
            |(elf64, big, e_type, phnum)| {
                let mut s = Spec::new(elf64, big, EM_X86_64);
                s.e_type = if e_type % 2 == 0 { ET_DYN } else { e_type };
                s.phnum = Some(phnum % 8);
                s.build()
            },
        )
    }

    proptest! {
        #[test]
        fn never_panics_on_arbitrary_bytes(
            bytes in proptest::collection::vec(any::<u8>(), 0..2048),
            size in any::<u64>(),
            cut in 0usize..2048,
        ) {
            let liar = Liar { data: bytes.clone(), size };
            let head = &bytes[..cut.min(bytes.len())];
            if let Some(info) = parse(head, &liar) {
                let _ = describe(&info);
                let _ = x86_isa_needed(&info, head, &liar);
                let _ = page_misfit(&info, 16384);
                let _ = info.file_offset(size);
            }
        }

        #[test]
        fn never_panics_and_reads_are_bounded(
            prefix in elf_prefix(),
            tail in proptest::collection::vec(any::<u8>(), 0..1024),
            size in any::<u64>(),
            limit in any::<u64>(),
        ) {
            let mut bytes = prefix;
            bytes.extend_from_slice(&tail);
            let liar = Liar { data: bytes.clone(), size };
            let counting = Counting::new(&liar);
            let head = &bytes[..bytes.len().min(64)];
            let info = parse_with_limit(head, &counting, limit);
            prop_assert!(info.is_some());
            if let Some(info) = info {
                let _ = describe(&info);
            }
            // Rest of the header, one phdr table, one PT_INTERP.
            prop_assert!(counting.bytes.get() <= 64 + MAX_PHDR_TABLE + PATH_MAX);
        }
    }
}
