//! Facts about the host that decide what the kernel can exec: the native machine, the compat
//! machines it allows, and binfmt_misc; and what decides whether the program survives the
//! moments right after exec: the kernel's page size and the CPU's x86-64 ISA level. All of it
//! sits behind [`Host`] so the checks can be tested as if on another host (an arm64 one with
//! 16K pages, a host without IA32 emulation, an x86-64-v2 CPU, a fake binfmt_misc tree).

pub mod binfmt;

use std::cell::OnceCell;
use std::path::PathBuf;

use crate::inspect::elf::{Class, Endian};

/// ELF e_machine values used here (from elf.h).
pub mod em {
    /// Intel 80386.
    pub const I386: u16 = 3;
    /// PowerPC 64.
    pub const PPC64: u16 = 21;
    /// IBM S/390.
    pub const S390: u16 = 22;
    /// ARM 32-bit.
    pub const ARM: u16 = 40;
    /// AMD x86-64.
    pub const X86_64: u16 = 62;
    /// ARM 64-bit.
    pub const AARCH64: u16 = 183;
    /// RISC-V.
    pub const RISCV: u16 = 243;
    /// LoongArch.
    pub const LOONGARCH: u16 = 258;
}

/// One (class, byte order, machine) triple the kernel's ELF loaders accept.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ElfTarget {
    /// 32 or 64 bit.
    pub class: Class,
    /// Byte order.
    pub endian: Endian,
    /// e_machine.
    pub machine: u16,
}

/// What this host can exec natively.
#[derive(Clone, Debug)]
pub struct Host {
    /// The machine as `uname -m` says it (`x86_64`, `aarch64`).
    pub machine: String,
    /// The triples binfmt_elf accepts.
    pub native: Vec<ElfTarget>,
    /// The triple compat_binfmt_elf would accept (i386 on x86_64, arm on arm64), if any.
    pub compat_target: Option<ElfTarget>,
    /// Whether the kernel allows it, and why not: probed on first use only (it reads the
    /// kernel's command line and config), since most files are native.
    compat: OnceCell<(bool, Option<String>)>,
    /// Where binfmt_misc is read from.
    pub binfmt_root: PathBuf,
    binfmt: OnceCell<binfmt::State>,
    /// The kernel's page size in bytes.
    pub page_size: u64,
    /// The CPU's x86-64 ISA level as glibc computes it (1 baseline to 4 for x86-64-v4), or
    /// `None` when unknown or not an x86-64 host: read from /proc/cpuinfo on first use only.
    isa_level: OnceCell<Option<u8>>,
}

const fn t(class: Class, endian: Endian, machine: u16) -> ElfTarget {
    ElfTarget {
        class,
        endian,
        machine,
    }
}

/// The native triple of a machine name, and its usual compat triple.
fn targets_for(machine: &str) -> (Vec<ElfTarget>, Option<ElfTarget>) {
    use Class::{Elf32, Elf64};
    use Endian::{Big, Little};
    match machine {
        "x86_64" => (
            vec![t(Elf64, Little, em::X86_64)],
            Some(t(Elf32, Little, em::I386)),
        ),
        "i386" | "i486" | "i586" | "i686" => (vec![t(Elf32, Little, em::I386)], None),
        "aarch64" => (
            vec![t(Elf64, Little, em::AARCH64)],
            Some(t(Elf32, Little, em::ARM)),
        ),
        "aarch64_be" => (
            vec![t(Elf64, Big, em::AARCH64)],
            Some(t(Elf32, Big, em::ARM)),
        ),
        m if m.starts_with("armv") || m == "arm" => (vec![t(Elf32, Little, em::ARM)], None),
        "ppc64le" => (vec![t(Elf64, Little, em::PPC64)], None),
        "ppc64" => (vec![t(Elf64, Big, em::PPC64)], None),
        "s390x" => (vec![t(Elf64, Big, em::S390)], Some(t(Elf32, Big, em::S390))),
        "riscv64" => (vec![t(Elf64, Little, em::RISCV)], None),
        "loongarch64" => (vec![t(Elf64, Little, em::LOONGARCH)], None),
        _ => (Vec::new(), None),
    }
}

