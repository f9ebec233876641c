//! Real uv against tufa.

use crate::harness::{Mirror, check, dist_infos, venv_cmd};

#[test]
fn uv_pip_install_resolves_through_tufa() {
    let m = Mirror::start();
    let target = m.work_dir("site");
    let out = venv_cmd("uv", m.dir.path())
        .args(["pip", "install", "--no-cache", "--index-url", &m.url, "--target"])
        .arg(&target)
        .arg("demo-app")
        .output()
        .unwrap();
    check(out, "uv pip install");
    assert_eq!(
        dist_infos(&target),
        [
            "demo_app-1.0.dist-info",
            "demo_lib-1.1.dist-info",
            "demo_util-0.1.dist-info"
        ]
    );
    let paths = m.served_paths();
    assert!(
        paths.iter().any(|p| p.ends_with(".whl.metadata")),
        "uv should use PEP 658 metadata: {paths:?}"
    );
    // uv accepts zstd: each project page it read was the JSON page's zstd variant (as long
    // as the manifest says), which it decoded and resolved from above.
    let served = m.served();
    for project in ["demo-app", "demo-lib", "demo-util"] {
        let manifest = m
            .dir
            .path()
            .join(format!("data/store/published/projects/{project}.json"));
        let manifest: serde_json::Value = serde_json::from_slice(&std::fs::read(&manifest).unwrap()).unwrap();
        let zstd_len = manifest["json"]["zstd"]["len"].as_u64().unwrap();
        assert_ne!(zstd_len, manifest["json"]["raw"]["len"].as_u64().unwrap());
        let page = format!("/simple/{project}/");
        let sent: Vec<u64> = served
            .iter()
            .filter(|(path, _)| *path == page)
            .map(|&(_, bytes)| bytes)
            .collect();
        assert!(!sent.is_empty(), "{page} never asked for: {served:?}");
        assert!(
            sent.iter().all(|&b| b == zstd_len),
            "{page}: {sent:?}, zstd variant {zstd_len}"
        );
    }
}

#[test]
fn uv_lock_against_the_mirror() {
    let m = Mirror::start();
    let project = m.work_dir("proj");
    std::fs::write(
        project.join("pyproject.toml"),
        "[project]\nname = \"consumer\"\nversion = \"0.1.0\"\nrequires-python = \">=3.8\"\ndependencies = [\"demo-app\"]\n",
    )
    .unwrap();
    let out = venv_cmd("uv", m.dir.path())
        .current_dir(&project)
        .args(["lock", "--default-index", &m.url])
        .output()
        .unwrap();
    check(out, "uv lock");
    let lock = std::fs::read_to_string(project.join("uv.lock")).unwrap();
    for (name, version) in [("demo-app", "1.0"), ("demo-lib", "1.1"), ("demo-util", "0.1")] {
        assert!(
            lock.contains(&format!("name = \"{name}\"\nversion = \"{version}\"")),
            "{name} {version} missing from uv.lock:\n{lock}"
        );
    }
    // Every locked artifact comes from the mirror, with its sha256.
    assert!(lock.contains(&m.url.trim_end_matches('/').to_string()), "{lock}");
    let wheel = "demo_util-0.1-py3-none-any.whl";
    let sha = m.upstream.file_sha256(wheel).unwrap();
    assert!(lock.contains(&format!("sha256:{sha}")), "{lock}");
}
