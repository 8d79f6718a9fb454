//! The merged file tree of an image: every layer's entries applied in layer order, the way the
//! engines' snapshotters stack them, with metadata only.
//!
//! This module owns the layer semantics (OCI image-spec `layer.md`, as containerd's and moby's
//! appliers implement them):
//!
//! - entry paths are cleaned lexically (`./`, `//`, a leading `/`); a path that climbs above the
//!   root with `..` is refused, as moby refuses it ("breakout");
//! - a missing parent directory is created implicitly; a parent that is not a directory in a
//!   lower layer is replaced by one (the layer's own directory hides it in the overlay);
//! - an entry replaces what a lower layer had at its path; a directory over a directory keeps
//!   the lower children (the overlay merges them);
//! - `.wh.NAME` removes `NAME` as lower layers left it; `.wh..wh..opq` hides everything lower
//!   layers put in its directory; other `.wh..wh.` names (aufs bookkeeping) are ignored; a
//!   whiteout never removes an entry of its own layer;
//! - a hard link names a regular file already in the tree and shares its data.
//!
//! Regular files record where their data lies (layer and offset in that layer's tar stream),
//! never the data. Sizes are bounded: [`MAX_NODES`] entries, [`MAX_DEPTH`] levels, names of at
//! most 255 bytes.

use std::collections::BTreeMap;

use super::tar::{Entry, Kind};

/// Index of a node in the tree.
pub type NodeId = u32;

/// Most nodes a tree may allocate (live or replaced): a bound on memory whatever the layers
/// hold.
pub const MAX_NODES: usize = 500_000;
/// Deepest directory nesting accepted.
pub const MAX_DEPTH: usize = 256;
/// Longest name of one path component (`NAME_MAX`).
pub const NAME_MAX: usize = 255;

/// The root node.
pub const ROOT: NodeId = 0;

/// Where a regular file's data lies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Src {
    /// Index of the layer.
    pub layer: u16,
    /// Offset of the data in that layer's (uncompressed) tar stream.
    pub offset: u64,
}

/// What a node is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NodeKind {
    /// A directory and its children by name.
    Dir(BTreeMap<Vec<u8>, NodeId>),
    /// A regular file.
    File {
        /// Size in bytes.
        size: u64,
        /// Where its data lies.
        src: Src,
    },
    /// A symbolic link and its target as stored.
    Symlink(Vec<u8>),
    /// A FIFO.
    Fifo,
    /// A character device (the device number is not kept).
    Char,
    /// A block device (the device number is not kept).
    Block,
}

/// One file, directory or link.
#[derive(Debug, Clone)]
pub struct Node {
    /// The component name (empty for the root).
    pub name: Vec<u8>,
    /// The parent directory (the root is its own parent).
    pub parent: NodeId,
    /// The last layer that wrote this node or an entry below it.
    pub layer: u16,
    /// Permission bits (`& 0o7777`).
    pub mode: u32,
    /// Owner.
    pub uid: u32,
    /// Group.
    pub gid: u32,
    /// What it is.
    pub kind: NodeKind,
}

/// What [`Tree::apply`] did with an entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied {
    /// Added or replaced a node.
    Added,
    /// A whiteout or opaque marker took effect (or had nothing to remove).
    Whiteout,
    /// An entry type images do not use (kept out of the tree).
    Ignored,
}

/// The merged tree.
#[derive(Debug, Clone)]
pub struct Tree {
    nodes: Vec<Node>,
}

impl Default for Tree {
    fn default() -> Self {
        Tree::new()
    }
}

/// Splits a tar path into clean components.
///
/// # Errors
/// The path climbs above the root, a component is longer than [`NAME_MAX`], or it is nested
/// deeper than [`MAX_DEPTH`].
pub fn components(path: &[u8]) -> Result<Vec<&[u8]>, String> {
    let mut out: Vec<&[u8]> = Vec::new();
    for c in path.split(|b| *b == b'/') {
        match c {
            b"" | b"." => {}
            b".." => {
                if out.pop().is_none() {
                    return Err("it climbs out of the image root with ..".into());
                }
            }
            name if name.len() > NAME_MAX => {
                return Err(format!("a path component is longer than {NAME_MAX} bytes"));
            }
            name => out.push(name),
        }
    }
    if out.len() > MAX_DEPTH {
        return Err(format!("it is nested deeper than {MAX_DEPTH} directories"));
    }
    Ok(out)
}

