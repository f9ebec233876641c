//! `[sync] follow_dependencies` end to end: `projects = ["demo-app"]` alone, and pip and uv
//! install demo-app (and what it needs) through tufa.

use crate::harness::{Mirror, check, dist_infos, install_uncached, tufa_sync, venv_cmd};

#[test]
fn one_listed_project_installs_with_its_dependencies() {
    let (upstream, dir, config) = Mirror::init(&["demo-app"], false);
    let toml = std::fs::read_to_string(&config).unwrap();
    std::fs::write(
        &config,
        toml.replace("\n[sync]\n", "\n[sync]\nfollow_dependencies = true\n"),
    )
    .unwrap();
    check(tufa_sync(&config), "tufa sync");
    let m = Mirror::serve(upstream, dir, config);
    for tool in ["pip", "uv"] {
        let site = install_uncached(tool, &m.work_dir(&format!("{tool}-home")), &m.url, "demo-app");
        assert_eq!(
            dist_infos(&site),
            [
                "demo_app-1.0.dist-info",
                "demo_lib-1.1.dist-info",
                "demo_util-0.1.dist-info"
            ],
            "{tool}"
        );
    }
}

/// `tufa init` + `requirements = [FILE]` + sync against `upstream`: the published files.
fn mirror_from(
    upstream: &str,
    file: &std::path::Path,
    dir: &std::path::Path,
) -> std::collections::BTreeSet<String> {
    let out = std::process::Command::new(crate::harness::tufa_bin())
        .arg("init")
        .arg(dir)
        .args(["--upstream", upstream])
        .output()
        .unwrap();
    check(out, "tufa init");
    let name = file.file_name().unwrap();
    std::fs::copy(file, dir.join(name)).unwrap();
    let config = dir.join("tufa.toml");
    let toml = std::fs::read_to_string(&config).unwrap();
    let toml = toml
        .replace("\nonline_key = \"keys/online.json\"\n", "\n")
        .replacen(
            "\n[storage]\n",
            &format!("\nrequirements = [{:?}]\n\n[storage]\n", name.to_string_lossy()),
            1,
        );
    std::fs::write(&config, toml).unwrap();
    check(tufa_sync(&config), "tufa sync");
    let mut files = std::collections::BTreeSet::new();
    for entry in std::fs::read_dir(dir.join("data/store/published/projects")).unwrap() {
        let manifest: serde_json::Value =
            serde_json::from_slice(&std::fs::read(entry.unwrap().path()).unwrap()).unwrap();
        let digest = manifest["json"]["raw"]["sha256"].as_str().unwrap().to_owned();
        let blob = dir
            .join("data/store/blobs/sha256")
            .join(&digest[..2])
            .join(&digest[2..4])
            .join(&digest);
        let page: serde_json::Value = serde_json::from_slice(&std::fs::read(blob).unwrap()).unwrap();
        for f in page["files"].as_array().unwrap() {
            files.insert(f["filename"].as_str().unwrap().to_owned());
        }
    }
    files
}

#[test]
fn uv_lock_pylock_and_requirements_mirror_the_same_files() {
    let (upstream, dir, _config) = Mirror::init(&["demo-app"], false);
    let simple = upstream.simple_url();
    // A project locked by real uv against the fake upstream, exported by uv as pylock.toml and
    // as a hashed requirements file.
    let project = dir.path().join("project");
    std::fs::create_dir_all(&project).unwrap();
    std::fs::write(
        project.join("pyproject.toml"),
        "[project]\nname = \"me\"\nversion = \"0.1.0\"\nrequires-python = \">=3.8\"\ndependencies = [\"demo-app\"]\n",
    )
    .unwrap();
    let uv = |args: &[&str]| {
        let out = venv_cmd("uv", dir.path())
            .current_dir(&project)
            .args(args)
            .args(["--index-url", &simple])
            .output()
            .unwrap();
        check(out, &format!("uv {}", args.join(" ")));
    };
    uv(&["lock"]);
    uv(&[
        "export",
        "--format",
        "pylock.toml",
        "--no-emit-project",
        "-o",
        "pylock.toml",
    ]);
    uv(&[
        "export",
        "--format",
        "requirements-txt",
        "--no-emit-project",
        "-o",
        "requirements.txt",
    ]);
    let from_lock = mirror_from(&simple, &project.join("uv.lock"), &dir.path().join("m-uv"));
    let from_pylock = mirror_from(
        &simple,
        &project.join("pylock.toml"),
        &dir.path().join("m-pylock"),
    );
    let from_requirements = mirror_from(
        &simple,
        &project.join("requirements.txt"),
        &dir.path().join("m-req"),
    );
    // The locked versions only: demo-lib 1.1 (newest), not 1.0 or 0.9.
    assert!(
        from_lock.contains("demo_lib-1.1-py3-none-any.whl"),
        "{from_lock:?}"
    );
    assert!(
        !from_lock.iter().any(|f| f.contains("demo_lib-1.0")),
        "{from_lock:?}"
    );
    assert!(
        from_lock.contains("demo_util-0.1-py3-none-any.whl"),
        "{from_lock:?}"
    );
    assert_eq!(from_lock, from_pylock);
    assert_eq!(from_lock, from_requirements);
}

