//! Extracting a wheel's `METADATA` (PEP 658 core metadata) locally, so the mirror serves it
//! even when upstream does not.

use std::io::{Read, Seek};

use tufa_pypi::filename::WheelFilename;

/// The largest METADATA accepted (decompressed). Real ones are a few KiB to a few hundred.
pub const MAX_METADATA_BYTES: u64 = 16 * 1024 * 1024;

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
}
