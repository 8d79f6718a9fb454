//! Permission as the kernel decides it for the container's process: `generic_permission` in
//! fs/namei.c (owner, group or other bits; CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH through
//! `capable_wrt_inode_uidgid`, which needs the inode's owner mapped into the user namespace),
//! for execute on a regular file and search on a directory.

use crate::spec::{IdMap, SpecView};

/// The identity and DAC capabilities of `process.user` when runc calls execve.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct User {
    /// uid inside the container.
    pub uid: u32,
    /// gid inside the container.
    pub gid: u32,
    /// Supplementary groups.
    pub groups: Vec<u32>,
    /// CAP_DAC_OVERRIDE in the effective set.
    pub dac_override: bool,
    /// CAP_DAC_READ_SEARCH in the effective set.
    pub dac_read_search: bool,
    /// User-namespace mappings for uids (empty: none, ids are the host's).
    pub uid_map: Vec<IdMap>,
    /// User-namespace mappings for gids.
    pub gid_map: Vec<IdMap>,
}

/// The id the kernel shows for unmapped owners.
const OVERFLOW_ID: u32 = 65534;

fn map_to_container(maps: &[IdMap], host: u32) -> Option<u32> {
    maps.iter().find_map(|m| {
        let off = host.checked_sub(m.host)?;
        (off < m.size)
            .then(|| m.container.checked_add(off))
            .flatten()
    })
}

impl User {
    /// The user of the spec's process. Without `process.capabilities` the runtime leaves its
    /// own capabilities in place, which root keeps and other users lose at setuid.
    pub fn from_spec(spec: &SpecView) -> User {
        let has = |name: &str| match &spec.caps {
            Some(c) => c.effective.iter().any(|n| n == name),
            None => spec.uid == 0,
        };
        let userns = spec.user_namespace && !spec.uid_mappings.is_empty();
        User {
            uid: spec.uid,
            gid: spec.gid,
            groups: spec.additional_gids.clone(),
            dac_override: has("CAP_DAC_OVERRIDE"),
            dac_read_search: has("CAP_DAC_READ_SEARCH"),
            uid_map: if userns {
                spec.uid_mappings.clone()
            } else {
                Vec::new()
            },
            gid_map: if userns {
                spec.gid_mappings.clone()
            } else {
                Vec::new()
            },
        }
    }

    /// An inode's owner as the container sees it, and whether it is mapped at all.
    fn owner(&self, uid: u32, gid: u32) -> (u32, u32, bool) {
        if self.uid_map.is_empty() {
            return (uid, gid, true);
        }
        let u = map_to_container(&self.uid_map, uid);
        let g = if self.gid_map.is_empty() {
            Some(gid)
        } else {
            map_to_container(&self.gid_map, gid)
        };
        (
            u.unwrap_or(OVERFLOW_ID),
            g.unwrap_or(OVERFLOW_ID),
            u.is_some() && g.is_some(),
        )
    }

    /// The permission bits that apply to this user (owner, group or other), shifted to 0o7.
    pub fn class_bits(&self, mode: u32, uid: u32, gid: u32) -> u32 {
        let (uid, gid, _) = self.owner(uid, gid);
        if self.uid == uid {
            (mode >> 6) & 7
        } else if self.gid == gid || self.groups.contains(&gid) {
            (mode >> 3) & 7
        } else {
            mode & 7
        }
    }

    /// May this user search (traverse) the directory?
    pub fn may_search(&self, mode: u32, uid: u32, gid: u32) -> bool {
        if self.class_bits(mode, uid, gid) & 1 != 0 {
            return true;
        }
        let (_, _, mapped) = self.owner(uid, gid);
        mapped && (self.dac_read_search || self.dac_override)
    }

    /// May this user read the file (an interpreter opening its script)?
    pub fn may_read(&self, mode: u32, uid: u32, gid: u32) -> bool {
        if self.class_bits(mode, uid, gid) & 4 != 0 {
            return true;
        }
        let (_, _, mapped) = self.owner(uid, gid);
        mapped && (self.dac_read_search || self.dac_override)
    }

