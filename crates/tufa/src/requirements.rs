//! Requirements files as an allowlist (`requirements = ["requirements.txt"]` in tufa.toml):
//! every PEP 508 requirement names a project to mirror; a version specifier limits the
//! versions mirrored, and `--hash=sha256:…` options pin the files. Lock files pin exactly:
//! a PEP 751 `pylock.toml` (or `pylock.<name>.toml`) and a `uv.lock` give each package's
//! version and the sha256 of each of its files; packages not from an index (the project
//! itself, paths, git, editable) are skipped.
//!
//! pip's format: one requirement per line, `#` comments, `\` continuations, `-r`/`--requirement`
//! includes (relative to the including file). Options that are not about what to mirror
//! (`--index-url`, `--extra-index-url`, `--find-links`, `--trusted-host`, `--pre`,
//! `--prefer-binary`, `--only-binary`, `--no-binary`, `-c` constraints) are tolerated and
//! ignored. A requirement that is not on an index (a URL, a path, `-e`) is an error: tufa
//! mirrors an index. Requirements are parsed with `pep508_rs`; every listed requirement is
//! mirrored whatever its marker, and the extras it names (`requests[socks]`) are followed with
//! `[sync] follow_dependencies`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::str::FromStr as _;

use pep440_rs::VersionSpecifiers;
use tufa_pypi::{ProjectName, Sha256Digest};

pub use tufa_sync::Pins;

/// A project the requirements files name: its pins, the extras asked of it, and where.
#[derive(Debug, Clone, Default)]
pub struct Listed {
    pub pins: Pins,
    pub extras: BTreeSet<String>,
    /// `file:line: requirement` for each mention.
    pub sources: Vec<String>,
}

/// A requirements file that cannot be used: the file, the line and the reason.
#[derive(Debug, thiserror::Error)]
#[error("{file}:{line}: {reason}")]
pub struct RequirementsError {
    pub file: PathBuf,
    pub line: usize,
    pub reason: String,
}

/// Options that take a value and do not change what is mirrored.
const IGNORED_WITH_VALUE: &[&str] = &[
    "-i",
    "--index-url",
    "--extra-index-url",
    "-f",
    "--find-links",
    "--trusted-host",
    "-c",
    "--constraint",
    "--only-binary",
    "--no-binary",
    "--config-settings",
];
const IGNORED_FLAGS: &[&str] = &["--pre", "--prefer-binary", "--no-index", "--require-hashes"];

/// Reads `files` (and what they include): the projects and their pins.
pub fn read(files: &[PathBuf]) -> Result<BTreeMap<ProjectName, Listed>, RequirementsError> {
    let mut out = BTreeMap::new();
    let mut seen = BTreeSet::new();
    for file in files {
        read_file(file, &mut out, &mut seen, 0)?;
    }
    Ok(out)
}

