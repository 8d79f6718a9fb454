//! `execguard check --image-tar FILE`: an image from a `docker save` tarball or an OCI layout
//! tarball, checked without unpacking it.
//!
//! This module owns the tarball's layout: the outer archive's index (names to byte ranges,
//! following its symbolic links), `manifest.json` (docker save, every version) or `index.json`
//! with its manifests and nested indexes (OCI layouts, and docker save from Docker 25 on, which
//! writes both), each image's config (entrypoint, cmd, env, user, working dir, and the platform
//! label: os, architecture, variant), and the loop that runs the normal checks on a
//! [`view::View`] of the image until every file they read is there. Layers may be uncompressed
//! or gzip (`application/vnd.oci.image.layer.v1.tar+gzip`); zstd, bzip2 and xz layers are
//! refused with a clear error.
//!
//! The tarball is untrusted: the file must be a regular file (a FIFO or device is refused before
//! it is read), JSON documents are read up to [`MAX_JSON_BYTES`], blob names come only from
//! digests of the form `algorithm:hex`, nested indexes are followed to a depth of
//! [`MAX_INDEX_DEPTH`], and [`tar`], [`tree`] and [`view`] bound the rest.

pub mod tar;
pub mod tree;
pub mod view;

use std::collections::HashMap;
use std::fs::File;
use std::io;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::diagnosis::{Code, Diagnosis, Finding, Program, Severity};
use crate::host::Host;
use crate::sanitize::{escape_bytes, escape_str};
use crate::spec::SpecView;
use crate::sweep::{self, Identity, ImageTarget, Options, Platform, Report, Target, Targets};
use view::{LayerBlob, View};

/// Largest JSON document (manifest, index, config) read from the tarball.
pub const MAX_JSON_BYTES: u64 = 16 << 20;
/// Most entries in the outer tarball.
pub const MAX_OUTER_ENTRIES: usize = 200_000;
/// Deepest nesting of OCI image indexes followed.
pub const MAX_INDEX_DEPTH: usize = 4;
/// Most images (platform manifests) one tarball may list.
pub const MAX_IMAGES: usize = 256;
/// Rounds of check-then-fill before execguard stops following a chain of files.
const MAX_ROUNDS: usize = 12;
/// Largest /etc/passwd or /etc/group read.
const MAX_ACCOUNTS_BYTES: u64 = 1 << 20;

/// Why an image tarball cannot be checked.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    /// A file could not be opened or read.
    #[error("{what}: {source}")]
    Io {
        /// What was being done, naming the input.
        what: String,
        /// The cause.
        source: io::Error,
    },
    /// The outer archive is not a readable tar archive.
    #[error("the tarball is not a readable tar archive: {0}")]
    Archive(#[from] tar::TarError),
    /// The tarball's layout or documents are wrong.
    #[error("{0}")]
    Format(String),
    /// A layer cannot be read or applied.
    #[error("layer {index} ({blob}): {what}")]
    Layer {
        /// Index of the layer, from 0.
        index: usize,
        /// Its blob name in the tarball.
        blob: String,
        /// What is wrong.
        what: String,
    },
}

/// One entry of the outer tarball.
#[derive(Debug, Clone)]
enum Outer {
    File { offset: u64, size: u64 },
    Link(Vec<u8>),
}

/// An opened image tarball.
pub struct Archive {
    path: PathBuf,
    file: File,
    entries: HashMap<Vec<u8>, Outer>,
}

/// What an image's config says about its process and platform.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImageConfig {
    /// `architecture` (`amd64`, `arm64`…).
    pub architecture: Option<String>,
    /// `os` (`linux`).
    pub os: Option<String>,
    /// `variant` (`v7`, `v8`…).
    pub variant: Option<String>,
    /// `config.Entrypoint`.
    pub entrypoint: Vec<String>,
    /// `config.Cmd`.
    pub cmd: Vec<String>,
    /// `config.Env`.
    pub env: Vec<String>,
    /// `config.User` (empty: root).
    pub user: String,
    /// `config.WorkingDir` (empty: `/`).
    pub working_dir: String,
}