/// The user story of issue 16 against the real PyPI (opt-in: it reaches the internet, for a
/// short named allowlist only): `projects = ["python-dateutil"]` alone, with
/// follow_dependencies, and pip installs python-dateutil (whose newest release needs more than
/// itself) through tufa. Run with `cargo test -p tufa-e2e -- --ignored real_pypi`.
#[test]
#[ignore = "reaches the real PyPI; run with -- --ignored real_pypi"]
fn real_pypi_python_dateutil_installs_from_its_name_alone() {
    let dir = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(crate::harness::tufa_bin())
        .arg("init")
        .arg(dir.path())
        .args(["--project", "python-dateutil"])
        .output()
        .unwrap();
    check(out, "tufa init");
    let config = dir.path().join("tufa.toml");
    let toml = std::fs::read_to_string(&config).unwrap();
    std::fs::write(
        &config,
        toml.replace("\nonline_key = \"keys/online.json\"\n", "\n")
            .replace(
                "\n[sync]\n",
                // Some sandboxes reach PyPI through a proxy on a reserved address.
            "\n[sync]\nfollow_dependencies = true\nlatest_releases = 1\nmax_projects = 20\nallow_private_addresses = true\n",
            ),
    )
    .unwrap();
    let out = check(tufa_sync(&config), "tufa sync from PyPI");
    let summary = String::from_utf8_lossy(&out.stdout);
    assert!(summary.contains("followed as dependencies"), "{summary}");
    let m = Mirror::serve(
        crate::harness::runtime().block_on(tufa_fake_upstream::FakeUpstream::start(
            tufa_fake_upstream::demo_projects(),
        )),
        dir,
        config,
    );
    let home = m.work_dir("pip-home");
    let site = home.join("site");
    let out = venv_cmd("pip", &home)
        .args(["install", "--no-cache-dir", "--index-url", &m.url, "--target"])
        .arg(&site)
        .arg("python-dateutil")
        .output()
        .unwrap();
    check(out, "pip install python-dateutil through tufa");
    assert!(
        dist_infos(&site)
            .iter()
            .any(|d| d.starts_with("python_dateutil-")),
        "{:?}",
        dist_infos(&site)
    );
}

/// A mirror narrowed to Linux by `[sync] environments`, from `app[fast]` in a requirements
/// file: the extra's dependency and the Linux-only one are mirrored, the Windows-only one is
/// not, and pip and uv (on Linux) install `app[fast]` through tufa from what it has.
#[test]
fn extras_and_environments_narrow_the_mirror_and_it_still_installs() {
    use tufa_fake_upstream::{FakeUpstream, ProjectSpec, ReleaseSpec};
    let upstream = crate::harness::runtime().block_on(FakeUpstream::start(vec![
        ProjectSpec::new("app").release(
            ReleaseSpec::new("1.0")
                .wheel_only()
                .requires("core>=1 ; sys_platform == 'linux'")
                .requires("winonly ; sys_platform == 'win32'")
                .provides_extra("fast")
                .requires("speedup ; extra == 'fast'"),
        ),
        ProjectSpec::new("core").release(ReleaseSpec::new("1.0").wheel_only()),
        ProjectSpec::new("winonly").release(ReleaseSpec::new("1.0").wheel_only()),
        ProjectSpec::new("speedup").release(ReleaseSpec::new("1.0").wheel_only()),
    ]));
    let dir = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(crate::harness::tufa_bin())
        .arg("init")
        .arg(dir.path())
        .args(["--upstream", &upstream.simple_url()])
        .output()
        .unwrap();
    check(out, "tufa init");
    std::fs::write(dir.path().join("requirements.txt"), "app[fast]\n").unwrap();
    let config = dir.path().join("tufa.toml");
    let toml = std::fs::read_to_string(&config).unwrap();
    let toml = toml
        .replace("\nonline_key = \"keys/online.json\"\n", "\n")
        .replacen(
            "\n[storage]\n",
            "\nrequirements = [\"requirements.txt\"]\n\n[storage]\n",
            1,
        )
        .replace(
            "\n[sync]\n",
            "\n[sync]\nfollow_dependencies = true\nenvironments = [\"sys_platform == 'linux'\"]\n",
        );
    std::fs::write(&config, toml).unwrap();
    let out = check(tufa_sync(&config), "tufa sync");
    let summary = String::from_utf8_lossy(&out.stdout);
    assert!(
        summary.contains("mirrored 3 project(s): 1 listed, 2 followed as dependencies"),
        "{summary}"
    );
    let published = |p: &str| {
        dir.path()
            .join(format!("data/store/published/projects/{p}.json"))
            .exists()
    };
    assert!(!published("winonly"), "{summary}");
    let m = Mirror::serve(upstream, dir, config);
    for tool in ["pip", "uv"] {
        let site = install_uncached(tool, &m.work_dir(&format!("{tool}-home")), &m.url, "app[fast]");
        assert_eq!(
            dist_infos(&site),
            ["app-1.0.dist-info", "core-1.0.dist-info", "speedup-1.0.dist-info"],
            "{tool}"
        );
    }
}
