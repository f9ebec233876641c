//! The client's local files: trusted metadata under non-versioned names, and targets.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use tufa_tuf::RoleName;

use crate::ClientError;

/// The directory of trusted metadata (`root.json`, `timestamp.json`, …).
#[derive(Debug, Clone)]
pub struct MetadataDir {
    dir: PathBuf,
}

impl MetadataDir {
    pub fn new(dir: &Path) -> Self {
        Self { dir: dir.to_owned() }
    }

    pub fn path(&self) -> &Path {
        &self.dir
    }

    /// `<dir>/<role, percent-encoded>.json`: a hostile role name cannot point elsewhere.
    pub fn file(&self, role: &RoleName) -> PathBuf {
        self.dir.join(format!("{}.json", role.quoted()))
    }

    /// The stored copy of `role`, if there is one.
    pub fn read(&self, role: &RoleName) -> Result<Option<Vec<u8>>, ClientError> {
        let path = self.file(role);
        match std::fs::read(&path) {
            Ok(bytes) => Ok(Some(bytes)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(ClientError::Io { path, source }),
        }
    }

    /// Replaces the stored copy of `role` atomically.
    pub fn write(&self, role: &RoleName, bytes: &[u8]) -> Result<(), ClientError> {
        write_atomic(&self.file(role), bytes)
    }
}

/// Writes `bytes` to `path` so that a crash leaves the old file or the new one: a temporary
/// file beside it, fsync, rename over `path`, fsync of the directory.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), ClientError> {
    let io = |path: &Path| {
        let path = path.to_owned();
        move |source| ClientError::Io { path, source }
    };
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.tmp-{}", std::process::id()));
    let mut file = std::fs::File::create(&tmp).map_err(io(&tmp))?;
    let written = file.write_all(bytes).and_then(|()| file.sync_all());
    drop(file);
    if let Err(source) = written.and_then(|()| std::fs::rename(&tmp, path)) {
        let _ = std::fs::remove_file(&tmp);
        return Err(ClientError::Io {
            path: path.to_owned(),
            source,
        });
    }
    #[cfg(unix)]
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io(dir))?;
    Ok(())
}