impl Tree {
    /// A tree holding only the root directory (mode 0755, owned by root).
    pub fn new() -> Tree {
        Tree {
            nodes: vec![Node {
                name: Vec::new(),
                parent: ROOT,
                layer: 0,
                mode: 0o755,
                uid: 0,
                gid: 0,
                kind: NodeKind::Dir(BTreeMap::new()),
            }],
        }
    }

    /// The node with this id (the root for an unknown id).
    pub fn node(&self, id: NodeId) -> &Node {
        let i = usize::try_from(id).unwrap_or(0);
        // The root is created with the tree and never removed, so index 0 always exists.
        self.nodes.get(i).unwrap_or(&self.nodes[0])
    }

    fn node_mut(&mut self, id: NodeId) -> Option<&mut Node> {
        self.nodes.get_mut(usize::try_from(id).ok()?)
    }

    /// Nodes allocated so far (live and replaced).
    pub fn allocated(&self) -> usize {
        self.nodes.len()
    }

    /// The children of a directory node, in name order (empty for anything else).
    pub fn children(&self, id: NodeId) -> Vec<NodeId> {
        match &self.node(id).kind {
            NodeKind::Dir(c) => c.values().copied().collect(),
            _ => Vec::new(),
        }
    }

    fn child(&self, dir: NodeId, name: &[u8]) -> Option<NodeId> {
        match &self.node(dir).kind {
            NodeKind::Dir(c) => c.get(name).copied(),
            _ => None,
        }
    }

    /// The container path of a node (`/usr/bin/env`; `/` for the root).
    pub fn path_of(&self, id: NodeId) -> Vec<u8> {
        let mut parts: Vec<&[u8]> = Vec::new();
        let mut cur = id;
        // Parents always have lower ids than their children... except replaced nodes; the
        // depth bound keeps this finite either way.
        for _ in 0..=MAX_DEPTH {
            if cur == ROOT {
                break;
            }
            let n = self.node(cur);
            parts.push(&n.name);
            cur = n.parent;
        }
        let mut out = Vec::new();
        for p in parts.iter().rev() {
            out.push(b'/');
            out.extend_from_slice(p);
        }
        if out.is_empty() {
            out.push(b'/');
        }
        out
    }

    /// The node at a canonical container path, without following symlinks (the resolver's
    /// `Resolved::path` is canonical).
    pub fn lookup(&self, path: &[u8]) -> Option<NodeId> {
        let mut cur = ROOT;
        for c in path
            .split(|b| *b == b'/')
            .filter(|c| !c.is_empty() && *c != b".")
        {
            cur = self.child(cur, c)?;
        }
        Some(cur)
    }

    fn alloc(&mut self, node: Node) -> Result<NodeId, String> {
        if self.nodes.len() >= MAX_NODES {
            return Err(format!("the image has more than {MAX_NODES} entries"));
        }
        let id = NodeId::try_from(self.nodes.len())
            .map_err(|_| format!("the image has more than {MAX_NODES} entries"))?;
        self.nodes.push(node);
        Ok(id)
    }

    /// Puts `node` at `name` in `dir`, replacing (and dropping the subtree of) what was there.
    fn insert(&mut self, dir: NodeId, name: &[u8], mut node: Node) -> Result<NodeId, String> {
        node.parent = dir;
        node.name = name.to_vec();
        let id = self.alloc(node)?;
        if let Some(NodeKind::Dir(c)) = self.node_mut(dir).map(|n| &mut n.kind) {
            c.insert(name.to_vec(), id);
        }
        Ok(id)
    }

    fn detach(&mut self, dir: NodeId, name: &[u8]) {
        if let Some(NodeKind::Dir(c)) = self.node_mut(dir).map(|n| &mut n.kind) {
            c.remove(name);
        }
    }