impl Host {
    /// A host with the given machine name; `compat` says whether the usual compat machine is
    /// allowed (IA32 emulation on x86_64, AArch32 EL0 on arm64).
    pub fn with_machine(machine: &str, compat: bool, binfmt_root: PathBuf) -> Host {
        let (native, compat_target) = targets_for(machine);
        Host {
            machine: machine.to_string(),
            native,
            compat_target,
            compat: OnceCell::from((compat, None)),
            binfmt_root,
            binfmt: OnceCell::new(),
            page_size: 4096,
            isa_level: OnceCell::from(None),
        }
    }

    /// This host with pages of `bytes` bytes (arm64 kernels use 4K, 16K or 64K).
    pub fn with_page_size(mut self, bytes: u64) -> Host {
        self.page_size = bytes;
        self
    }

    /// This host with a CPU of x86-64 ISA `level` (1 baseline to 4 for x86-64-v4; `None`:
    /// unknown, so the ISA level is not checked).
    pub fn with_isa_level(mut self, level: Option<u8>) -> Host {
        self.isa_level = OnceCell::from(level);
        self
    }

    /// The CPU's x86-64 ISA level, when known (see [`isa_level_from_cpuinfo`]).
    pub fn isa_level(&self) -> Option<u8> {
        *self.isa_level.get_or_init(|| {
            if self.machine != "x86_64" {
                return None;
            }
            // The flags line of the first processor lies in the first few KiB.
            let mut buf = vec![0u8; 8 * 1024];
            let n = std::fs::File::open("/proc/cpuinfo")
                .map(|f| crate::inspect::elf::read_full(&f, &mut buf, 0))
                .unwrap_or(0);
            buf.truncate(n);
            isa_level_from_cpuinfo(&String::from_utf8_lossy(&buf))
        })
    }

    /// The real host.
    pub fn detect(binfmt_root: PathBuf) -> Host {
        let machine = nix::sys::utsname::uname()
            .map(|u| u.machine().to_string_lossy().into_owned())
            .unwrap_or_else(|_| std::env::consts::ARCH.to_string());
        let (native, compat_target) = targets_for(&machine);
        Host {
            machine,
            native,
            compat_target,
            compat: OnceCell::new(),
            binfmt_root,
            binfmt: OnceCell::new(),
            page_size: nix::unistd::sysconf(nix::unistd::SysconfVar::PAGE_SIZE)
                .ok()
                .flatten()
                .and_then(|n| u64::try_from(n).ok())
                .unwrap_or(4096),
            isa_level: OnceCell::new(),
        }
    }

    fn compat(&self) -> &(bool, Option<String>) {
        self.compat.get_or_init(|| compat_allowed(&self.machine))
    }

    /// Why the compat machine is not allowed, when it is not.
    pub fn compat_note(&self) -> Option<String> {
        self.compat().1.clone()
    }

    /// binfmt_misc, read once on first use.
    pub fn binfmt(&self) -> &binfmt::State {
        self.binfmt.get_or_init(|| binfmt::load(&self.binfmt_root))
    }

    /// Whether binfmt_elf takes this triple without help.
    pub fn runs_natively(
        &self,
        class: Option<Class>,
        endian: Option<Endian>,
        machine: u16,
    ) -> bool {
        let is = |n: &ElfTarget| {
            Some(n.class) == class && Some(n.endian) == endian && n.machine == machine
        };
        self.native.iter().any(is)
            || (self.compat_target.as_ref().is_some_and(is) && self.compat().0)
    }
}

