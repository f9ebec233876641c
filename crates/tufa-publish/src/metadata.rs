//! Extracting a wheel's `METADATA` (PEP 658 core metadata) locally, so the mirror serves it
//! even when upstream does not; and an sdist's `PKG-INFO` (the same core metadata format).

use std::ffi::OsStr;
use std::io::{Read, Seek};
use std::path::{Component, Path};

use tufa_pypi::filename::WheelFilename;

/// The largest METADATA accepted (decompressed). Real ones are a few KiB to a few hundred.
pub const MAX_METADATA_BYTES: u64 = 16 * 1024 * 1024;

/// The most decompressed bytes read from an sdist tarball while looking for `PKG-INFO`
/// (a tarball is a stream: every entry before `PKG-INFO` is decompressed to skip it).
pub const MAX_SDIST_SCAN_BYTES: u64 = 512 * 1024 * 1024;

/// The most archive entries looked at in an sdist while looking for `PKG-INFO`.
pub const MAX_SDIST_ENTRIES: usize = 100_000;

#[derive(Debug, thiserror::Error)]
pub enum MetadataError {
    #[error("wheel `{wheel}` is not a readable zip archive: {source}")]
    Zip {
        wheel: String,
        source: zip::result::ZipError,
    },
    #[error("wheel `{wheel}`: METADATA is larger than {MAX_METADATA_BYTES} bytes")]
    TooLarge { wheel: String },
    #[error("wheel `{wheel}`: reading METADATA failed: {source}")]
    Io { wheel: String, source: std::io::Error },
    #[error("sdist `{sdist}` is not a readable gzip-compressed tar archive: {source}")]
    SdistTar { sdist: String, source: std::io::Error },
    #[error("sdist `{sdist}` is not a readable zip archive: {source}")]
    SdistZip {
        sdist: String,
        source: zip::result::ZipError,
    },
    #[error("sdist `{sdist}` decompresses to more than {limit} bytes")]
    SdistDecompressesTooLarge { sdist: String, limit: u64 },
    #[error("sdist `{sdist}` has more than {limit} entries")]
    SdistTooManyEntries { sdist: String, limit: usize },
    #[error("sdist `{sdist}`: PKG-INFO is larger than {MAX_METADATA_BYTES} bytes")]
    SdistPkgInfoTooLarge { sdist: String },
    #[error("sdist `{sdist}`: reading PKG-INFO failed: {source}")]
    SdistIo { sdist: String, source: std::io::Error },
}

/// Reads `<name>-<version>.dist-info/METADATA` from a wheel. The `.dist-info` directory is the
/// top-level one whose name normalises to the wheel's project (wheels spell it in several
/// ways); `None` when there is none.
pub fn extract<R: Read + Seek>(
    reader: R,
    wheel: &WheelFilename,
    filename: &str,
) -> Result<Option<Vec<u8>>, MetadataError> {
    let mut archive = zip::ZipArchive::new(reader).map_err(|source| MetadataError::Zip {
        wheel: filename.to_owned(),
        source,
    })?;
    let wanted = wheel.name.as_dist_info_name();
    let mut found = None;
    for i in 0..archive.len() {
        let Some(name) = archive.name_for_index(i) else {
            continue;
        };
        let Some(dir) = name.strip_suffix(".dist-info/METADATA") else {
            continue;
        };
        if dir.contains('/') {
            continue;
        }
        // `<distribution>-<version>`: compare the distribution part, normalised.
        let dist = dir.rsplit_once('-').map_or(dir, |(d, _)| d);
        let normalised = tufa_pypi::ProjectName::new(dist).map(|n| n.as_dist_info_name());
        if normalised.as_deref() == Ok(wanted.as_str()) {
            found = Some(i);
            break;
        }
    }
    let Some(i) = found else { return Ok(None) };
    let file = archive.by_index(i).map_err(|source| MetadataError::Zip {
        wheel: filename.to_owned(),
        source,
    })?;
    let mut out = Vec::new();
    // Read one byte past the limit to tell "exactly at the limit" from "over it" (zip bombs).
    file.take(MAX_METADATA_BYTES + 1)
        .read_to_end(&mut out)
        .map_err(|source| MetadataError::Io {
            wheel: filename.to_owned(),
            source,
        })?;
    if out.len() as u64 > MAX_METADATA_BYTES {
        return Err(MetadataError::TooLarge {
            wheel: filename.to_owned(),
        });
    }
    Ok(Some(out))
}