    /// Whether a host uid is root of the container's user namespace (without one, host root).
    pub fn is_container_root(&self, host_uid: u32) -> bool {
        if self.uid_map.is_empty() {
            host_uid == 0
        } else {
            map_to_container(&self.uid_map, host_uid) == Some(0)
        }
    }

    /// May this user execute the regular file? CAP_DAC_OVERRIDE needs at least one x bit.
    pub fn may_exec(&self, mode: u32, uid: u32, gid: u32) -> bool {
        if self.class_bits(mode, uid, gid) & 1 != 0 {
            return true;
        }
        let (_, _, mapped) = self.owner(uid, gid);
        mapped && self.dac_override && mode & 0o111 != 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(uid: u32, gid: u32, dac: bool) -> User {
        User {
            uid,
            gid,
            groups: vec![],
            dac_override: dac,
            dac_read_search: false,
            uid_map: vec![],
            gid_map: vec![],
        }
    }

    #[test]
    fn owner_group_other() {
        let u = user(1000, 1000, false);
        assert!(u.may_exec(0o700, 1000, 0));
        assert!(!u.may_exec(0o700, 0, 0));
        assert!(u.may_exec(0o070, 0, 1000));
        // The owner class decides alone: owner without x is denied even when other has x.
        assert!(!u.may_exec(0o607, 1000, 0));
        assert!(u.may_exec(0o001, 0, 0));
        let mut g = user(1000, 1000, false);
        g.groups = vec![27];
        assert!(g.may_exec(0o010, 0, 27));
    }

    #[test]
    fn root_needs_dac_override_and_one_x_bit() {
        assert!(user(0, 0, true).may_exec(0o100, 1000, 1000));
        assert!(!user(0, 0, true).may_exec(0o644, 1000, 1000));
        assert!(!user(0, 0, false).may_exec(0o700, 1000, 1000));
        assert!(user(0, 0, true).may_search(0o700, 1000, 1000));
    }

    #[test]
    fn dac_read_search_allows_search_only() {
        let mut u = user(1000, 1000, false);
        u.dac_read_search = true;
        assert!(u.may_search(0o700, 0, 0));
        assert!(!u.may_exec(0o700, 0, 0));
    }

    #[test]
    fn user_namespace_maps_owners_and_unmapped_owners_defeat_caps() {
        let mut u = user(0, 0, true);
        u.uid_map = vec![IdMap {
            container: 0,
            host: 100_000,
            size: 65536,
        }];
        u.gid_map = vec![IdMap {
            container: 0,
            host: 100_000,
            size: 65536,
        }];
        // Host uid 100000 is container root: owner bits apply.
        assert!(u.may_exec(0o700, 100_000, 100_000));
        // Host root is unmapped: other bits only, and CAP_DAC_OVERRIDE does not apply.
        assert!(!u.may_exec(0o700, 0, 0));
        assert!(u.may_exec(0o701, 0, 0));
    }

    #[test]
    fn read_permission_and_container_root() {
        let u = user(1000, 1000, false);
        assert!(!u.may_read(0o711, 0, 0));
        assert!(u.may_read(0o744, 0, 0));
        assert!(user(0, 0, true).may_read(0o000, 5, 5));
        assert!(u.is_container_root(0));
        let mut n = user(0, 0, true);
        n.uid_map = vec![IdMap {
            container: 0,
            host: 100_000,
            size: 10,
        }];
        assert!(n.is_container_root(100_000));
        assert!(!n.is_container_root(0));
    }

    #[test]
    fn spec_without_capabilities() {
        let spec = SpecView {
            uid: 0,
            ..SpecView::default()
        };
        assert!(User::from_spec(&spec).dac_override);
        let spec = SpecView {
            uid: 5,
            ..SpecView::default()
        };
        assert!(!User::from_spec(&spec).dac_override);
    }
}