impl ImageConfig {
    /// Parses an image config document (OCI image-spec `config.md`, docker's is the same).
    pub fn parse(v: &Value) -> ImageConfig {
        let s = |v: Option<&Value>| v.and_then(Value::as_str).map(str::to_string);
        let list = |v: Option<&Value>| -> Vec<String> {
            v.and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .filter_map(|x| x.as_str().map(str::to_string))
                        .collect()
                })
                .unwrap_or_default()
        };
        let c = v.get("config");
        ImageConfig {
            architecture: s(v.get("architecture")).filter(|a| !a.is_empty()),
            os: s(v.get("os")).filter(|a| !a.is_empty()),
            variant: s(v.get("variant")).filter(|a| !a.is_empty()),
            entrypoint: list(c.and_then(|c| c.get("Entrypoint"))),
            cmd: list(c.and_then(|c| c.get("Cmd"))),
            env: list(c.and_then(|c| c.get("Env"))),
            user: s(c.and_then(|c| c.get("User"))).unwrap_or_default(),
            working_dir: s(c.and_then(|c| c.get("WorkingDir"))).unwrap_or_default(),
        }
    }

    /// The platform label, when the config has an architecture.
    pub fn platform(&self) -> Option<Platform> {
        let arch = self.architecture.as_deref()?;
        Some(Platform::new(
            self.os.as_deref().unwrap_or("linux"),
            arch,
            self.variant.as_deref(),
        ))
    }

    /// The process the engines start: entrypoint then cmd.
    pub fn args(&self) -> Vec<String> {
        let mut a = self.entrypoint.clone();
        a.extend(self.cmd.iter().cloned());
        a
    }
}

/// One image in the tarball.
#[derive(Debug, Clone)]
pub struct Image {
    /// Its name (a repo tag, or an OCI `ref.name` annotation), if the tarball gives one.
    pub name: Option<String>,
    /// The config blob's name in the tarball.
    pub config_blob: String,
    /// The config.
    pub config: ImageConfig,
    /// Its layers, lowest first.
    pub layers: Vec<LayerBlob>,
}

/// Cleans an outer tar name: no leading `./` or `/`, `.` and empty components dropped, `..`
/// applied.
fn clean_name(name: &[u8]) -> Vec<u8> {
    let mut parts: Vec<&[u8]> = Vec::new();
    for c in name.split(|b| *b == b'/') {
        match c {
            b"" | b"." => {}
            b".." => {
                parts.pop();
            }
            c => parts.push(c),
        }
    }
    parts.join(&b'/')
}

/// The blob name of a digest (`sha256:abc…` → `blobs/sha256/abc…`), for well-formed digests
/// only (OCI image-spec `descriptor.md`: the algorithm in `[a-z0-9+._-]`, the encoded part in
/// `[a-zA-Z0-9=_-]`).
pub fn blob_name(digest: &str) -> Option<String> {
    let (alg, hex) = digest.split_once(':')?;
    let alg_ok = !alg.is_empty()
        && alg
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"+._-".contains(&b));
    let hex_ok = !hex.is_empty()
        && hex
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"=_-".contains(&b));
    (alg_ok && hex_ok && alg.len() <= 32 && hex.len() <= 256).then(|| format!("blobs/{alg}/{hex}"))
}