fn read_file(
    file: &Path,
    out: &mut BTreeMap<ProjectName, Listed>,
    seen: &mut BTreeSet<PathBuf>,
    depth: usize,
) -> Result<(), RequirementsError> {
    let err = |line: usize, reason: String| RequirementsError {
        file: file.to_owned(),
        line,
        reason,
    };
    let base = file
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    if base == "uv.lock" {
        return read_lock(file, LockFormat::Uv, out);
    }
    if base == "pylock.toml" || (base.starts_with("pylock.") && base.ends_with(".toml")) {
        return read_lock(file, LockFormat::Pylock, out);
    }
    if depth > 16 {
        return Err(err(0, "includes nest more than 16 deep".into()));
    }
    let canonical = std::fs::canonicalize(file).unwrap_or_else(|_| file.to_owned());
    if !seen.insert(canonical) {
        return Ok(());
    }
    let text = std::fs::read_to_string(file).map_err(|e| err(0, format!("cannot read it: {e}")))?;
    let mut logical: Vec<(usize, String)> = Vec::new();
    let mut pending: Option<(usize, String)> = None;
    for (i, raw) in text.lines().enumerate() {
        let number = i + 1;
        let (start, mut acc) = pending.take().unwrap_or((number, String::new()));
        if let Some(cont) = raw.strip_suffix('\\') {
            acc.push_str(cont);
            acc.push(' ');
            pending = Some((start, acc));
            continue;
        }
        acc.push_str(raw);
        logical.push((start, acc));
    }
    if let Some(last) = pending {
        logical.push(last);
    }
    for (number, line) in logical {
        // A comment starts at `#` at the line start or after whitespace.
        let line = match line.find(" #").or_else(|| line.starts_with('#').then_some(0)) {
            Some(at) => &line[..at],
            None => line.as_str(),
        };
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let mut words = line.split_whitespace();
        let first = words.next().unwrap_or_default();
        if first.starts_with('-') {
            let (opt, inline) = match first.split_once('=') {
                Some((o, v)) => (o, Some(v.to_owned())),
                None => (first, None),
            };
            let value = inline.or_else(|| words.next().map(str::to_owned));
            match opt {
                "-r" | "--requirement" => {
                    let target = value.ok_or_else(|| err(number, format!("`{opt}` needs a file")))?;
                    let included = file.parent().unwrap_or(Path::new(".")).join(target);
                    read_file(&included, out, seen, depth + 1)?;
                }
                "-e" | "--editable" => {
                    return Err(err(
                        number,
                        "an editable requirement is not on an index; tufa mirrors an index".into(),
                    ));
                }
                o if IGNORED_WITH_VALUE.contains(&o) || IGNORED_FLAGS.contains(&o) => {}
                o => return Err(err(number, format!("unknown option `{o}`"))),
            }
            continue;
        }
        // The requirement, then its per-requirement options (`--hash=sha256:…`).
        let (requirement, options) = match line.find(" --") {
            Some(at) => (&line[..at], &line[at..]),
            None => (line, ""),
        };
        let req = tufa_pypi::metadata::parse_requirement(requirement).map_err(|e| {
            err(
                number,
                format!("`{}` is not a PEP 508 requirement: {e}", requirement.trim()),
            )
        })?;
        let name =
            ProjectName::new(req.name.as_ref()).map_err(|e| err(number, format!("`{}`: {e}", req.name)))?;
        let specifiers = match req.version_or_url {
            None => None,
            Some(pep508_rs::VersionOrUrl::VersionSpecifier(spec)) => {
                let text = spec.to_string();
                Some(VersionSpecifiers::from_str(&text).map_err(|e| err(number, format!("`{text}`: {e}")))?)
            }
            Some(pep508_rs::VersionOrUrl::Url(url)) => {
                return Err(err(
                    number,
                    format!("`{name}` comes from `{url}`, not from an index; tufa mirrors an index"),
                ));
            }
        };
        let listed = out.entry(name).or_default();
        listed.extras.extend(req.extras.iter().map(ToString::to_string));
        listed
            .sources
            .push(format!("{}:{number}: {}", file.display(), requirement.trim()));
        let pins = &mut listed.pins;
        pins.specifiers.push(specifiers);
        for option in options.split_whitespace() {
            let Some(hash) = option.strip_prefix("--hash=") else {
                return Err(err(number, format!("unknown requirement option `{option}`")));
            };
            let Some(hex) = hash.strip_prefix("sha256:") else {
                return Err(err(
                    number,
                    format!("`{hash}`: only sha256 hashes can be checked against the index"),
                ));
            };
            let digest = hex
                .parse::<Sha256Digest>()
                .map_err(|e| err(number, format!("`{hash}`: {e}")))?;
            pins.sha256.insert(digest);
        }
    }
    Ok(())
}

#[derive(Clone, Copy)]
enum LockFormat {
    Uv,
    Pylock,
}