/// The x86-64 ISA level of the CPU described by /proc/cpuinfo (its first `flags` line), as
/// glibc computes it for the loader's check (sysdeps/x86/get-isa-level.h `get_isa_level`):
/// 1 for x86-64-baseline, 2 with CMPXCHG16B, LAHF/SAHF, POPCNT, SSE3, SSSE3, SSE4.1 and SSE4.2,
/// 3 with AVX, AVX2, BMI1, BMI2, F16C, FMA, LZCNT and MOVBE, 4 with AVX512F, BW, CD, DQ and VL.
/// The kernel lists only what it enabled (no `avx` without XSAVE support), which is what glibc's
/// "usable" means. `Some(0)` without even the baseline, `None` without a flags line.
pub fn isa_level_from_cpuinfo(text: &str) -> Option<u8> {
    let flags: Vec<&str> = text
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            (k.trim() == "flags").then_some(v)
        })?
        .split_whitespace()
        .collect();
    let has = |names: &[&str]| names.iter().all(|n| flags.contains(n));
    // /proc/cpuinfo names: pni is SSE3, cx16 CMPXCHG16B, lahf_lm LAHF64/SAHF64, abm LZCNT.
    const BASELINE: &[&str] = &["cmov", "cx8", "fpu", "fxsr", "mmx", "sse", "sse2"];
    const V2: &[&str] = &[
        "cx16", "lahf_lm", "popcnt", "pni", "ssse3", "sse4_1", "sse4_2",
    ];
    const V3: &[&str] = &["avx", "avx2", "bmi1", "bmi2", "f16c", "fma", "abm", "movbe"];
    const V4: &[&str] = &["avx512f", "avx512bw", "avx512cd", "avx512dq", "avx512vl"];
    let mut level = 0;
    for set in [BASELINE, V2, V3, V4] {
        if !has(set) {
            break;
        }
        level += 1;
    }
    Some(level)
}

/// PER_LINUX32 from <linux/personality.h> (the libc crate exports it on some targets only).
const PER_LINUX32: libc::c_ulong = 0x0008;