impl Archive {
    /// Opens a tarball and reads its index (headers only: blob data is seeked over).
    ///
    /// # Errors
    /// The file is not a regular file, cannot be read, or is not a tar archive.
    pub fn open(path: &Path) -> Result<Archive, ImageError> {
        let shown = path.display().to_string();
        let file = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY | libc::O_CLOEXEC)
            .open(path)
            .map_err(|e| ImageError::Io {
                what: format!("cannot open {shown}"),
                source: e,
            })?;
        let meta = file.metadata().map_err(|e| ImageError::Io {
            what: format!("cannot stat {shown}"),
            source: e,
        })?;
        if !meta.file_type().is_file() {
            return Err(ImageError::Format(format!(
                "{shown} is not a regular file (give the file `docker save -o` or `buildx -o type=oci,dest=` wrote)"
            )));
        }
        let mut entries = HashMap::new();
        {
            let mut r = tar::Reader::new(tar::Slice::new(&file, 0, meta.len()));
            while let Some(e) = r.next_entry()? {
                if entries.len() >= MAX_OUTER_ENTRIES {
                    return Err(ImageError::Format(format!(
                        "{shown} has more than {MAX_OUTER_ENTRIES} entries"
                    )));
                }
                let name = clean_name(&e.path);
                match e.kind {
                    tar::Kind::File => {
                        entries.insert(
                            name,
                            Outer::File {
                                offset: e.offset,
                                size: e.size,
                            },
                        );
                    }
                    tar::Kind::Symlink => {
                        // Relative to the link's own directory.
                        let mut t = match name.iter().rposition(|b| *b == b'/') {
                            Some(i) if !e.link.starts_with(b"/") => {
                                let mut d = name.get(..=i).unwrap_or_default().to_vec();
                                d.extend_from_slice(&e.link);
                                d
                            }
                            _ => e.link.clone(),
                        };
                        t = clean_name(&t);
                        entries.insert(name, Outer::Link(t));
                    }
                    tar::Kind::HardLink => {
                        entries.insert(name, Outer::Link(clean_name(&e.link)));
                    }
                    _ => {}
                }
            }
        }
        Ok(Archive {
            path: path.to_path_buf(),
            file,
            entries,
        })
    }

    /// The tarball's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Offset and size of a file in the tarball, following its links.
    fn locate(&self, name: &str) -> Result<(u64, u64), ImageError> {
        let mut cur = clean_name(name.as_bytes());
        for _ in 0..16 {
            match self.entries.get(&cur) {
                Some(Outer::File { offset, size }) => return Ok((*offset, *size)),
                Some(Outer::Link(t)) => cur = t.clone(),
                None => break,
            }
        }
        Err(ImageError::Format(format!(
            "{}: {} is missing from the tarball",
            self.path.display(),
            escape_str(name)
        )))
    }

    fn has(&self, name: &str) -> bool {
        self.entries.contains_key(name.as_bytes())
    }

    /// A JSON document from the tarball.
    fn json(&self, name: &str) -> Result<Value, ImageError> {
        let (offset, size) = self.locate(name)?;
        let shown = escape_str(name);
        if size > MAX_JSON_BYTES {
            return Err(ImageError::Format(format!(
                "{shown} is {size} bytes, larger than the {MAX_JSON_BYTES}-byte limit for a JSON document"
            )));
        }
        let mut buf = vec![0u8; usize::try_from(size).unwrap_or(0)];
        self.file
            .read_exact_at(&mut buf, offset)
            .map_err(|e| ImageError::Io {
                what: format!("cannot read {shown}"),
                source: e,
            })?;
        serde_json::from_slice(&buf)
            .map_err(|e| ImageError::Format(format!("{shown} is not valid JSON: {e}")))
    }

    fn layer_blob(&self, name: &str) -> Result<LayerBlob, ImageError> {
        let (offset, size) = self.locate(name)?;
        Ok(LayerBlob {
            name: name.to_string(),
            offset,
            size,
        })
    }

    /// The images the tarball holds: from `manifest.json` when it has one (docker save),
    /// otherwise from `index.json` (an OCI layout), skipping attestation manifests.
    ///
    /// # Errors
    /// Neither document is there, or one is malformed, or a blob it names is missing.
    pub fn images(&self) -> Result<Vec<Image>, ImageError> {
        if self.has("manifest.json") {
            return self.docker_images();
        }
        if self.has("index.json") {
            let index = self.json("index.json")?;
            let mut out = Vec::new();
            self.oci_index(&index, None, 0, &mut out)?;
            if out.is_empty() {
                return Err(ImageError::Format(
                    "index.json lists no image manifest".into(),
                ));
            }
            return Ok(out);
        }
        Err(ImageError::Format(format!(
            "{} is neither a docker save tarball nor an OCI layout (it has no manifest.json or index.json)",
            self.path.display()
        )))
    }

    fn docker_images(&self) -> Result<Vec<Image>, ImageError> {
        let doc = self.json("manifest.json")?;
        let list = doc
            .as_array()
            .ok_or_else(|| ImageError::Format("manifest.json is not a JSON array".into()))?;
        let mut out = Vec::new();
        for m in list.iter().take(MAX_IMAGES) {
            let config_blob = m
                .get("Config")
                .and_then(Value::as_str)
                .ok_or_else(|| ImageError::Format("manifest.json: an entry has no Config".into()))?
                .to_string();
            let layers = m
                .get("Layers")
                .and_then(Value::as_array)
                .map(|a| a.iter().filter_map(Value::as_str).collect::<Vec<_>>())
                .unwrap_or_default();
            let name = m
                .get("RepoTags")
                .and_then(Value::as_array)
                .and_then(|a| a.first())
                .and_then(Value::as_str)
                .map(str::to_string);
            let config = ImageConfig::parse(&self.json(&config_blob)?);
            let layers = layers
                .iter()
                .map(|l| self.layer_blob(l))
                .collect::<Result<Vec<_>, _>>()?;
            out.push(Image {
                name,
                config_blob,
                config,
                layers,
            });
        }
        Ok(out)
    }

    fn oci_index(
        &self,
        index: &Value,
        name: Option<String>,
        depth: usize,
        out: &mut Vec<Image>,
    ) -> Result<(), ImageError> {
        if depth > MAX_INDEX_DEPTH {
            return Err(ImageError::Format(format!(
                "image indexes are nested deeper than {MAX_INDEX_DEPTH}"
            )));
        }
        let manifests = index
            .get("manifests")
            .and_then(Value::as_array)
            .ok_or_else(|| ImageError::Format("an image index has no manifests list".into()))?;
        for d in manifests {
            if out.len() >= MAX_IMAGES {
                break;
            }
            let ann = |k: &str| {
                d.get("annotations")
                    .and_then(|a| a.get(k))
                    .and_then(Value::as_str)
                    .map(str::to_string)
            };
            // buildx attaches provenance and SBOM attestations as manifests of platform
            // unknown/unknown.
            if ann("vnd.docker.reference.type").as_deref() == Some("attestation-manifest")
                || d.get("platform")
                    .and_then(|p| p.get("os"))
                    .and_then(Value::as_str)
                    == Some("unknown")
            {
                continue;
            }
            let digest = d.get("digest").and_then(Value::as_str).unwrap_or_default();
            let blob = blob_name(digest).ok_or_else(|| {
                ImageError::Format(format!(
                    "a descriptor has the malformed digest \"{}\"",
                    escape_str(digest)
                ))
            })?;
            let name = ann("io.containerd.image.name")
                .or_else(|| ann("org.opencontainers.image.ref.name"))
                .or_else(|| name.clone());
            let media = d
                .get("mediaType")
                .and_then(Value::as_str)
                .unwrap_or_default();
            let doc = self.json(&blob)?;
            let is_index = media.contains("index")
                || media.contains("manifest.list")
                || (media.is_empty() && doc.get("manifests").is_some());
            if is_index {
                self.oci_index(&doc, name, depth + 1, out)?;
                continue;
            }
            let config_digest = doc
                .get("config")
                .and_then(|c| c.get("digest"))
                .and_then(Value::as_str)
                .unwrap_or_default();
            let config_blob = blob_name(config_digest).ok_or_else(|| {
                ImageError::Format(format!("manifest {blob} has no well-formed config digest"))
            })?;
            let layers = doc
                .get("layers")
                .and_then(Value::as_array)
                .map(Vec::as_slice)
                .unwrap_or_default()
                .iter()
                .map(|l| {
                    let dg = l.get("digest").and_then(Value::as_str).unwrap_or_default();
                    let b = blob_name(dg).ok_or_else(|| {
                        ImageError::Format(format!(
                            "manifest {blob} has a layer with the malformed digest \"{}\"",
                            escape_str(dg)
                        ))
                    })?;
                    self.layer_blob(&b)
                })
                .collect::<Result<Vec<_>, _>>()?;
            let config = ImageConfig::parse(&self.json(&config_blob)?);
            out.push(Image {
                name,
                config_blob,
                config,
                layers,
            });
        }
        Ok(())
    }
}

