//! File capabilities (`security.capability`) and whether exec can grant them.
//!
//! security/commoncap.c: `get_vfs_caps_from_disk` reads the xattr (revision 2: 20 bytes,
//! revision 3: 24 bytes with a root uid); `bprm_caps_from_vfs_caps` computes the new permitted
//! set as `(fP & bounding) | (fI & pI)` and, when the file's effective bit is set and some
//! capability of fP is not in it, returns -EPERM ("insufficient to execute correctly"). This
//! holds for uid 0 too.

use std::os::fd::AsRawFd;

/// The capabilities stored on a file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FileCaps {
    /// fP, as a 64-bit mask.
    pub permitted: u64,
    /// fI.
    pub inheritable: u64,
    /// The effective bit.
    pub effective: bool,
    /// Revision 3 root uid, when present.
    pub rootid: Option<u32>,
}

const VFS_CAP_REVISION_MASK: u32 = 0xFF00_0000;
const VFS_CAP_REVISION_1: u32 = 0x0100_0000;
const VFS_CAP_REVISION_2: u32 = 0x0200_0000;
const VFS_CAP_REVISION_3: u32 = 0x0300_0000;
const VFS_CAP_FLAGS_EFFECTIVE: u32 = 0x0000_0001;

fn le32(b: &[u8], at: usize) -> Option<u32> {
    let s = b.get(at..at.checked_add(4)?)?;
    Some(u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
}

/// Parse the xattr value; `None` when it is not one the kernel accepts.
pub fn parse(v: &[u8]) -> Option<FileCaps> {
    let magic = le32(v, 0)?;
    let effective = magic & VFS_CAP_FLAGS_EFFECTIVE != 0;
    let (words, rootid) = match magic & VFS_CAP_REVISION_MASK {
        VFS_CAP_REVISION_1 if v.len() == 12 => (1, None),
        VFS_CAP_REVISION_2 if v.len() == 20 => (2, None),
        VFS_CAP_REVISION_3 if v.len() == 24 => (2, Some(le32(v, 20)?)),
        _ => return None,
    };
    let mut permitted = u64::from(le32(v, 4)?);
    let mut inheritable = u64::from(le32(v, 8)?);
    if words == 2 {
        permitted |= u64::from(le32(v, 12)?) << 32;
        inheritable |= u64::from(le32(v, 16)?) << 32;
    }
    Some(FileCaps {
        permitted,
        inheritable,
        effective,
        rootid,
    })
}

/// Read `security.capability` from an open file (bounded: the value is at most 24 bytes).
pub fn read(file: &std::fs::File) -> Option<FileCaps> {
    let mut buf = [0u8; 64];
    let name = c"security.capability";
    // SAFETY: the buffer and its length are valid for the call; the fd is open.
    let n = unsafe {
        libc::fgetxattr(
            file.as_raw_fd(),
            name.as_ptr(),
            buf.as_mut_ptr().cast(),
            buf.len(),
        )
    };
    let n = usize::try_from(n).ok()?;
    parse(buf.get(..n)?)
}

/// CAP_VALID_MASK of the running kernel, from /proc/sys/kernel/cap_last_cap.
pub fn valid_mask() -> u64 {
    let last = std::fs::read_to_string("/proc/sys/kernel/cap_last_cap")
        .ok()
        .and_then(|s| s.trim().parse::<u32>().ok())
        .unwrap_or(40)
        .min(63);
    if last == 63 {
        u64::MAX
    } else {
        (1u64 << (last + 1)) - 1
    }
}

/// A capability set from names (`CAP_NET_ADMIN`); unknown names are left out.
pub fn mask_of(names: &[String]) -> u64 {
    names
        .iter()
        .filter_map(|n| n.parse::<caps::Capability>().ok())
        .fold(0u64, |m, c| m | c.bitmask())
}

/// Names of the capabilities in a mask.
pub fn names_of(mask: u64) -> Vec<String> {
    caps::all()
        .into_iter()
        .filter(|c| mask & c.bitmask() != 0)
        .map(|c| c.to_string())
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect()
}

/// The file capabilities exec cannot grant (empty: exec succeeds).
pub fn missing(fc: &FileCaps, bounding: u64, inheritable: u64) -> u64 {
    if !fc.effective {
        return 0;
    }
    let granted = (fc.permitted & bounding) | (fc.inheritable & inheritable);
    fc.permitted & !granted
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v2(perm: u64, inh: u64, eff: bool) -> Vec<u8> {
        let mut v = Vec::new();
        v.extend_from_slice(&(VFS_CAP_REVISION_2 | u32::from(eff)).to_le_bytes());
        v.extend_from_slice(&(perm as u32).to_le_bytes());
        v.extend_from_slice(&(inh as u32).to_le_bytes());
        v.extend_from_slice(&((perm >> 32) as u32).to_le_bytes());
        v.extend_from_slice(&((inh >> 32) as u32).to_le_bytes());
        v
    }

    #[test]
    fn parses_v2_and_v3() {
        let net_admin = caps::Capability::CAP_NET_ADMIN.bitmask();
        let fc = parse(&v2(net_admin, 0, true)).unwrap();
        assert_eq!(fc.permitted, net_admin);
        assert!(fc.effective);
        let mut v3 = v2(net_admin, 0, false);
        v3[3] = 0x03;
        v3.extend_from_slice(&1000u32.to_le_bytes());
        let fc = parse(&v3).unwrap();
        assert_eq!(fc.rootid, Some(1000));
        assert!(!fc.effective);
    }

    #[test]
    fn rejects_bad_sizes_and_revisions() {
        assert_eq!(parse(&[]), None);
        assert_eq!(parse(&v2(1, 0, true)[..19]), None);
        let mut bad = v2(1, 0, true);
        bad[3] = 0x09;
        assert_eq!(parse(&bad), None);
    }

    #[test]
    fn missing_follows_commoncap() {
        let na = caps::Capability::CAP_NET_ADMIN.bitmask();
        let chown = caps::Capability::CAP_CHOWN.bitmask();
        let fc = parse(&v2(na, 0, true)).unwrap();
        assert_eq!(missing(&fc, chown, 0), na);
        assert_eq!(missing(&fc, chown | na, 0), 0);
        // Without the effective bit nothing fails.
        let fc = parse(&v2(na, 0, false)).unwrap();
        assert_eq!(missing(&fc, 0, 0), 0);
        // fI & pI also grants.
        let fc = parse(&v2(na, na, true)).unwrap();
        assert_eq!(missing(&fc, 0, na), 0);
    }

    #[test]
    fn the_valid_mask_covers_known_capabilities() {
        let m = valid_mask();
        assert_ne!(m & caps::Capability::CAP_SYS_ADMIN.bitmask(), 0);
        assert_ne!(m & caps::Capability::CAP_CHOWN.bitmask(), 0);
    }

    #[test]
    fn names_round_trip() {
        let m = mask_of(&["CAP_NET_ADMIN".into(), "CAP_BOGUS".into()]);
        assert_eq!(names_of(m), ["CAP_NET_ADMIN"]);
    }
}
