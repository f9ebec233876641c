//! Project names (PEP 503), PEP 440 versions, sha256 digests and distribution filenames.
//!
//! Asserts: normalising a name is idempotent and yields `[a-z0-9]+(-[a-z0-9]+)*`; a parsed
//! version re-renders to a string that parses to the same version; an accepted filename is a
//! safe path component, keeps its exact bytes, re-parses equal, and (wheels, sdists) re-rendered
//! from its parts parses to the same project and version; a digest round-trips through hex.
#![no_main]

use std::str::FromStr;

use libfuzzer_sys::fuzz_target;
use tufa_pypi::{DistFilename, DistKind, ProjectName, Sha256Digest, Version, check_safe_component};

fn check_name(s: &str) {
    let Ok(name) = ProjectName::new(s) else { return };
    let n = name.as_str();
    assert!(!n.is_empty() && n.len() <= s.len(), "{s:?} -> {n:?}");
    assert!(
        n.split('-').all(
            |part| !part.is_empty() && part.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        ),
        "{s:?} normalised to {n:?}"
    );
    assert_eq!(
        ProjectName::new(n).as_ref(),
        Ok(&name),
        "normalising {n:?} again changed it"
    );
    assert!(
        check_safe_component(n).is_ok(),
        "normalised name {n:?} is not a safe path component"
    );
    let json = serde_json::to_string(&name).unwrap_or_else(|e| panic!("{e}"));
    let back: ProjectName = serde_json::from_str(&json).unwrap_or_else(|e| panic!("{json}: {e}"));
    assert_eq!(back, name);
}

fn check_version(s: &str) {
    let Ok(v) = Version::from_str(s) else { return };
    let rendered = v.to_string();
    let again = Version::from_str(&rendered).unwrap_or_else(|e| panic!("{s:?} -> {rendered:?}: {e}"));
    assert_eq!(again, v, "{s:?} -> {rendered:?}");
    assert_eq!(again.to_string(), rendered, "{s:?}: rendering is not stable");
}

fn check_filename(s: &str) {
    let Ok(f) = DistFilename::parse(s) else { return };
    assert_eq!(f.as_str(), s);
    assert_eq!(f.to_string(), s);
    assert!(check_safe_component(s).is_ok(), "accepted unsafe filename {s:?}");
    assert!(
        !s.contains(['/', '\\', '\0']) && !s.contains("..") && !s.starts_with(['.', '-']),
        "accepted {s:?}"
    );
    assert!(!s.chars().any(char::is_control), "accepted {s:?}");
    assert_eq!(
        DistFilename::parse(f.as_str()).as_ref(),
        Ok(&f),
        "re-parse of {s:?} differs"
    );
    match f.kind() {
        DistKind::Wheel => {
            let w = f
                .as_wheel()
                .unwrap_or_else(|| panic!("{s:?}: wheel without parts"));
            let mut rendered = format!("{}-{}", w.name.as_dist_info_name(), w.version);
            if let Some(b) = &w.build_tag {
                rendered.push('-');
                rendered.push_str(b);
            }
            for tags in [&w.python_tags, &w.abi_tags, &w.platform_tags] {
                rendered.push('-');
                rendered.push_str(&tags.join("."));
            }
            rendered.push_str(".whl");
            // The normalised version can be longer than the original (`1a` -> `1a0`).
            if rendered.len() <= tufa_pypi::filename::MAX_FILENAME_LEN {
                let again = DistFilename::parse(&rendered)
                    .unwrap_or_else(|e| panic!("{s:?} re-rendered as {rendered:?}: {e}"));
                assert_eq!(again.project(), f.project(), "{s:?} vs {rendered:?}");
                assert_eq!(again.version(), f.version(), "{s:?} vs {rendered:?}");
                assert_eq!(again.as_wheel(), Some(w), "{s:?} vs {rendered:?}");
            }
        }
        DistKind::Sdist => {
            let project = f
                .project()
                .unwrap_or_else(|| panic!("{s:?}: sdist without a project"));
            let version = f
                .version()
                .unwrap_or_else(|| panic!("{s:?}: sdist without a version"));
            assert!(ProjectName::new(project.as_str()).is_ok());
            let ext = if s.ends_with(".zip") { "zip" } else { "tar.gz" };
            let rendered = format!("{}-{version}.{ext}", project.as_dist_info_name());
            if rendered.len() <= tufa_pypi::filename::MAX_FILENAME_LEN {
                let again = DistFilename::parse(&rendered)
                    .unwrap_or_else(|e| panic!("{s:?} re-rendered as {rendered:?}: {e}"));
                assert_eq!(again.project(), Some(project), "{s:?} vs {rendered:?}");
                assert_eq!(again.version(), Some(version), "{s:?} vs {rendered:?}");
            }
        }
        DistKind::Legacy => {}
    }
    if let Some(p) = f.project() {
        check_name(p.as_str());
    }
}

fn check_digest(s: &str) {
    let Ok(d) = Sha256Digest::from_str(s) else { return };
    assert!(d.to_hex().eq_ignore_ascii_case(s), "{s:?} -> {}", d.to_hex());
    assert_eq!(Sha256Digest::from_str(&d.to_hex()), Ok(d));
}

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else { return };
    check_name(s);
    check_version(s);
    check_filename(s);
    check_digest(s);
    // The text after the first `-` as a version (how filenames feed the version parser).
    if let Some((_, rest)) = s.split_once('-') {
        check_version(rest);
    }
});
