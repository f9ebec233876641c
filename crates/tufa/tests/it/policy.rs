//! `[policy]` through the binary: `tufa policy explain` (snapshot of its output), bad policy
//! values refused at load naming key, value and reason, and a sync that keeps a denied
//! release off the published page.

use tufa_fake_upstream::demo_projects;

use crate::{MirrorDir, Upstream};

fn with_policy(m: &MirrorDir, policy: &str) {
    m.edit_config(|text| text.replace("\n[policy]\n", &format!("\n[policy]\n{policy}\n")));
}

/// `tufa policy SUBCOMMAND ARGS…`'s standard output (it must succeed).
fn policy(m: &MirrorDir, subcommand: &str, args: &[&str]) -> String {
    let out = m
        .tufa(&[])
        .args(["-q", "policy", subcommand])
        .args(args)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    String::from_utf8(out.stdout).unwrap()
}

/// `tufa sync` on `m` (its output, whatever the exit status).
fn sync(m: &MirrorDir) -> std::process::Output {
    m.tufa(&["sync"]).output().unwrap()
}

fn explain(m: &MirrorDir, args: &[&str]) -> String {
    policy(m, "explain", args)
}

#[test]
fn explain_names_the_rule_for_every_file() {
    let up = Upstream::start(demo_projects());
    let m = MirrorDir::init(&up, &["demo-lib"]);
    with_policy(
        &m,
        "deny = [\"demo-lib==1.1\"]\nallow_only = [\"demo-*\"]\ninternal = [\"acme-*\"]\nmin_release_age = \"30d\"",
    );
    // The fake upstream's files were uploaded in 2024 (deterministic times).
    insta::assert_snapshot!(
        "explain_demo_lib",
        explain(&m, &["demo-lib", "--at", "2024-01-05T00:00:00Z"])
    );
    insta::assert_snapshot!(
        "explain_demo_lib_1_0_later",
        explain(&m, &["demo-lib==1.0", "--at", "2025-01-01T00:00:00Z"])
    );
    insta::assert_snapshot!(
        "explain_internal",
        explain(&m, &["ACME_billing", "--at", "2025-01-01T00:00:00Z"])
    );
}

#[test]
fn a_bad_policy_is_refused_at_load_naming_key_value_and_reason() {
    let up = Upstream::start(demo_projects());
    let m = MirrorDir::init(&up, &["demo-lib"]);
    for (policy, needle) in [
        (
            "min_release_age = \"3 days\"",
            "policy.min_release_age: `3 days` has unit `days`",
        ),
        (
            "deny = [\"demo-lib>>1\"]",
            "policy.deny: `demo-lib>>1` has a bad version specifier",
        ),
        ("denyy = [\"x\"]", "unknown field `denyy`"),
    ] {
        let original = std::fs::read_to_string(m.config()).unwrap();
        with_policy(&m, policy);
        let out = m.tufa(&["sync"]).output().unwrap();
        std::fs::write(m.config(), original).unwrap();
        assert_eq!(out.status.code(), Some(2), "{policy}: {out:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(needle), "{policy}: {stderr}");
    }
}

#[test]
fn a_denied_release_leaves_the_published_page() {
    let up = Upstream::start(demo_projects());
    let m = MirrorDir::init(&up, &["demo-lib"]);
    let page = || {
        let out = sync(&m);
        assert!(out.status.success(), "{out:?}");
        String::from_utf8(out.stdout).unwrap()
    };
    let first = page();
    assert!(!first.contains("policy"), "{first}");
    with_policy(&m, "deny = [\"demo-lib==1.1\"]");
    let second = page();
    assert!(second.contains("policy kept out 2 file(s)"), "{second}");
    let files = published_files(&m, "demo-lib");
    assert!(!files.iter().any(|f| f.contains("-1.1")), "{files:?}");
    assert!(files.iter().any(|f| f.contains("-1.0")), "{files:?}");
    let text = policy_report(&m, &[]);
    assert!(
        text.contains("demo-lib  demo_lib-1.1.tar.gz  [deny before download]"),
        "{text}"
    );
    assert!(text.contains("deny: 2 file(s)"), "{text}");

    // The rule removed: the files come back and the report empties.
    let config = std::fs::read_to_string(m.config()).unwrap();
    std::fs::write(m.config(), config.replace("deny = [\"demo-lib==1.1\"]", "")).unwrap();
    page();
    assert!(published_files(&m, "demo-lib").iter().any(|f| f.contains("-1.1")));
    assert!(policy_report(&m, &[]).contains("nothing is blocked"));
}

#[test]
fn a_malicious_release_in_the_osv_dump_is_kept_out() {
    let up = Upstream::start(demo_projects());
    let m = MirrorDir::init(&up, &["demo-lib"]);
    let original = std::fs::read_to_string(m.config()).unwrap();
    let osv = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../tufa-policy/tests/fixtures/osv");
    with_policy(
        &m,
        &format!("[policy.advisories]\nosv = {:?}", osv.display().to_string()),
    );
    let out = sync(&m);
    assert!(out.status.success(), "{out:?}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("policy kept out 2 file(s)"), "{stdout}");
    // The unreadable fixture records are reported, not fatal.
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("some OSV records could not be read"), "{stderr}");
    let explained = explain(&m, &["demo-lib==1.1"]);
    assert!(
        explained.contains("is affected by MAL-2026-0001 (a malicious-package record)"),
        "{explained}"
    );

    // A vulnerability blocks once block_severity reaches its severity (HIGH in the fixture).
    std::fs::write(m.config(), &original).unwrap();
    with_policy(
        &m,
        &format!(
            "[policy.advisories]\nosv = {:?}\nblock_severity = \"high\"",
            osv.display().to_string()
        ),
    );
    let vulnerable = explain(&m, &["demo-util==0.1"]);
    assert!(
        vulnerable.contains("blocked by advisories: demo-util 0.1 is affected by GHSA-aaaa-bbbb-cccc (severity high, at or above block_severity high)"),
        "{vulnerable}"
    );

    // A dump that is not there stops every command at load, naming it.
    std::fs::write(m.config(), original).unwrap();
    with_policy(&m, "[policy.advisories]\nosv = \"no/such/dump\"");
    let out = sync(&m);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("policy.advisories.osv: `no/such/dump` does not exist"),
        "{stderr}"
    );
}