/// A lock file's packages from an index: `name==version` and every file's sha256.
fn read_lock(
    file: &Path,
    format: LockFormat,
    out: &mut BTreeMap<ProjectName, Listed>,
) -> Result<(), RequirementsError> {
    let err = |reason: String| RequirementsError {
        file: file.to_owned(),
        line: 0,
        reason,
    };
    let text = std::fs::read_to_string(file).map_err(|e| err(format!("cannot read it: {e}")))?;
    let doc: toml::Value = toml::from_str(&text).map_err(|e| {
        let line = e
            .span()
            .map_or(0, |s| text[..s.start.min(text.len())].matches('\n').count() + 1);
        RequirementsError {
            file: file.to_owned(),
            line,
            reason: format!("not a valid lock file: {}", e.message()),
        }
    })?;
    let (key, hashes_of): (&str, fn(&toml::Value) -> Vec<String>) = match format {
        LockFormat::Uv => ("package", uv_hashes),
        LockFormat::Pylock => ("packages", pylock_hashes),
    };
    let packages = doc.get(key).and_then(toml::Value::as_array).ok_or_else(|| {
        err(format!(
            "no `[[{key}]]` tables: not a {} file",
            match format {
                LockFormat::Uv => "uv.lock",
                LockFormat::Pylock => "pylock.toml",
            }
        ))
    })?;
    for (i, package) in packages.iter().enumerate() {
        let what = || format!("[[{key}]] #{}", i + 1);
        let name = package
            .get("name")
            .and_then(toml::Value::as_str)
            .ok_or_else(|| err(format!("{} has no name", what())))?;
        let from_index = match format {
            LockFormat::Uv => package.get("source").and_then(|s| s.get("registry")).is_some(),
            LockFormat::Pylock => package.get("wheels").is_some() || package.get("sdist").is_some(),
        };
        if !from_index {
            continue;
        }
        let name = ProjectName::new(name).map_err(|e| err(format!("{}: {e}", what())))?;
        let version = package
            .get("version")
            .and_then(toml::Value::as_str)
            .ok_or_else(|| err(format!("{} (`{name}`) has no version", what())))?;
        let spec = VersionSpecifiers::from_str(&format!("=={version}"))
            .map_err(|e| err(format!("`{name}` version `{version}`: {e}")))?;
        let listed = out.entry(name.clone()).or_default();
        listed
            .sources
            .push(format!("{}: {name}=={version}", file.display()));
        let pins = &mut listed.pins;
        pins.specifiers.push(Some(spec));
        for hash in hashes_of(package) {
            let hex = hash.strip_prefix("sha256:").unwrap_or(&hash);
            let digest = hex
                .parse::<Sha256Digest>()
                .map_err(|e| err(format!("`{name}`: hash `{hash}`: {e}")))?;
            pins.sha256.insert(digest);
        }
    }
    Ok(())
}

/// uv.lock: `sdist.hash` and `wheels[].hash`, `sha256:HEX`.
fn uv_hashes(package: &toml::Value) -> Vec<String> {
    let sdist = package.get("sdist").and_then(|s| s.get("hash"));
    let wheels = package
        .get("wheels")
        .and_then(toml::Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|w| w.get("hash"));
    sdist
        .into_iter()
        .chain(wheels)
        .filter_map(|h| h.as_str().map(str::to_owned))
        .filter(|h| h.starts_with("sha256:"))
        .collect()
}