/// Reads `<top>/PKG-INFO` from an sdist (`.tar.gz`/`.tgz` or `.zip`, chosen by `filename`'s
/// extension): the first regular file whose path is exactly two normal components, the second
/// being `PKG-INFO` (deeper ones such as `<top>/src/x.egg-info/PKG-INFO` are not the sdist's;
/// absolute paths and `..` never match). `None` for other formats (`.tar.bz2`, `.tar.xz`,
/// `.egg`, ...) and when there is no such entry.
///
/// Bounded: at most [`MAX_SDIST_ENTRIES`] entries and [`MAX_SDIST_SCAN_BYTES`] decompressed
/// bytes are scanned, and `PKG-INFO` may be at most [`MAX_METADATA_BYTES`].
pub fn extract_sdist<R: Read + Seek>(reader: R, filename: &str) -> Result<Option<Vec<u8>>, MetadataError> {
    extract_sdist_limited(reader, filename, ScanLimits::DEFAULT)
}

/// How much of an sdist is scanned for `PKG-INFO`; tests shrink it.
#[derive(Clone, Copy, Debug)]
struct ScanLimits {
    /// Decompressed bytes read from a tarball (zip entries are read individually, not scanned).
    bytes: u64,
    /// Archive entries looked at.
    entries: usize,
}

impl ScanLimits {
    const DEFAULT: Self = Self {
        bytes: MAX_SDIST_SCAN_BYTES,
        entries: MAX_SDIST_ENTRIES,
    };
}

fn extract_sdist_limited<R: Read + Seek>(
    reader: R,
    filename: &str,
    limits: ScanLimits,
) -> Result<Option<Vec<u8>>, MetadataError> {
    let lower = filename.to_ascii_lowercase();
    if lower.ends_with(".tar.gz") || lower.ends_with(".tgz") {
        extract_sdist_tar_gz(reader, filename, limits)
    } else if lower.ends_with(".zip") {
        extract_sdist_zip(reader, filename, limits)
    } else {
        Ok(None)
    }
}

/// Whether an archive path is `<top>/PKG-INFO`: exactly two normal components (`.` ignored),
/// no root, prefix or `..`.
fn is_top_level_pkg_info(path: &Path) -> bool {
    let mut normal = 0;
    let mut last = None;
    for component in path.components() {
        match component {
            Component::CurDir => {}
            Component::Normal(part) => {
                normal += 1;
                if normal > 2 {
                    return false;
                }
                last = Some(part);
            }
            Component::RootDir | Component::Prefix(_) | Component::ParentDir => return false,
        }
    }
    normal == 2 && last == Some(OsStr::new("PKG-INFO"))
}

/// Counts the bytes read through it and fails once more than `limit` have been read;
/// `exceeded` tells that failure apart from the inner reader's own errors (which the tar
/// crate may wrap beyond recognition).
struct CountingReader<R> {
    inner: R,
    read: u64,
    limit: u64,
    exceeded: bool,
}

impl<R: Read> Read for CountingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.exceeded {
            return Err(self.limit_error());
        }
        let n = self.inner.read(buf)?;
        self.read = self.read.saturating_add(n as u64);
        if self.read > self.limit {
            self.exceeded = true;
            return Err(self.limit_error());
        }
        Ok(n)
    }
}

