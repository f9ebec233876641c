//! Durable file writes: removable media get unplugged, so every write either completes or
//! leaves the previous file untouched (write a temporary file, fsync, rename, fsync the
//! directory).

use std::fs::{File, OpenOptions};
use std::io::Write as _;
use std::path::{Path, PathBuf};

use crate::error::{CeremonyError, Result};

/// Writes a new file that must not exist yet, with mode 0600 when `private` (0644 otherwise,
/// subject to the umask), and fsyncs it and its directory.
pub(crate) fn write_new(path: &Path, bytes: &[u8], private: bool) -> Result<()> {
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(if private { 0o600 } else { 0o644 });
    }
    #[cfg(not(unix))]
    let _ = private;
    let mut f = options.open(path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::AlreadyExists {
            CeremonyError::AlreadyExists {
                path: path.to_owned(),
            }
        } else {
            CeremonyError::Io {
                path: path.to_owned(),
                source: e,
            }
        }
    })?;
    let written = f.write_all(bytes).and_then(|()| f.sync_all());
    if let Err(e) = written {
        drop(f);
        let _ = std::fs::remove_file(path);
        return Err(CeremonyError::io(path)(e));
    }
    sync_parent(path)
}

/// Replaces (or creates) `path` atomically.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = temp_name(path);
    let _ = std::fs::remove_file(&tmp);
    let result = (|| {
        let mut f = File::create(&tmp).map_err(CeremonyError::io(&tmp))?;
        f.write_all(bytes).map_err(CeremonyError::io(&tmp))?;
        f.sync_all().map_err(CeremonyError::io(&tmp))?;
        std::fs::rename(&tmp, path).map_err(CeremonyError::io(path))
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result?;
    sync_parent(path)
}

/// Moves `from` to `to` (same file system) and fsyncs both directories.
pub(crate) fn rename(from: &Path, to: &Path) -> Result<()> {
    std::fs::rename(from, to).map_err(CeremonyError::io(from))?;
    sync_parent(to)?;
    sync_parent(from)
}

fn temp_name(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    path.with_file_name(format!(".{name}.tmp"))
}

fn sync_parent(path: &Path) -> Result<()> {
    #[cfg(unix)]
    {
        let parent = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        File::open(parent)
            .and_then(|d| d.sync_all())
            .map_err(CeremonyError::io(parent))?;
    }
    #[cfg(not(unix))]
    let _ = path;
    Ok(())
}

/// Reads a file of at most `max` bytes (metadata and key files are small; anything larger is
/// not one of ours).
pub(crate) fn read_limited(path: &Path, max: u64) -> Result<Vec<u8>> {
    let len = std::fs::metadata(path).map_err(CeremonyError::io(path))?.len();
    if len > max {
        return Err(CeremonyError::Metadata {
            file: path.display().to_string(),
            reason: format!("{len} bytes, larger than the limit of {max}"),
        });
    }
    std::fs::read(path).map_err(CeremonyError::io(path))
}
