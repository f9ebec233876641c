//! OSV advisories: the fixture dump (tests/fixtures/osv) read as a directory and as a zip,
//! tolerant of odd records, and the verdicts it leads to.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Write as _;
use std::path::{Path, PathBuf};

use tufa_policy::{Advisories, FileFacts, Policy, PolicyConfig, RuleKind, Severity, Verdict};
use tufa_pypi::{DistFilename, ProjectName};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/osv")
}

fn verdict(p: &Policy, project: &str, file: &str) -> Verdict {
    let project = ProjectName::new(project).unwrap();
    let filename = DistFilename::parse(file).unwrap();
    p.file(
        &FileFacts {
            project: &project,
            filename: &filename,
            upload_time: None,
            yanked: false,
            size: None,
            requires_python: None,
        },
        "2026-12-03T00:00:00Z".parse().unwrap(),
    )
}

fn check_dump(advisories: Advisories, unreadable: &[String]) {
    assert_eq!(advisories.records(), 6, "{unreadable:?}");
    assert_eq!(unreadable.len(), 2, "{unreadable:?}");
    assert!(
        unreadable
            .iter()
            .any(|u| u.contains("truncated.json") && u.contains("not JSON"))
    );
    assert!(
        unreadable
            .iter()
            .any(|u| u.contains("no-id.json") && u.contains("no `id`"))
    );

    // Malicious records block whatever the severity setting.
    let p = Policy::default().with_advisories(advisories.clone(), None);
    let v = verdict(&p, "demo-lib", "demo_lib-1.1-py3-none-any.whl");
    assert!(
        matches!(
            v,
            Verdict::Block {
                rule: RuleKind::Advisory,
                ..
            }
        ),
        "{v}"
    );
    assert_eq!(
        v.to_string(),
        "blocked by advisories: demo-lib 1.1 is affected by MAL-2026-0001 (a malicious-package record)"
    );
    assert!(!verdict(&p, "demo-lib", "demo_lib-1.0-py3-none-any.whl").is_blocked());
    // Vulnerabilities do not block without block_severity.
    assert!(!verdict(&p, "demo-util", "demo_util-0.1-py3-none-any.whl").is_blocked());
    // The npm record and the withdrawn one never apply.
    assert!(!verdict(&p, "foo-bar-baz", "foo_bar_baz-2.0.tar.gz").is_blocked());

    // block_severity = high: the HIGH range up to (not including) 0.2 blocks, MODERATE does not.
    let p = Policy::default().with_advisories(advisories.clone(), Some(Severity::High));
    let v = verdict(&p, "demo-util", "demo_util-0.1-py3-none-any.whl");
    assert!(
        v.to_string()
            .contains("GHSA-aaaa-bbbb-cccc (severity high, at or above block_severity high)"),
        "{v}"
    );
    assert!(!verdict(&p, "demo-util", "demo_util-0.2-py3-none-any.whl").is_blocked());
    assert!(!verdict(&p, "demo-app", "demo_app-1.0-py3-none-any.whl").is_blocked());
    // A record with only a CVSS vector: its base score (9.8) rates it critical.
    let p = Policy::default().with_advisories(advisories.clone(), Some(Severity::Critical));
    let v = verdict(&p, "foo-bar-baz", "foo_bar_baz-2.0.tar.gz");
    assert!(v.to_string().contains("PYSEC-2026-9 (severity critical"), "{v}");
    assert!(!verdict(&p, "foo-bar-baz", "foo_bar_baz-2.1.tar.gz").is_blocked());
    assert!(!verdict(&p, "demo-util", "demo_util-0.1-py3-none-any.whl").is_blocked());
    // block_severity = medium: the last_affected range covers exactly 1.0.
    let p = Policy::default().with_advisories(advisories, Some(Severity::Medium));
    assert!(verdict(&p, "demo-app", "demo_app-1.0-py3-none-any.whl").is_blocked());
    assert!(!verdict(&p, "demo-app", "demo_app-1.1-py3-none-any.whl").is_blocked());
    assert!(!verdict(&p, "demo-app", "demo_app-0.9-py3-none-any.whl").is_blocked());
}

#[test]
fn a_directory_dump() {
    let (advisories, unreadable) = Advisories::load(&fixtures()).unwrap();
    check_dump(advisories, &unreadable);
}

#[test]
fn an_all_zip_dump() {
    let dir = tempfile::tempdir().unwrap();
    let zip_path = dir.path().join("all.zip");
    let mut zip = zip::ZipWriter::new(std::fs::File::create(&zip_path).unwrap());
    let mut names: Vec<_> = std::fs::read_dir(fixtures())
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    names.sort();
    for path in names {
        zip.start_file(
            path.file_name().unwrap().to_string_lossy(),
            zip::write::SimpleFileOptions::default(),
        )
        .unwrap();
        zip.write_all(&std::fs::read(&path).unwrap()).unwrap();
    }
    zip.finish().unwrap();
    let (advisories, unreadable) = Advisories::load(&zip_path).unwrap();
    check_dump(advisories, &unreadable);
}

#[test]
fn the_config_names_the_dump_relative_to_the_config_file() {
    let base = Path::new(env!("CARGO_MANIFEST_DIR"));
    let c: PolicyConfig =
        toml::from_str("[advisories]\nosv = \"tests/fixtures/osv\"\nblock_severity = \"critical\"").unwrap();
    Policy::check_paths(&c, base).unwrap();
    let (p, unreadable) = Policy::load(&c, base).unwrap();
    assert_eq!(unreadable.len(), 2);
    assert!(verdict(&p, "demo-lib", "demo_lib-1.1.tar.gz").is_blocked());
    let missing: PolicyConfig = toml::from_str("[advisories]\nosv = \"nowhere\"").unwrap();
    let e = Policy::check_paths(&missing, base).unwrap_err();
    assert!(
        e.to_string()
            .starts_with("policy.advisories.osv: `nowhere` does not exist"),
        "{e}"
    );
    assert!(
        toml::from_str::<PolicyConfig>("[advisories]\nosv = \"x\"\nblock_severity = \"severe\"").is_err()
    );
}
