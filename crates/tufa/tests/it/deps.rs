//! `[sync] follow_dependencies`: an allowlist of one project mirrors what it needs,
//! transitively, says why, and keeps it on the next sync.

use tufa_fake_upstream::demo_projects;

use crate::{MirrorDir, Upstream, tufa};

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
        let out = tufa()
            .arg("--config")
            .arg(m.config())
            .arg("sync")
            .output()
            .unwrap();
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
    let out = tufa()
        .arg("--config")
        .arg(m.config())
        .arg("sync")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("sync.follow_dependencies needs `projects`"));
}