#[test]
fn licence_rules_judge_each_wheel_by_its_license_expression() {
    let up = Upstream::start(demo_projects());
    up.add_release(
        "demo-lib",
        tufa_fake_upstream::ReleaseSpec::new("2.0")
            .wheel_only()
            .license("GPL-3.0-only"),
    );
    up.add_release(
        "demo-lib",
        tufa_fake_upstream::ReleaseSpec::new("2.1")
            .wheel_only()
            .license("MIT OR GPL-3.0-only"),
    );
    up.add_release(
        "demo-lib",
        tufa_fake_upstream::ReleaseSpec::new("2.2")
            .wheel_only()
            .license("MIT AND GPL-3.0-only"),
    );
    let m = MirrorDir::init(&up, &["demo-lib"]);
    with_policy(&m, "[policy.licenses]\ndeny = [\"GPL-3.0-only\"]");
    let out = sync(&m);
    assert!(out.status.success(), "{out:?}");
    let files = published_files(&m, "demo-lib");
    // OR: satisfiable without GPL; AND: not; no expression (the older releases): admitted
    // under a deny list.
    assert!(
        files.contains(&"demo_lib-2.1-py3-none-any.whl".to_owned()),
        "{files:?}"
    );
    assert!(
        !files.iter().any(|f| f.contains("-2.0-") || f.contains("-2.2-")),
        "{files:?}"
    );
    assert!(files.contains(&"demo_lib-1.0.tar.gz".to_owned()), "{files:?}");

    // explain reads the same METADATA from upstream (PEP 658) and says the same.
    let blocked = explain(&m, &["demo-lib==2.2"]);
    assert!(
        blocked.contains("blocked by licenses: demo_lib-2.2-py3-none-any.whl: License-Expression `MIT AND GPL-3.0-only` cannot be satisfied"),
        "{blocked}"
    );
    let admitted = explain(&m, &["demo-lib==2.1"]);
    assert!(
        admitted.contains("admitted: no rule blocks it; License-Expression `MIT OR GPL-3.0-only` is satisfied by the licence rules"),
        "{admitted}"
    );

    // The report lists both, with the rule and the step.
    let text = policy_report(&m, &[]);
    assert!(
        text.contains("demo-lib  demo_lib-2.2-py3-none-any.whl  [licenses at publish] demo_lib-2.2-py3-none-any.whl: License-Expression `MIT AND GPL-3.0-only` cannot be satisfied with licenses.deny in force"),
        "{text}"
    );
    assert!(text.contains("licenses: 2 file(s)"), "{text}");
    let json: serde_json::Value = serde_json::from_str(&policy_report(&m, &["--json"])).unwrap();
    assert_eq!(json["publish"]["demo-lib"].as_array().unwrap().len(), 2, "{json}");
    assert_eq!(json["publish"]["demo-lib"][0]["rule"], "license");
}

fn policy_report(m: &MirrorDir, args: &[&str]) -> String {
    policy(m, "report", args)
}

/// The filenames the published JSON page of `project` lists.
fn published_files(m: &MirrorDir, project: &str) -> Vec<String> {
    let manifest: serde_json::Value = serde_json::from_slice(
        &std::fs::read(
            m.dir
                .path()
                .join(format!("data/store/published/projects/{project}.json")),
        )
        .unwrap(),
    )
    .unwrap();
    let digest = manifest["json"]["raw"]["sha256"].as_str().unwrap();
    let blob = m
        .dir
        .path()
        .join("data/store/blobs/sha256")
        .join(&digest[..2])
        .join(&digest[2..4])
        .join(digest);
    let page: serde_json::Value = serde_json::from_slice(&std::fs::read(blob).unwrap()).unwrap();
    page["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["filename"].as_str().unwrap().to_owned())
        .collect()
}
