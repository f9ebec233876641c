//! `tufa init` and configuration errors (exit code 2).

use predicates::prelude::*;

use crate::*;

const UPSTREAM: &str = "http://127.0.0.1:9/simple/";

#[test]
fn init_writes_a_config_and_refuses_to_overwrite_it() {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("mirror");
    let path = target.join("tufa.toml");
    tufa()
        .arg("init")
        .arg(&target)
        .args([
            "--upstream",
            UPSTREAM,
            "--project",
            "demo-lib",
            "--project",
            "Foo.Bar_baz",
        ])
        .assert()
        .success()
        .stdout(predicate::str::contains(path.display().to_string()));
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.contains(&format!("upstream = \"{UPSTREAM}\"")), "{text}");
    assert!(
        text.contains("projects = [\"demo-lib\", \"foo-bar-baz\"]"),
        "{text}"
    );

    // Again without --force: refused, file untouched, the message names the file.
    let output = tufa()
        .arg("init")
        .arg(&target)
        .args(["--upstream", "http://127.0.0.1:10/simple/"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2), "{output:?}");
    let err = stderr(&output);
    assert!(
        err.contains(&path.display().to_string()) && err.contains("already exists"),
        "{err}"
    );
    assert!(err.contains("--force"), "{err}");
    assert_eq!(std::fs::read_to_string(&path).unwrap(), text);

    // With --force it is rewritten (no projects: full mirror).
    tufa()
        .arg("init")
        .arg(&target)
        .args(["--upstream", "http://127.0.0.1:10/simple/", "--force"])
        .assert()
        .success();
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(
        text.contains("upstream = \"http://127.0.0.1:10/simple/\""),
        "{text}"
    );
    assert!(text.contains("# projects = "), "{text}");
}

#[test]
fn init_rejects_a_bad_project_name() {
    let dir = tempfile::tempdir().unwrap();
    tufa()
        .arg("init")
        .arg(dir.path())
        .args(["--upstream", UPSTREAM, "--project", "../etc"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("../etc"));
    assert!(!dir.path().join("tufa.toml").exists());
}

/// Runs `tufa sync` and `tufa verify` on a config file holding `text`; both must exit 2 and
/// name the file and every `needles`.
fn assert_config_error(text: &str, needles: &[&str]) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tufa.toml");
    std::fs::write(&path, text).unwrap();
    for command in ["sync", "verify"] {
        let output = tufa().arg("--config").arg(&path).arg(command).output().unwrap();
        assert_eq!(output.status.code(), Some(2), "{command}: {output:?}");
        let err = stderr(&output);
        let first = err.lines().next().unwrap_or_default();
        assert_eq!(err.lines().count(), 1, "config errors are one line: {err}");
        assert!(first.starts_with("error: "), "{err}");
        assert!(
            first.contains(&path.display().to_string()),
            "the first line names the file: {err}"
        );
        for n in needles {
            assert!(err.contains(n), "`{n}` not in: {err}");
        }
        assert!(!err.contains("panicked"), "{err}");
        assert!(stdout(&output).is_empty(), "{output:?}");
        // Nothing was created next to the config.
        assert!(!dir.path().join("data").exists());
    }
}

#[test]
fn config_key_typo_is_a_usage_error_naming_the_key() {
    assert_config_error(
        &format!("upstrem = \"{UPSTREAM}\"\n"),
        &["unknown field `upstrem`", "tufa.toml:1: "],
    );
    assert_config_error(
        &format!("upstream = \"{UPSTREAM}\"\n[sync.limits]\nretires = 3\n"),
        &["unknown field `retires`", "tufa.toml:3: "],
    );
}

#[test]
fn config_bad_values_are_usage_errors_naming_the_value() {
    assert_config_error(
        &format!("upstream = \"{UPSTREAM}\"\nprojects = [\"ok\", \"bad name!\"]\n"),
        &["`bad name!`"],
    );
    assert_config_error(
        &format!("upstream = \"{UPSTREAM}\"\nprojects = [\"../etc\"]\n"),
        &["`../etc`"],
    );
    assert_config_error(
        "upstream = \"ftp://127.0.0.1/simple/\"\n",
        &["ftp://127.0.0.1/simple/", "http(s)"],
    );
    assert_config_error(
        &format!("upstream = \"{UPSTREAM}\"\nprojects = []\n"),
        &["`projects` is empty"],
    );
    assert_config_error(
        &format!("upstream = \"{UPSTREAM}\"\n[sync.limits]\nretries = -1\n"),
        &["-1", "u32"],
    );
    assert_config_error("this is not toml", &["tufa.toml:1: "]);
}

#[test]
fn missing_config_is_a_usage_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nope.toml");
    for command in ["sync", "verify"] {
        let output = tufa().arg("--config").arg(&path).arg(command).output().unwrap();
        assert_eq!(output.status.code(), Some(2), "{output:?}");
        let err = stderr(&output);
        assert!(
            err.contains(&path.display().to_string()) && err.contains("tufa init"),
            "{err}"
        );
        assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    }
}