/// Checks one image: its process (entrypoint and cmd), the PATHs given, or every executable.
///
/// # Errors
/// The image's layers cannot be read or laid out.
pub fn check(
    archive: &Archive,
    image: &Image,
    targets: &Targets,
    opts: &Options,
    host: &Host,
) -> Result<Report, ImageError> {
    let mut view = View::build(&archive.file, &image.layers)?;
    let cfg = &image.config;
    let mut notes = std::mem::take(&mut view.notes);
    let mut user_problem: Option<Finding> = None;

    // The user, as the engines resolve it in the image's /etc/passwd and /etc/group.
    let user = opts.user.clone().unwrap_or_else(|| cfg.user.clone());
    let accounts: Vec<_> = [&b"/etc/passwd"[..], b"/etc/group"]
        .iter()
        .filter_map(|p| view.resolve_file(p))
        .collect();
    view.fill(&accounts)?;
    let id = match sweep::resolve_user(view.root(), &user, MAX_ACCOUNTS_BYTES) {
        Ok(id) => id,
        Err(why) => {
            user_problem = Some(
                Finding::new(
                    Code::Unverifiable,
                    Severity::Warning,
                    format!(
                        "{why}: the engines refuse to start the container; the checks ran as root"
                    ),
                    "add the user to the image (RUN useradd ...) or use a numeric USER uid:gid"
                        .into(),
                )
                .with("user", escape_str(&user)),
            );
            Identity::default()
        }
    };

    let mut env = cfg.env.clone();
    // moby and containerd add a default PATH when the image has none.
    if !env.iter().any(|kv| kv.starts_with("PATH=")) {
        env.insert(0, format!("PATH={}", sweep::DEFAULT_PATH));
    }
    env.extend(opts.env.iter().cloned());
    let cwd = if cfg.working_dir.is_empty() {
        "/".to_string()
    } else if cfg.working_dir.starts_with('/') {
        cfg.working_dir.clone()
    } else {
        format!("/{}", cfg.working_dir)
    };
    let mut base = SpecView::for_process(view.rootfs().to_path_buf(), Vec::new(), env.clone());
    base.cwd = cwd;
    id.apply(&mut base);

    let label = cfg.platform().filter(|p| p.os == "linux");
    let mut walked = None;
    let mut odd = Vec::new();
    let runs: Vec<Vec<String>> = match targets {
        Targets::All => {
            let all = view.executables();
            view.fill(&all)?;
            let mut w = sweep::walk(view.rootfs()).map_err(|e| ImageError::Io {
                what: "cannot walk the view of the image".into(),
                source: e,
            })?;
            let mut runs = Vec::new();
            for f in std::mem::take(&mut w.files) {
                match String::from_utf8(f) {
                    Ok(s) => runs.push(vec![s]),
                    Err(e) => odd.push(sweep::not_checked(
                        e.as_bytes(),
                        "its name is not valid UTF-8, which process.args cannot hold",
                    )),
                }
            }
            walked = Some(w);
            runs
        }
        Targets::Process => vec![cfg.args()],
        Targets::Paths(p) => p.iter().map(|x| vec![x.clone()]).collect(),
    };
    if !matches!(targets, Targets::All) {
        // The programs the checks read first: args[0] where the runtime looks it up.
        let mut first = Vec::new();
        for a0 in runs.iter().filter_map(|a| a.first()) {
            if let Some(n) = sweep::candidates(a0, &base)
                .iter()
                .find_map(|c| view.resolve_file(c.as_bytes()))
            {
                first.push(n);
            }
        }
        view.fill(&first)?;
    }

    // Check, then fill whatever file the checks reached that is not there yet, and again.
    let mut diags: Vec<Option<Diagnosis>> = vec![None; runs.len()];
    let mut todo: Vec<usize> = (0..runs.len()).collect();
    for round in 0..=MAX_ROUNDS {
        let batch: Vec<Vec<String>> = todo.iter().filter_map(|i| runs.get(*i).cloned()).collect();
        let done = sweep::check_many(
            &base,
            &batch,
            host,
            label.as_ref(),
            sweep::LabelSource::Image,
            view.root(),
            &opts.silenced,
        );
        for (&i, d) in todo.iter().zip(done) {
            if let Some(slot) = diags.get_mut(i) {
                *slot = Some(d);
            }
        }
        let mut want = Vec::new();
        let mut again = Vec::new();
        for &i in &todo {
            let Some(Some(d)) = diags.get(i) else {
                continue;
            };
            let missing: Vec<_> = sweep::chain_paths(d)
                .iter()
                .filter_map(|p| view.node_at(p))
                .filter(|n| !view.is_ready(*n))
                .collect();
            if !missing.is_empty() {
                want.extend(missing);
                again.push(i);
            }
        }
        if want.is_empty() {
            break;
        }
        if round == MAX_ROUNDS || view.fill(&want)? == 0 {
            notes.push(
                "some files the checks reached could not be read from the layers: their findings may be wrong".into(),
            );
            break;
        }
        todo = again;
    }
    let mut all: Vec<Diagnosis> = diags.into_iter().flatten().collect();
    if let Some(f) = user_problem {
        // The process's own diagnosis carries it; a sweep of paths gets it once, apart.
        match (targets, all.first_mut()) {
            (Targets::Process, Some(d)) => {
                let mut fs = d.findings.clone();
                fs.push(f);
                *d = Diagnosis::new(d.program.clone(), fs);
                d.silence(&opts.silenced);
            }
            _ => {
                let mut d = Diagnosis::new(Program::default(), vec![f]);
                d.silence(&opts.silenced);
                all.push(d);
            }
        }
    }
    all.extend(odd);
    notes.extend(view.notes.iter().cloned());
    let target = Target::Image(Box::new(ImageTarget {
        file: escape_bytes(archive.path.as_os_str().as_encoded_bytes()),
        name: image.name.as_deref().map(escape_str),
        platform: cfg.platform().map(|p| escape_str(&p.to_string())),
        config: escape_str(&image.config_blob),
        entrypoint: cfg.entrypoint.iter().map(|s| escape_str(s)).collect(),
        cmd: cfg.cmd.iter().map(|s| escape_str(s)).collect(),
        env: env.iter().map(|s| escape_str(s)).collect(),
        user: escape_str(&user),
        working_dir: escape_str(&cfg.working_dir),
        layers: image.layers.len(),
        entries: view.entries(),
    }));
    let detailed = !matches!(targets, Targets::All);
    let mut report = Report::new(target, all, detailed, notes);
    if let Some(w) = walked {
        report.add_walk(w);
    }
    Ok(report)
}

