//! `[sync] follow_dependencies`: an allowlist of one project mirrors what it needs,
//! transitively, says why, and keeps it on the next sync.

use tufa_fake_upstream::demo_projects;

use crate::{MirrorDir, Upstream};

#[test]
fn following_dependencies_mirrors_the_closure_and_keeps_it() {
    let up = Upstream::start(demo_projects());
    let m = MirrorDir::init(&up, &["demo-app"]);
    m.edit_config(|text| text.replace("\n[sync]\n", "\n[sync]\nfollow_dependencies = true\n"));
    let sync = || {
        let out = m.tufa(&["sync"]).output().unwrap();
        assert!(out.status.success(), "{out:?}");
        String::from_utf8(out.stdout).unwrap()
    };
    let first = sync();
    // demo-app → demo-lib (>=1.0) → demo-util (from demo-lib 1.1), found round by round.
    assert!(
        first.contains("following dependencies: adding demo-lib (needed by demo-app)"),
        "{first}"
    );
    assert!(first.contains("demo-util (needed by demo-lib)"), "{first}");
    // Each round reads only the pages of what it added.
    assert_eq!(first.matches("synced 1 projects").count(), 3, "{first}");
    assert!(
        first.contains("mirrored 3 project(s): 1 listed, 2 followed as dependencies"),
        "{first}"
    );
    for p in ["demo-app", "demo-lib", "demo-util"] {
        assert!(
            m.dir
                .path()
                .join(format!("data/store/published/projects/{p}.json"))
                .exists(),
            "{p} not published:\n{first}"
        );
    }
    // Not a dependency of anything listed: not mirrored.
    assert!(
        !m.dir
            .path()
            .join("data/store/published/projects/foo-bar-baz.json")
            .exists()
    );
    // The next sync starts from the whole closure: nothing to add, nothing dropped.
    let second = sync();
    assert!(!second.contains("adding"), "{second}");
    assert!(second.contains("synced 3 projects"), "{second}");
    assert!(
        m.dir
            .path()
            .join("data/store/published/projects/demo-util.json")
            .exists()
    );

    // Without `projects` there is nothing to follow: refused at load.
    m.edit_config(|text| {
        text.lines()
            .filter(|l| !l.starts_with("projects = "))
            .collect::<Vec<_>>()
            .join("\n")
    });
    let out = m.tufa(&["sync"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("sync.follow_dependencies needs `projects`"));
}

#[test]
fn a_requirements_file_pins_versions_and_hashes() {
    let up = Upstream::start(demo_projects());
    let m = MirrorDir::init(&up, &["demo-app"]);
    let util_whl = up.file_sha256("demo_util-0.1-py3-none-any.whl").unwrap();
    let wrong = "0".repeat(64);
    std::fs::write(
        m.dir.path().join("requirements.txt"),
        format!(
            "--index-url https://pypi.org/simple/\ndemo-lib==1.0  # only this version\ndemo-util==0.1 \\\n  --hash=sha256:{util_whl} --hash=sha256:{wrong}\n"
        ),
    )
    .unwrap();
    m.edit_config(|text| {
        text.replacen(
            "\n[storage]\n",
            "\nrequirements = [\"requirements.txt\"]\n\n[storage]\n",
            1,
        )
    });
    let out = m.tufa(&["sync"]).output().unwrap();
    // The sdist of demo-util is not among the hashes: refused, both hashes named.
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    let sdist = up.file_sha256("demo_util-0.1.tar.gz").unwrap();
    assert!(
        stderr.contains(&format!("upstream's sha256 is {sdist}")),
        "{stderr}"
    );
    assert!(stderr.contains(&util_whl) && stderr.contains(&wrong), "{stderr}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("synced 3 projects"), "{stdout}");
    // Only demo-lib 1.0 and demo-util's wheel were taken.
    assert!(
        m.blob_path(&up.file_sha256("demo_lib-1.0-py3-none-any.whl").unwrap())
            .exists()
    );
    assert!(
        !m.blob_path(&up.file_sha256("demo_lib-1.1-py3-none-any.whl").unwrap())
            .exists()
    );
    assert!(m.blob_path(&util_whl).exists());
    assert!(!m.blob_path(&sdist).exists());

    // A malformed file stops the command before anything is synced, naming file and line.
    std::fs::write(
        m.dir.path().join("requirements.txt"),
        "demo-lib==1.0\nnot a requirement!\n",
    )
    .unwrap();
    let out = m.tufa(&["sync"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("requirements.txt:2:"), "{stderr}");
}

/// A dependency graph with every kind of edge: conditional on the platform and the Python
/// version, through extras (asked for in a requirements file and by a dependency), through an
/// sdist with static metadata and one with metadata too old to trust, and into a denied project.
fn graph() -> Vec<tufa_fake_upstream::ProjectSpec> {
    use tufa_fake_upstream::{ProjectSpec, ReleaseSpec};
    let plain = |name: &str| ProjectSpec::new(name).release(ReleaseSpec::new("1.0"));
    vec![
        ProjectSpec::new("alpha").release(
            ReleaseSpec::new("1.0")
                .requires("beta>=1")
                .requires("gamma ; sys_platform == 'win32'")
                .requires("epsilon ; python_version < '3.8'")
                .requires("delta ; extra == 'fast'")
                .requires("unused ; extra == 'docs'")
                .requires("legacy")
                .requires("olden"),
        ),
        ProjectSpec::new("beta").release(ReleaseSpec::new("1.0").requires("zeta")),
        ProjectSpec::new("delta").release(ReleaseSpec::new("1.0").requires("eta[x]")),
        ProjectSpec::new("eta").release(ReleaseSpec::new("1.0").requires("theta ; extra == 'x'")),
        ProjectSpec::new("legacy").release(
            ReleaseSpec::new("1.0")
                .sdist_only()
                .metadata_version("2.2")
                .requires("iota"),
        ),
        ProjectSpec::new("olden").release(ReleaseSpec::new("1.0").sdist_only().requires("kappa")),
        plain("gamma"),
        plain("epsilon"),
        plain("theta"),
        plain("iota"),
        plain("kappa"),
        plain("zeta"),
        plain("unused"),
        plain("lambda"),
    ]
}

/// Whether a file of `project` 1.0 (its wheel, or its sdist) is in the mirror's store.
fn mirrored(up: &Upstream, m: &MirrorDir, project: &str) -> bool {
    [
        format!("{project}-1.0-py3-none-any.whl"),
        format!("{project}-1.0.tar.gz"),
    ]
    .iter()
    .filter_map(|f| up.file_sha256(f))
    .any(|sha| m.blob_path(&sha).exists())
}

#[test]
fn extras_environments_sdists_and_blocked_dependencies() {
    let up = Upstream::start(graph());
    let m = MirrorDir::init(&up, &["alpha"]);
    std::fs::write(m.dir.path().join("requirements.txt"), "alpha[fast]\n").unwrap();
    m.edit_config(|text| {
        text.replace("projects = [\"alpha\"]", "requirements = [\"requirements.txt\"]")
        .replace(
            "\n[sync]\n",
            "\n[sync]\nfollow_dependencies = true\nenvironments = [\"sys_platform == 'linux' and python_version >= '3.10'\"]\n",
        )
            .replace("\n[policy]\n", "\n[policy]\ndeny = [\"zeta\"]\n")
    });

    let out = m.tufa(&["sync"]).output().unwrap();
    let (stdout, stderr) = (crate::stdout(&out), crate::stderr(&out));
    assert!(out.status.success(), "{stdout}\n{stderr}");
    // Followed: the extra the requirements file asks for, the extra a dependency asks for,
    // the sdist with metadata 2.2.
    for p in [
        "alpha", "beta", "delta", "eta", "theta", "legacy", "iota", "olden",
    ] {
        assert!(mirrored(&up, &m, p), "{p} not mirrored:\n{stdout}\n{stderr}");
    }
    // Not followed: Windows only, Python < 3.8 only, an extra nobody asks for, the
    // dependency of an sdist whose metadata (2.1) cannot be trusted, the denied one.
    for p in ["gamma", "epsilon", "unused", "kappa", "zeta"] {
        assert!(!mirrored(&up, &m, p), "{p} mirrored:\n{stdout}\n{stderr}");
    }
    assert!(
        stderr.contains("warning: dependency zeta (needed by beta) is not mirrored: policy rule deny: `zeta` matches deny entry `zeta`"),
        "{stderr}"
    );
    assert!(
        stderr.contains("note: olden: olden-1.0.tar.gz has no wheel and its sdist does not declare its dependencies statically"),
        "{stderr}"
    );
    assert!(
        stdout.contains(
            "mirrored 9 project(s): 1 listed, 8 followed as dependencies, 1 of them with nothing mirrored"
        ),
        "{stdout}"
    );

    let explain = |name: &str| {
        let out = m
            .tufa(&["-q", "policy", "explain", name, "--at", "2025-01-01T00:00:00Z"])
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        crate::stdout(&out)
    };
    insta::assert_snapshot!("explain_dependency_chain", explain("theta"));
    insta::assert_snapshot!("explain_blocked_dependency", explain("zeta"));
    assert!(explain("gamma").contains("gamma is not listed, and nothing mirrored needs it"));
    let report = m.tufa(&["-q", "policy", "report"]).output().unwrap();
    assert!(
        crate::stdout(&report).contains("  zeta: policy rule deny: `zeta` matches deny entry `zeta`"),
        "{report:?}"
    );

    // Every conditional dependency, once the environments are removed.
    m.edit_config(|text| {
        text.lines()
            .filter(|l| !l.starts_with("environments = "))
            .collect::<Vec<_>>()
            .join("\n")
    });
    // Upstream adds a dependency: the next sync mirrors it.
    up.add_release(
        "beta",
        tufa_fake_upstream::ReleaseSpec::new("1.1").requires("lambda"),
    );
    let out = m.tufa(&["sync"]).output().unwrap();
    let stdout = crate::stdout(&out);
    assert!(out.status.success(), "{out:?}");
    for p in ["gamma", "epsilon", "lambda"] {
        assert!(mirrored(&up, &m, p), "{p} not mirrored:\n{stdout}");
    }
    assert!(!mirrored(&up, &m, "unused"), "{stdout}");
    assert!(explain("lambda").contains("lambda is needed by beta (Requires-Dist: lambda)"));
}

#[test]
fn a_pinned_older_version_brings_only_its_own_closure() {
    let up = Upstream::start(demo_projects());
    let m = MirrorDir::init(&up, &["demo-app"]);
    // demo-lib 1.1 needs demo-util; 1.0, the pinned one, needs nothing.
    std::fs::write(m.dir.path().join("requirements.txt"), "demo-lib==1.0\n").unwrap();
    m.edit_config(|text| {
        text.replacen(
            "\n[storage]\n",
            "\nrequirements = [\"requirements.txt\"]\n\n[storage]\n",
            1,
        )
        .replace("\n[sync]\n", "\n[sync]\nfollow_dependencies = true\n")
    });
    let out = m.tufa(&["sync"]).output().unwrap();
    let stdout = crate::stdout(&out);
    assert!(out.status.success(), "{out:?}");
    assert!(
        stdout.contains("mirrored 2 project(s): 2 listed, 0 followed"),
        "{stdout}"
    );
    let stored = |f: &str| m.blob_path(&up.file_sha256(f).unwrap()).exists();
    assert!(stored("demo_app-1.0-py3-none-any.whl"));
    assert!(stored("demo_lib-1.0-py3-none-any.whl"));
    assert!(!stored("demo_lib-1.1-py3-none-any.whl"));
    assert!(!stored("demo_util-0.1-py3-none-any.whl"), "{stdout}");

    // A bad environment marker stops every command at load, naming it.
    m.edit_config(|text| {
        text.replace(
            "follow_dependencies = true\n",
            "follow_dependencies = true\nenvironments = [\"sys_platform = 'linux'\"]\n",
        )
    });
    let out = m.tufa(&["sync"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let stderr = crate::stderr(&out);
    assert!(
        stderr.contains("sync.environments: `sys_platform = 'linux'` is not a PEP 508 marker"),
        "{stderr}"
    );
}
