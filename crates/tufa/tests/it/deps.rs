//! `[sync] follow_dependencies`: an allowlist of one project mirrors what it needs,
//! transitively, says why, and keeps it on the next sync.

use tufa_fake_upstream::demo_projects;

use crate::{MirrorDir, Upstream};

#[test]
fn following_dependencies_mirrors_the_closure_and_keeps_it() {
    let up = Upstream::start(demo_projects());
    let m = MirrorDir::init(&up, &["demo-app"]);
    let text = std::fs::read_to_string(m.config()).unwrap();
    std::fs::write(
        m.config(),
        text.replace("\n[sync]\n", "\n[sync]\nfollow_dependencies = true\n"),
    )
    .unwrap();
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
    let text = std::fs::read_to_string(m.config()).unwrap();
    let full = text
        .lines()
        .filter(|l| !l.starts_with("projects = "))
        .collect::<Vec<_>>()
        .join("\n");
    std::fs::write(m.config(), full).unwrap();
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
    let text = std::fs::read_to_string(m.config()).unwrap();
    std::fs::write(
        m.config(),
        text.replacen(
            "\n[storage]\n",
            "\nrequirements = [\"requirements.txt\"]\n\n[storage]\n",
            1,
        ),
    )
    .unwrap();
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