/// Checks every image of a tarball (only those of `platform` when given).
///
/// # Errors
/// The tarball cannot be read, holds no image, or none of `platform`.
pub fn check_tar(
    path: &Path,
    targets: &Targets,
    opts: &Options,
    host: &Host,
) -> Result<Vec<Report>, ImageError> {
    let archive = Archive::open(path)?;
    let images = archive.images()?;
    let chosen: Vec<&Image> = match &opts.platform {
        Some(p) => images
            .iter()
            .filter(|i| i.config.platform().is_some_and(|l| p.matches(&l)))
            .collect(),
        None => images.iter().collect(),
    };
    if chosen.is_empty() {
        let have: Vec<String> = images
            .iter()
            .map(|i| {
                i.config
                    .platform()
                    .map(|p| p.to_string())
                    .unwrap_or_else(|| "no platform".into())
            })
            .collect();
        return Err(ImageError::Format(format!(
            "{} has no image for {} (it has: {})",
            path.display(),
            opts.platform
                .as_ref()
                .map(|p| p.to_string())
                .unwrap_or_default(),
            escape_str(&have.join(", "))
        )));
    }
    chosen
        .into_iter()
        .map(|i| check(&archive, i, targets, opts, host))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn digests_become_blob_names_only_when_well_formed() {
        assert_eq!(
            blob_name("sha256:abcdef0123").as_deref(),
            Some("blobs/sha256/abcdef0123")
        );
        assert_eq!(blob_name("sha256:../../etc/passwd"), None);
        assert_eq!(blob_name("sha256/x:abc"), None);
        assert_eq!(blob_name("abc"), None);
        assert_eq!(blob_name("sha256:"), None);
    }

    #[test]
    fn outer_names_are_cleaned() {
        assert_eq!(clean_name(b"./blobs//sha256/x"), b"blobs/sha256/x");
        assert_eq!(clean_name(b"a/../manifest.json"), b"manifest.json");
        assert_eq!(clean_name(b"/index.json"), b"index.json");
    }

    #[test]
    fn config_reading() {
        let v: Value = serde_json::from_str(
            r#"{"architecture":"arm","os":"linux","variant":"v7","config":{"Entrypoint":["/init"],"Cmd":["a","b"],"Env":["PATH=/bin","X=1"],"User":"app:staff","WorkingDir":"/srv"}}"#,
        )
        .unwrap();
        let c = ImageConfig::parse(&v);
        assert_eq!(c.args(), ["/init", "a", "b"]);
        assert_eq!(c.user, "app:staff");
        assert_eq!(c.working_dir, "/srv");
        assert_eq!(c.platform().unwrap().to_string(), "linux/arm/v7");
        let empty =
            ImageConfig::parse(&serde_json::json!({"config": {"Cmd": null, "Entrypoint": 3}}));
        assert!(empty.args().is_empty() && empty.platform().is_none());
    }

    proptest! {
        #[test]
        fn config_parsing_never_panics(s in ".{0,200}") {
            if let Ok(v) = serde_json::from_str::<Value>(&s) {
                let _ = ImageConfig::parse(&v);
            }
            let _ = blob_name(&s);
            let _ = clean_name(s.as_bytes());
        }
    }
}