    fn implicit_dir(layer: u16) -> Node {
        Node {
            name: Vec::new(),
            parent: ROOT,
            layer,
            mode: 0o755,
            uid: 0,
            gid: 0,
            kind: NodeKind::Dir(BTreeMap::new()),
        }
    }

    /// Walks (and creates) the directories of `comps`, marking them as written by `layer`.
    fn ensure_dirs(&mut self, comps: &[&[u8]], layer: u16) -> Result<NodeId, String> {
        let mut cur = ROOT;
        for c in comps {
            cur = match self.child(cur, c) {
                Some(id) if matches!(self.node(id).kind, NodeKind::Dir(_)) => {
                    if let Some(n) = self.node_mut(id) {
                        n.layer = n.layer.max(layer);
                    }
                    id
                }
                _ => self.insert(cur, c, Tree::implicit_dir(layer))?,
            };
        }
        Ok(cur)
    }

    /// Removes, below `dir`, everything lower layers than `layer` put there (an opaque
    /// directory).
    fn opaque(&mut self, dir: NodeId, layer: u16) {
        let mut stack = vec![dir];
        let mut steps = 0usize;
        while let Some(d) = stack.pop() {
            steps += 1;
            if steps > MAX_NODES {
                break;
            }
            let kids: Vec<(Vec<u8>, NodeId)> = match &self.node(d).kind {
                NodeKind::Dir(c) => c.iter().map(|(k, v)| (k.clone(), *v)).collect(),
                _ => continue,
            };
            for (name, id) in kids {
                let n = self.node(id);
                if n.layer < layer {
                    self.detach(d, &name);
                } else if matches!(n.kind, NodeKind::Dir(_)) {
                    stack.push(id);
                }
            }
        }
    }

    /// Applies one entry of layer `layer`.
    ///
    /// # Errors
    /// A path that [`components`] refuses, a hard link to something that is not a regular
    /// file in the tree, or more than [`MAX_NODES`] entries.
    pub fn apply(&mut self, layer: u16, e: &Entry) -> Result<Applied, String> {
        let comps = components(&e.path)?;
        let Some((leaf, dirs)) = comps.split_last() else {
            // The root itself ("./"): only its metadata.
            if e.kind == Kind::Dir
                && let Some(root) = self.node_mut(ROOT)
            {
                root.mode = e.mode;
                root.uid = e.uid;
                root.gid = e.gid;
            }
            return Ok(Applied::Ignored);
        };
        if let Some(rest) = leaf.strip_prefix(b".wh.") {
            let parent = self.ensure_dirs(dirs, layer)?;
            if *leaf == b".wh..wh..opq" {
                self.opaque(parent, layer);
            } else if rest.starts_with(b".wh.") {
                // aufs bookkeeping (.wh..wh.plnk, .wh..wh.aufs): not content.
            } else if let Some(id) = self.child(parent, rest)
                && self.node(id).layer < layer
            {
                self.detach(parent, rest);
            }
            return Ok(Applied::Whiteout);
        }
        let kind = match e.kind {
            Kind::Dir => {
                let parent = self.ensure_dirs(dirs, layer)?;
                if let Some(id) = self.child(parent, leaf)
                    && matches!(self.node(id).kind, NodeKind::Dir(_))
                    && let Some(n) = self.node_mut(id)
                {
                    n.mode = e.mode;
                    n.uid = e.uid;
                    n.gid = e.gid;
                    n.layer = layer;
                    return Ok(Applied::Added);
                }
                NodeKind::Dir(BTreeMap::new())
            }
            Kind::File => NodeKind::File {
                size: e.size,
                src: Src {
                    layer,
                    offset: e.offset,
                },
            },
            Kind::Symlink => NodeKind::Symlink(e.link.clone()),
            Kind::Fifo => NodeKind::Fifo,
            Kind::Char => NodeKind::Char,
            Kind::Block => NodeKind::Block,
            Kind::HardLink => {
                let target = components(&e.link).map_err(|m| format!("its link target: {m}"))?;
                let mut cur = Some(ROOT);
                for c in &target {
                    cur = cur.and_then(|d| self.child(d, c));
                }
                let t = cur.map(|id| self.node(id).clone());
                let Some(t) = t.filter(|t| matches!(t.kind, NodeKind::File { .. })) else {
                    return Err(format!(
                        "it is a hard link to {}, which is not a regular file in the image",
                        crate::sanitize::escape_bytes(&e.link)
                    ));
                };
                let parent = self.ensure_dirs(dirs, layer)?;
                self.insert(parent, leaf, Node { layer, ..t })?;
                return Ok(Applied::Added);
            }
            Kind::Other(_) => return Ok(Applied::Ignored),
        };
        let parent = self.ensure_dirs(dirs, layer)?;
        self.insert(
            parent,
            leaf,
            Node {
                name: Vec::new(),
                parent,
                layer,
                mode: e.mode,
                uid: e.uid,
                gid: e.gid,
                kind,
            },
        )?;
        Ok(Applied::Added)
    }