impl<R> CountingReader<R> {
    fn limit_error(&self) -> std::io::Error {
        std::io::Error::other(format!("decompressed data exceeds {} bytes", self.limit))
    }
}

fn extract_sdist_tar_gz<R: Read>(
    reader: R,
    filename: &str,
    limits: ScanLimits,
) -> Result<Option<Vec<u8>>, MetadataError> {
    let mut counting = CountingReader {
        inner: flate2::read::GzDecoder::new(reader),
        read: 0,
        limit: limits.bytes,
        exceeded: false,
    };
    let result = scan_tar(&mut counting, filename, limits.entries);
    if counting.exceeded {
        return Err(MetadataError::SdistDecompressesTooLarge {
            sdist: filename.to_owned(),
            limit: limits.bytes,
        });
    }
    result
}

fn scan_tar<R: Read>(
    reader: R,
    filename: &str,
    max_entries: usize,
) -> Result<Option<Vec<u8>>, MetadataError> {
    let tar_error = |source| MetadataError::SdistTar {
        sdist: filename.to_owned(),
        source,
    };
    let mut archive = tar::Archive::new(reader);
    let entries = archive.entries().map_err(tar_error)?;
    for (i, entry) in entries.enumerate() {
        if i >= max_entries {
            return Err(MetadataError::SdistTooManyEntries {
                sdist: filename.to_owned(),
                limit: max_entries,
            });
        }
        let entry = entry.map_err(tar_error)?;
        let kind = entry.header().entry_type();
        // Symlinks, hard links and directories named `PKG-INFO` are not the metadata.
        if !(kind.is_file() || kind.is_contiguous()) {
            continue;
        }
        // Only fails for non-UTF-8 paths on Windows; such a path is not `PKG-INFO` anyway.
        let Ok(path) = entry.path() else { continue };
        if !is_top_level_pkg_info(&path) {
            continue;
        }
        let declared = entry.size();
        return read_pkg_info(entry, declared, filename).map(Some);
    }
    Ok(None)
}

fn extract_sdist_zip<R: Read + Seek>(
    reader: R,
    filename: &str,
    limits: ScanLimits,
) -> Result<Option<Vec<u8>>, MetadataError> {
    let zip_error = |source| MetadataError::SdistZip {
        sdist: filename.to_owned(),
        source,
    };
    let mut archive = zip::ZipArchive::new(reader).map_err(zip_error)?;
    for i in 0..archive.len() {
        if i >= limits.entries {
            return Err(MetadataError::SdistTooManyEntries {
                sdist: filename.to_owned(),
                limit: limits.entries,
            });
        }
        let Some(name) = archive.name_for_index(i) else {
            continue;
        };
        if !is_top_level_pkg_info(Path::new(name)) {
            continue;
        }
        let file = archive.by_index(i).map_err(zip_error)?;
        // `<top>/PKG-INFO/` (a directory) or a symlink: keep looking.
        if !file.is_file() {
            continue;
        }
        let declared = file.size();
        return read_pkg_info(file, declared, filename).map(Some);
    }
    Ok(None)
}