/// pylock.toml: `sdist.hashes.sha256` and `wheels[].hashes.sha256`.
fn pylock_hashes(package: &toml::Value) -> Vec<String> {
    let sdist = package.get("sdist");
    let wheels = package
        .get("wheels")
        .and_then(toml::Value::as_array)
        .into_iter()
        .flatten();
    sdist
        .into_iter()
        .chain(wheels)
        .filter_map(|f| f.get("hashes")?.get("sha256")?.as_str().map(str::to_owned))
        .collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        p
    }

    #[test]
    fn pip_format_with_includes_hashes_and_tolerated_options() {
        let dir = tempfile::tempdir().unwrap();
        let h = "a".repeat(64);
        write(dir.path(), "base.txt", "idna>=3  # a comment\n");
        let main = write(
            dir.path(),
            "requirements.txt",
            &format!(
                "--index-url https://pypi.org/simple/\n# top\n-r base.txt\nDemo_Lib==1.0 \\\n    --hash=sha256:{h}\nrequests[socks] >= 2.0 ; python_version > \"3.8\"\n--pre\n"
            ),
        );
        let pins = read(&[main]).unwrap();
        let names: Vec<&str> = pins.keys().map(ProjectName::as_str).collect();
        assert_eq!(names, ["demo-lib", "idna", "requests"]);
        let requests = &pins[&ProjectName::new("requests").unwrap()];
        assert_eq!(requests.extras.iter().collect::<Vec<_>>(), ["socks"]);
        assert!(
            requests.sources[0]
                .ends_with("requirements.txt:6: requests[socks] >= 2.0 ; python_version > \"3.8\""),
            "{:?}",
            requests.sources
        );
        let lib = &pins[&ProjectName::new("demo-lib").unwrap()].pins;
        assert_eq!(lib.specifiers.len(), 1);
        assert!(
            lib.specifiers[0]
                .as_ref()
                .unwrap()
                .contains(&"1.0".parse().unwrap())
        );
        assert!(
            !lib.specifiers[0]
                .as_ref()
                .unwrap()
                .contains(&"1.1".parse().unwrap())
        );
        assert_eq!(lib.sha256.len(), 1);
    }

    #[test]
    fn lock_files_pin_versions_and_every_file() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b, c) = ("a".repeat(64), "b".repeat(64), "c".repeat(64));
        let uv = write(
            dir.path(),
            "uv.lock",
            &format!(
                r#"version = 1
requires-python = ">=3.8"

[[package]]
name = "demo-app"
version = "1.0"
source = {{ registry = "http://127.0.0.1:1/simple/" }}
sdist = {{ url = "http://x/demo_app-1.0.tar.gz", hash = "sha256:{a}", size = 1 }}
wheels = [{{ url = "http://x/demo_app-1.0-py3-none-any.whl", hash = "sha256:{b}", size = 1 }}]

[[package]]
name = "me"
version = "0.1.0"
source = {{ virtual = "." }}
"#
            ),
        );
        let pins = read(&[uv]).unwrap();
        assert_eq!(pins.len(), 1, "the project itself is not from an index");
        let app = &pins[&ProjectName::new("demo-app").unwrap()].pins;
        assert!(
            app.specifiers[0]
                .as_ref()
                .unwrap()
                .contains(&"1.0".parse().unwrap())
        );
        assert_eq!(app.sha256.len(), 2);

        let pylock = write(
            dir.path(),
            "pylock.toml",
            &format!(
                r#"lock-version = "1.0"
created-by = "pip"

[[packages]]
name = "demo-util"
version = "0.1"
index = "http://127.0.0.1:1/simple/"
wheels = [{{ name = "demo_util-0.1-py3-none-any.whl", url = "http://x/w.whl", hashes = {{ sha256 = "{c}" }} }}]
"#
            ),
        );
        let pins = read(&[pylock]).unwrap();
        assert_eq!(pins[&ProjectName::new("demo-util").unwrap()].pins.sha256.len(), 1);

        let broken = write(
            dir.path(),
            "uv.lock",
            "version = 1
[[package]
",
        );
        let e = read(&[broken]).unwrap_err();
        assert!(e.to_string().contains("uv.lock:2: not a valid lock file"), "{e}");
    }

    #[test]
    fn errors_name_file_line_and_reason() {
        let dir = tempfile::tempdir().unwrap();
        for (text, line, needle) in [
            ("idna\nnot a requirement!\n", 2, "is not a PEP 508 requirement"),
            ("-e ./local\n", 1, "editable"),
            (
                "demo @ https://example.invalid/demo.whl\n",
                1,
                "not from an index",
            ),
            ("demo==1.0 --hash=md5:abc\n", 1, "only sha256"),
            ("--frobnicate\n", 1, "unknown option `--frobnicate`"),
            ("-r missing.txt\n", 0, "cannot read it"),
        ] {
            let f = write(dir.path(), "r.txt", text);
            let e = read(&[f]).unwrap_err();
            let shown = e.to_string();
            assert!(shown.contains(needle), "{text}: {shown}");
            if line > 0 {
                assert_eq!(e.line, line, "{text}: {shown}");
                assert!(shown.contains(&format!("r.txt:{line}:")), "{shown}");
            }
        }
    }
}