    /// Every live node, parents before children (depth first, children in name order).
    pub fn walk(&self) -> Vec<NodeId> {
        let mut out = Vec::new();
        let mut stack = vec![ROOT];
        while let Some(id) = stack.pop() {
            out.push(id);
            if out.len() > MAX_NODES {
                break;
            }
            let mut kids = self.children(id);
            kids.reverse();
            stack.extend(kids);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn e(path: &str, kind: Kind, link: &str) -> Entry {
        Entry {
            path: path.as_bytes().to_vec(),
            link: link.as_bytes().to_vec(),
            kind,
            mode: 0o755,
            uid: 0,
            gid: 0,
            size: 3,
            offset: 512,
            header_at: 0,
        }
    }

    fn paths(t: &Tree) -> Vec<String> {
        t.walk()
            .into_iter()
            .map(|id| String::from_utf8_lossy(&t.path_of(id)).into_owned())
            .collect()
    }

    #[test]
    fn layers_stack_and_whiteouts_remove_lower_entries() {
        let mut t = Tree::new();
        t.apply(0, &e("./bin/", Kind::Dir, "")).unwrap();
        t.apply(0, &e("./bin/busybox", Kind::File, "")).unwrap();
        t.apply(0, &e("bin/sh", Kind::Symlink, "busybox")).unwrap();
        t.apply(0, &e("etc/passwd", Kind::File, "")).unwrap();
        t.apply(1, &e("bin/.wh.sh", Kind::File, "")).unwrap();
        t.apply(1, &e("/app/run", Kind::File, "")).unwrap();
        assert_eq!(
            paths(&t),
            [
                "/",
                "/app",
                "/app/run",
                "/bin",
                "/bin/busybox",
                "/etc",
                "/etc/passwd"
            ]
        );
        // An implicit parent is a 0755 directory.
        let app = t.lookup(b"/app").unwrap();
        assert_eq!(t.node(app).mode, 0o755);
        assert!(matches!(
            t.node(t.lookup(b"/app/run").unwrap()).kind,
            NodeKind::File {
                src: Src {
                    layer: 1,
                    offset: 512
                },
                ..
            }
        ));
    }

    #[test]
    fn an_opaque_directory_hides_lower_children_only() {
        let mut t = Tree::new();
        t.apply(0, &e("d/old", Kind::File, "")).unwrap();
        t.apply(0, &e("d/sub/x", Kind::File, "")).unwrap();
        t.apply(1, &e("d/new", Kind::File, "")).unwrap();
        t.apply(1, &e("d/sub/y", Kind::File, "")).unwrap();
        t.apply(1, &e("d/.wh..wh..opq", Kind::File, "")).unwrap();
        t.apply(1, &e("d/after", Kind::File, "")).unwrap();
        assert_eq!(
            paths(&t),
            ["/", "/d", "/d/after", "/d/new", "/d/sub", "/d/sub/y"]
        );
    }

    #[test]
    fn a_whiteout_does_not_remove_its_own_layer_and_aufs_names_are_ignored() {
        let mut t = Tree::new();
        t.apply(0, &e("a", Kind::File, "")).unwrap();
        t.apply(0, &e(".wh.a", Kind::File, "")).unwrap();
        t.apply(0, &e(".wh..wh.plnk", Kind::File, "")).unwrap();
        assert_eq!(paths(&t), ["/", "/a"]);
        t.apply(1, &e(".wh.a", Kind::File, "")).unwrap();
        assert_eq!(paths(&t), ["/"]);
    }

    #[test]
    fn replacing_types_and_parents_that_are_not_directories() {
        let mut t = Tree::new();
        t.apply(0, &e("lib", Kind::Symlink, "usr/lib")).unwrap();
        t.apply(0, &e("x/y/z", Kind::File, "")).unwrap();
        // A later layer writes below the symlink: its own directory hides the link.
        t.apply(1, &e("lib/libc.so", Kind::File, "")).unwrap();
        // A file replaces a directory and its subtree.
        t.apply(1, &e("x", Kind::File, "")).unwrap();
        assert_eq!(paths(&t), ["/", "/lib", "/lib/libc.so", "/x"]);
        // A directory over a directory keeps the children and takes the new mode.
        let mut d = e("lib/", Kind::Dir, "");
        d.mode = 0o700;
        t.apply(2, &d).unwrap();
        assert_eq!(t.node(t.lookup(b"/lib").unwrap()).mode, 0o700);
        assert!(t.lookup(b"/lib/libc.so").is_some());
    }

    #[test]
    fn hard_links_share_the_data_and_need_a_file() {
        let mut t = Tree::new();
        let mut f = e("usr/bin/perl", Kind::File, "");
        f.offset = 4096;
        f.size = 99;
        t.apply(0, &f).unwrap();
        t.apply(0, &e("usr/bin/perl5", Kind::HardLink, "./usr/bin/perl"))
            .unwrap();
        let n = t.node(t.lookup(b"/usr/bin/perl5").unwrap());
        assert!(matches!(
            n.kind,
            NodeKind::File {
                size: 99,
                src: Src {
                    layer: 0,
                    offset: 4096
                }
            }
        ));
        assert!(t.apply(0, &e("bad", Kind::HardLink, "usr/bin")).is_err());
        assert!(t.apply(0, &e("bad", Kind::HardLink, "nowhere")).is_err());
    }

    #[test]
    fn paths_that_escape_or_are_too_long_are_refused() {
        let mut t = Tree::new();
        assert!(t.apply(0, &e("../etc/passwd", Kind::File, "")).is_err());
        assert!(t.apply(0, &e("a/../../b", Kind::File, "")).is_err());
        t.apply(0, &e("a/../b", Kind::File, "")).unwrap();
        assert!(t.lookup(b"/b").is_some());
        let long = "n".repeat(256);
        assert!(t.apply(0, &e(&long, Kind::File, "")).is_err());
        let deep = "d/".repeat(MAX_DEPTH + 1);
        assert!(t.apply(0, &e(&deep, Kind::Dir, "")).is_err());
        // The root entry only changes the root's metadata.
        let mut r = e("./", Kind::Dir, "");
        r.mode = 0o700;
        t.apply(0, &r).unwrap();
        assert_eq!(t.node(ROOT).mode, 0o700);
    }

    proptest! {
        #[test]
        fn arbitrary_entries_never_panic(
            ops in proptest::collection::vec(
                (0u16..4, "[a-c./]{0,12}", 0u8..8, "[a-c./]{0,8}"), 0..60)
        ) {
            let mut t = Tree::new();
            for (layer, path, k, link) in ops {
                let kind = match k {
                    0 => Kind::File, 1 => Kind::Dir, 2 => Kind::Symlink, 3 => Kind::HardLink,
                    4 => Kind::Fifo, 5 => Kind::Char, 6 => Kind::Other(b'Z'), _ => Kind::Block,
                };
                let _ = t.apply(layer, &e(&path, kind, &link));
            }
            for id in t.walk() {
                let p = t.path_of(id);
                prop_assert_eq!(t.lookup(&p), Some(id));
            }
        }
    }
}
