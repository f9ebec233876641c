//! Real pip against tufa.

use crate::harness::{Mirror, check, dist_infos, venv_cmd};

#[test]
fn pip_installs_a_dependency_chain() {
    let m = Mirror::start();
    let target = m.work_dir("site");
    let out = venv_cmd("pip", m.dir.path())
        .args(["install", "--no-cache-dir", "--index-url", &m.url, "--target"])
        .arg(&target)
        .args(["demo-app", "foo-bar-baz"])
        .output()
        .unwrap();
    check(out, "pip install");
    assert_eq!(
        dist_infos(&target),
        [
            "demo_app-1.0.dist-info",
            "demo_lib-1.1.dist-info",
            "demo_util-0.1.dist-info",
            "foo_bar_baz-2.0.dist-info"
        ]
    );
    let init = std::fs::read_to_string(target.join("demo_lib/__init__.py")).unwrap();
    assert!(init.contains("1.1"), "{init}");
}

#[test]
fn pip_resolves_from_metadata_without_downloading_wheels() {
    let m = Mirror::start();
    let report = m.dir.path().join("report.json");
    let out = venv_cmd("pip", m.dir.path())
        .args([
            "install",
            "--no-cache-dir",
            "--dry-run",
            "--ignore-installed",
            "--index-url",
            &m.url,
            "--report",
        ])
        .arg(&report)
        .arg("demo-app")
        .output()
        .unwrap();
    check(out, "pip install --dry-run");
    let report = std::fs::read_to_string(&report).unwrap();
    for name in ["demo-app", "demo-lib", "demo-util"] {
        assert!(
            report.contains(&format!("\"name\": \"{name}\"")),
            "{name} missing from the report: {report}"
        );
    }
    let paths = m.served_paths();
    let metadata: Vec<_> = paths.iter().filter(|p| p.ends_with(".whl.metadata")).collect();
    let wheels: Vec<_> = paths.iter().filter(|p| p.ends_with(".whl")).collect();
    assert!(
        metadata.len() >= 3,
        "pip should fetch PEP 658 metadata: {paths:?}"
    );
    assert!(
        wheels.is_empty(),
        "a dry run must not download wheels when metadata is served: {wheels:?}"
    );
}

#[test]
fn pip_require_hashes_accepts_the_right_hash_and_refuses_a_wrong_one() {
    let m = Mirror::start();
    let wheel = "demo_util-0.1-py3-none-any.whl";
    let sha = m.upstream.file_sha256(wheel).unwrap();
    let good = m.dir.path().join("good.txt");
    std::fs::write(&good, format!("demo-util==0.1 --hash=sha256:{sha}\n")).unwrap();
    let target = m.work_dir("site");
    let out = venv_cmd("pip", m.dir.path())
        .args([
            "install",
            "--no-cache-dir",
            "--require-hashes",
            "--only-binary",
            ":all:",
            "--index-url",
            &m.url,
        ])
        .arg("--target")
        .arg(&target)
        .arg("-r")
        .arg(&good)
        .output()
        .unwrap();
    check(out, "pip install --require-hashes");
    assert_eq!(dist_infos(&target), ["demo_util-0.1.dist-info"]);

    let bad = m.dir.path().join("bad.txt");
    std::fs::write(&bad, format!("demo-util==0.1 --hash=sha256:{}\n", "0".repeat(64))).unwrap();
    let out = venv_cmd("pip", m.dir.path())
        .args([
            "install",
            "--no-cache-dir",
            "--require-hashes",
            "--only-binary",
            ":all:",
            "--index-url",
            &m.url,
        ])
        .arg("--target")
        .arg(m.work_dir("site2"))
        .arg("-r")
        .arg(&bad)
        .output()
        .unwrap();
    assert!(!out.status.success(), "a wrong hash must fail");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("HASHES"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn pip_download_fetches_the_exact_upstream_bytes() {
    let m = Mirror::start();
    let dest = m.work_dir("dl");
    let out = venv_cmd("pip", m.dir.path())
        .args([
            "download",
            "--no-cache-dir",
            "--no-deps",
            "--only-binary",
            ":all:",
            "--index-url",
            &m.url,
            "-d",
        ])
        .arg(&dest)
        .arg("demo-lib==1.0")
        .output()
        .unwrap();
    check(out, "pip download wheel");
    let wheel = "demo_lib-1.0-py3-none-any.whl";
    assert_eq!(
        std::fs::read(dest.join(wheel)).unwrap(),
        m.upstream.file_bytes(wheel).unwrap()
    );
}

#[test]
fn pip_skips_yanked_releases_unless_pinned() {
    let m = Mirror::start();
    // demo-lib 0.9 is yanked upstream (PEP 592): unpinned installs never pick it (see
    // `pip_installs_a_dependency_chain`, which gets 1.1), an exact pin still does, with a warning.
    let target = m.work_dir("site");
    let out = venv_cmd("pip", m.dir.path())
        .args([
            "install",
            "--no-cache-dir",
            "--no-deps",
            "--index-url",
            &m.url,
            "--target",
        ])
        .arg(&target)
        .arg("demo-lib==0.9")
        .output()
        .unwrap();
    let out = check(out, "pip install a pinned yanked release");
    assert_eq!(dist_infos(&target), ["demo_lib-0.9.dist-info"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("yanked"),
        "pip should warn about the yank: {stderr}"
    );
}