/// Reads a `PKG-INFO` entry of `declared` bytes (its archive header's size), refusing more
/// than [`MAX_METADATA_BYTES`] by that size or by what is read, whatever the header said.
fn read_pkg_info(entry: impl Read, declared: u64, filename: &str) -> Result<Vec<u8>, MetadataError> {
    let too_large = || MetadataError::SdistPkgInfoTooLarge {
        sdist: filename.to_owned(),
    };
    if declared > MAX_METADATA_BYTES {
        return Err(too_large());
    }
    let mut out = Vec::new();
    // One byte past the limit tells "exactly at the limit" from "over it".
    entry
        .take(MAX_METADATA_BYTES + 1)
        .read_to_end(&mut out)
        .map_err(|source| MetadataError::SdistIo {
            sdist: filename.to_owned(),
            source,
        })?;
    if out.len() as u64 > MAX_METADATA_BYTES {
        return Err(too_large());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use std::io::{Cursor, Write as _};

    use tufa_pypi::DistFilename;

    use super::*;

    fn wheel(entries: &[(&str, &[u8])]) -> Vec<u8> {
        let mut w = zip::ZipWriter::new(Cursor::new(Vec::new()));
        for (name, data) in entries {
            w.start_file(*name, zip::write::SimpleFileOptions::default())
                .unwrap();
            w.write_all(data).unwrap();
        }
        w.finish().unwrap().into_inner()
    }

    #[test]
    fn finds_metadata_under_any_spelling() {
        let f = DistFilename::parse("Foo.Bar_baz-2.0-py3-none-any.whl").unwrap();
        let data = wheel(&[
            ("foo/__init__.py", b""),
            ("other-1.0.dist-info/METADATA", b"wrong"),
            (
                "Foo.Bar_baz-2.0.dist-info/METADATA",
                b"Metadata-Version: 2.1\nName: Foo.Bar_baz\n",
            ),
        ]);
        let m = extract(Cursor::new(data), f.as_wheel().unwrap(), f.as_str())
            .unwrap()
            .unwrap();
        assert!(m.starts_with(b"Metadata-Version: 2.1"));
    }

    #[test]
    fn missing_metadata_and_garbage() {
        let f = DistFilename::parse("demo-1.0-py3-none-any.whl").unwrap();
        let w = f.as_wheel().unwrap();
        let data = wheel(&[
            ("demo/__init__.py", b""),
            ("nested/demo-1.0.dist-info/METADATA", b"x"),
        ]);
        assert!(extract(Cursor::new(data), w, f.as_str()).unwrap().is_none());
        let err = extract(Cursor::new(b"not a zip".to_vec()), w, f.as_str()).unwrap_err();
        assert!(err.to_string().contains("demo-1.0-py3-none-any.whl"), "{err}");
    }

    /// A `.tar.gz` of regular files. Paths are written into the header raw, because
    /// `tar::Header::set_path` refuses the `..` and absolute paths these tests need.
    fn tar_gz(entries: &[(&str, &[u8])]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for (path, data) in entries {
            let mut h = tar::Header::new_gnu();
            h.as_old_mut().name[..path.len()].copy_from_slice(path.as_bytes());
            h.set_size(data.len() as u64);
            h.set_mode(0o644);
            h.set_entry_type(tar::EntryType::Regular);
            h.set_cksum();
            b.append(&h, *data).unwrap();
        }
        gzip(&b.into_inner().unwrap())
    }

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(data).unwrap();
        gz.finish().unwrap()
    }

    fn sdist(data: Vec<u8>, filename: &str) -> Result<Option<Vec<u8>>, MetadataError> {
        extract_sdist(Cursor::new(data), filename)
    }

    const PKG_INFO: &[u8] = b"Metadata-Version: 2.2\nName: demo\nVersion: 1.0\n";

    #[test]
    fn sdist_tar_gz_pkg_info_at_top_level() {
        let data = tar_gz(&[
            ("demo-1.0/src/demo.egg-info/PKG-INFO", b"deeper"),
            ("demo-1.0/pyproject.toml", b""),
            ("./demo-1.0/PKG-INFO", PKG_INFO),
            ("other-2.0/PKG-INFO", b"second match, never read"),
        ]);
        for name in ["demo-1.0.tar.gz", "demo-1.0.tgz", "demo-1.0.TAR.GZ"] {
            let m = sdist(data.clone(), name).unwrap().unwrap();
            assert_eq!(m, PKG_INFO, "{name}");
        }
    }

    #[test]
    fn sdist_deeper_egg_info_pkg_info_alone_is_none() {
        let data = tar_gz(&[
            ("demo-1.0/src/demo.egg-info/PKG-INFO", PKG_INFO),
            ("demo-1.0/demo.egg-info/PKG-INFO", PKG_INFO),
            ("PKG-INFO", PKG_INFO),
            ("demo-1.0/setup.py", b""),
        ]);
        assert!(sdist(data, "demo-1.0.tar.gz").unwrap().is_none());
        assert!(sdist(tar_gz(&[]), "demo-1.0.tar.gz").unwrap().is_none());
    }

    #[test]
    fn sdist_tar_skips_symlinks_and_directories_named_pkg_info() {
        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_path("demo-1.0/PKG-INFO").unwrap();
        h.set_entry_type(tar::EntryType::Symlink);
        h.set_link_name("/etc/passwd").unwrap();
        h.set_size(0);
        h.set_cksum();
        b.append(&h, &[][..]).unwrap();
        let mut h = tar::Header::new_gnu();
        h.set_path("demo-1.0/PKG-INFO/").unwrap();
        h.set_entry_type(tar::EntryType::Directory);
        h.set_size(0);
        h.set_cksum();
        b.append(&h, &[][..]).unwrap();
        let mut h = tar::Header::new_gnu();
        h.set_path("demo-1.0/PKG-INFO").unwrap();
        h.set_size(PKG_INFO.len() as u64);
        h.set_cksum();
        b.append(&h, PKG_INFO).unwrap();
        let data = gzip(&b.into_inner().unwrap());
        assert_eq!(sdist(data, "demo-1.0.tar.gz").unwrap().unwrap(), PKG_INFO);
    }

    #[test]
    fn sdist_zip() {
        let data = wheel(&[
            ("demo-1.0/src/demo.egg-info/PKG-INFO", b"deeper"),
            ("demo-1.0/PKG-INFO/", b""),
            ("demo-1.0/PKG-INFO", PKG_INFO),
        ]);
        assert_eq!(sdist(data, "demo-1.0.zip").unwrap().unwrap(), PKG_INFO);
        let data = wheel(&[
            ("demo-1.0/src/demo.egg-info/PKG-INFO", PKG_INFO),
            ("../PKG-INFO", PKG_INFO),
            ("/abs/PKG-INFO", PKG_INFO),
        ]);
        assert!(sdist(data, "demo-1.0.zip").unwrap().is_none());
        let err = sdist(b"not a zip".to_vec(), "demo-1.0.zip").unwrap_err();
        assert!(matches!(err, MetadataError::SdistZip { .. }), "{err}");
        assert!(err.to_string().contains("demo-1.0.zip"), "{err}");
    }

    #[test]
    fn sdist_unknown_extension_is_none() {
        let data = tar_gz(&[("demo-1.0/PKG-INFO", PKG_INFO)]);
        for name in [
            "demo-1.0.tar.bz2",
            "demo-1.0.tar.xz",
            "demo-1.0.tar",
            "demo-1.0-py3.8.egg",
            "demo-1.0.tar.gz.asc",
            "demo-1.0-py3-none-any.whl",
        ] {
            assert!(sdist(data.clone(), name).unwrap().is_none(), "{name}");
        }
    }

    #[test]
    fn sdist_corrupt_gzip_names_the_file() {
        let err = sdist(b"not gzip at all".to_vec(), "demo-1.0.tar.gz").unwrap_err();
        assert!(matches!(err, MetadataError::SdistTar { .. }), "{err}");
        assert!(err.to_string().contains("demo-1.0.tar.gz"), "{err}");

        // A valid gzip header followed by a truncated, then garbled, deflate stream.
        let good = tar_gz(&[("demo-1.0/setup.py", &[7; 4096]), ("demo-1.0/PKG-INFO", PKG_INFO)]);
        let mut truncated = good.clone();
        truncated.truncate(good.len() / 2);
        let mut garbled = good;
        for b in garbled.iter_mut().skip(12) {
            *b ^= 0x5a;
        }
        for data in [truncated, garbled] {
            let err = sdist(data, "demo-1.0.tar.gz").unwrap_err();
            assert!(err.to_string().contains("demo-1.0.tar.gz"), "{err}");
        }

        // Valid gzip, not a tar.
        let err = sdist(gzip(&[0xff; 2048]), "demo-1.0.tar.gz").unwrap_err();
        assert!(err.to_string().contains("demo-1.0.tar.gz"), "{err}");
    }

    #[test]
    fn sdist_oversized_pkg_info_is_refused() {
        let big = vec![b'a'; usize::try_from(MAX_METADATA_BYTES).unwrap() + 1];
        let data = tar_gz(&[("demo-1.0/PKG-INFO", &big)]);
        let err = sdist(data, "demo-1.0.tar.gz").unwrap_err();
        assert!(matches!(err, MetadataError::SdistPkgInfoTooLarge { .. }), "{err}");
        assert!(err.to_string().contains("demo-1.0.tar.gz"), "{err}");

        let data = wheel(&[("demo-1.0/PKG-INFO", &big)]);
        let err = sdist(data, "demo-1.0.zip").unwrap_err();
        assert!(matches!(err, MetadataError::SdistPkgInfoTooLarge { .. }), "{err}");

        // Exactly at the limit is fine.
        let data = tar_gz(&[("demo-1.0/PKG-INFO", &big[1..])]);
        assert_eq!(
            sdist(data, "demo-1.0.tar.gz").unwrap().unwrap().len(),
            big.len() - 1
        );
    }

    #[test]
    fn sdist_traversal_and_absolute_paths_not_taken() {
        let hostile = [
            ("../PKG-INFO", b"dotdot" as &[u8]),
            ("/abs/PKG-INFO", b"absolute"),
            ("/PKG-INFO", b"root"),
            ("demo-1.0/../PKG-INFO", b"inner dotdot"),
            ("../demo-1.0/PKG-INFO", b"leading dotdot"),
        ];
        let data = tar_gz(&hostile);
        assert!(sdist(data, "demo-1.0.tar.gz").unwrap().is_none());
        let mut entries = hostile.to_vec();
        entries.push(("demo-1.0/PKG-INFO", PKG_INFO));
        let data = tar_gz(&entries);
        assert_eq!(sdist(data, "demo-1.0.tar.gz").unwrap().unwrap(), PKG_INFO);
    }

    #[test]
    fn sdist_scan_limits() {
        let data = tar_gz(&[
            ("demo-1.0/a", &[0; 10_000]),
            ("demo-1.0/b", b""),
            ("demo-1.0/PKG-INFO", PKG_INFO),
        ]);
        let tight = |bytes, entries| ScanLimits { bytes, entries };
        let run = |data: &[u8], name, limits| extract_sdist_limited(Cursor::new(data.to_vec()), name, limits);
        assert!(run(&data, "demo-1.0.tar.gz", tight(20_000, 3)).unwrap().is_some());

        let err = run(&data, "demo-1.0.tar.gz", tight(5_000, 3)).unwrap_err();
        assert!(
            matches!(err, MetadataError::SdistDecompressesTooLarge { .. }),
            "{err}"
        );
        assert!(
            err.to_string()
                .contains("demo-1.0.tar.gz` decompresses to more than 5000 bytes"),
            "{err}"
        );

        let err = run(&data, "demo-1.0.tar.gz", tight(20_000, 2)).unwrap_err();
        assert!(matches!(err, MetadataError::SdistTooManyEntries { .. }), "{err}");
        assert!(err.to_string().contains("demo-1.0.tar.gz"), "{err}");

        let data = wheel(&[
            ("demo-1.0/a", b""),
            ("demo-1.0/b", b""),
            ("demo-1.0/PKG-INFO", PKG_INFO),
        ]);
        assert!(run(&data, "demo-1.0.zip", tight(0, 3)).unwrap().is_some());
        let err = run(&data, "demo-1.0.zip", tight(0, 2)).unwrap_err();
        assert!(matches!(err, MetadataError::SdistTooManyEntries { .. }), "{err}");
    }
}