/// Whether the compat machine is allowed, and why not.
fn compat_allowed(machine: &str) -> (bool, Option<String>) {
    match machine {
        "x86_64" => {
            // Linux 6.7+: `ia32_emulation=` on the command line (arch/x86/entry/common.c).
            let cmdline = std::fs::read_to_string("/proc/cmdline").unwrap_or_default();
            for word in cmdline.split_whitespace() {
                if let Some(v) = word.strip_prefix("ia32_emulation=") {
                    let off = matches!(v, "0" | "n" | "N" | "no" | "off" | "false");
                    if off {
                        return (false, Some(format!("the kernel was booted with {word}")));
                    }
                    return (true, None);
                }
            }
            let release = nix::sys::utsname::uname()
                .map(|u| u.release().to_string_lossy().into_owned())
                .unwrap_or_default();
            let config =
                std::fs::read_to_string(format!("/boot/config-{release}")).unwrap_or_default();
            if config
                .lines()
                .any(|l| l == "# CONFIG_IA32_EMULATION is not set")
            {
                return (
                    false,
                    Some("the kernel is built without CONFIG_IA32_EMULATION".into()),
                );
            }
            if config
                .lines()
                .any(|l| l == "CONFIG_IA32_EMULATION_DEFAULT_DISABLED=y")
            {
                return (
                    false,
                    Some("the kernel disables IA32 emulation by default".into()),
                );
            }
            (true, None)
        }
        "aarch64" | "aarch64_be" => {
            // personality(PER_LINUX32) fails with EINVAL when the CPU has no AArch32 EL0
            // (arch/arm64/kernel/sys.c arm64_personality); restore the old value at once.
            // SAFETY: personality only changes this process's execution domain and is restored.
            unsafe {
                let old = libc::personality(0xffff_ffff);
                let ok = libc::personality(PER_LINUX32) != -1;
                if old != -1 {
                    libc::personality(old as libc::c_ulong);
                }
                if ok {
                    (true, None)
                } else {
                    (
                        false,
                        Some("this CPU cannot run 32-bit arm code (no AArch32 EL0)".into()),
                    )
                }
            }
        }
        _ => (false, None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn x86_64_runs_i386_only_with_compat() {
        let h = Host::with_machine("x86_64", true, PathBuf::from("/nonexistent"));
        assert!(h.runs_natively(Some(Class::Elf64), Some(Endian::Little), em::X86_64));
        assert!(h.runs_natively(Some(Class::Elf32), Some(Endian::Little), em::I386));
        assert!(!h.runs_natively(Some(Class::Elf64), Some(Endian::Little), em::AARCH64));
        let h = Host::with_machine("x86_64", false, PathBuf::from("/nonexistent"));
        assert!(!h.runs_natively(Some(Class::Elf32), Some(Endian::Little), em::I386));
    }

    #[test]
    fn arm64_host() {
        let h = Host::with_machine("aarch64", true, PathBuf::from("/nonexistent"));
        assert!(h.runs_natively(Some(Class::Elf64), Some(Endian::Little), em::AARCH64));
        assert!(h.runs_natively(Some(Class::Elf32), Some(Endian::Little), em::ARM));
        assert!(!h.runs_natively(Some(Class::Elf64), Some(Endian::Little), em::X86_64));
        // Byte order matters: a big-endian aarch64 binary does not run on aarch64 (LE).
        assert!(!h.runs_natively(Some(Class::Elf64), Some(Endian::Big), em::AARCH64));
    }

    #[test]
    fn isa_levels_from_cpuinfo() {
        let base = "fpu cx8 cmov mmx fxsr sse sse2";
        let v2 = format!("{base} pni ssse3 cx16 sse4_1 sse4_2 popcnt lahf_lm");
        let v3 = format!("{v2} fma movbe xsave avx f16c abm bmi1 avx2 bmi2");
        let v4 = format!("{v3} avx512f avx512dq avx512cd avx512bw avx512vl");
        let info = |flags: &str| {
            format!(
                "processor\t: 0\nvendor_id\t: x\nflags\t\t: {flags}\nbugs\t: y\n\nprocessor\t: 1\nflags\t: \n"
            )
        };
        assert_eq!(isa_level_from_cpuinfo(&info(base)), Some(1));
        assert_eq!(isa_level_from_cpuinfo(&info(&v2)), Some(2));
        assert_eq!(isa_level_from_cpuinfo(&info(&v3)), Some(3));
        assert_eq!(isa_level_from_cpuinfo(&info(&v4)), Some(4));
        // One flag short of a level stops there (no LZCNT: v2; AVX512 without VL: v3).
        assert_eq!(
            isa_level_from_cpuinfo(&info(&v3.replace(" abm", ""))),
            Some(2)
        );
        assert_eq!(
            isa_level_from_cpuinfo(&info(&v4.replace(" avx512vl", ""))),
            Some(3)
        );
        // A higher level's flags without the lower ones count for nothing.
        assert_eq!(isa_level_from_cpuinfo(&info("avx512f avx2")), Some(0));
        assert_eq!(isa_level_from_cpuinfo("model name\t: arm\n"), None);
        assert_eq!(isa_level_from_cpuinfo(""), None);
    }

    #[test]
    fn the_seam_sets_page_size_and_isa_level() {
        let h = Host::with_machine("aarch64", true, PathBuf::from("/nonexistent"));
        assert_eq!(h.page_size, 4096);
        assert_eq!(h.isa_level(), None);
        let h = h.with_page_size(16384).with_isa_level(Some(2));
        assert_eq!(h.page_size, 16384);
        assert_eq!(h.isa_level(), Some(2));
        let real = Host::detect(PathBuf::from("/nonexistent"));
        assert!(real.page_size.is_power_of_two() && real.page_size >= 4096);
        if real.machine == "x86_64" {
            let level = real.isa_level();
            assert!(level.is_some_and(|l| l >= 1), "{level:?}");
        }
    }

    #[test]
    fn detect_finds_this_machine() {
        let h = Host::detect(PathBuf::from("/nonexistent"));
        assert!(!h.native.is_empty(), "no native triple for {}", h.machine);
    }
}
