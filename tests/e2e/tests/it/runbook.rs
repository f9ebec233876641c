//! docs/KEY-CEREMONY.md cannot rot: every line of its ```sh blocks runs here, in order, for
//! real, with the release binaries (`tufa` and `tufa-ceremony`) first on `PATH`.
//!
//! - Each line runs through `sh -c` on a pseudo-terminal (`pty_answer.py`), which types the
//!   passphrase at each passphrase prompt and `yes` at each signing confirmation, as a key
//!   holder would: the drill-only passphrase variable and files are never set.
//! - The placeholders (`$MIRROR`, `$CEREMONY`, `$TRANSFER`, `$ALICE`, …) are directories in a
//!   temporary directory; `TUFA_UPSTREAM` points the mirror at a local fake upstream serving
//!   the project the runbook names. The working directory is an empty scratch directory, so a
//!   `tufa` line without `--config` fails.
//! - A line must exit 0, or the code its trailing `# exits N` comment announces.
//! - After the mirror's first `sync`, `tufa serve` runs on it; after every `import-metadata`, a
//!   python-tuf client that trusts only the ceremony's first `1.root.json` refreshes from the
//!   served mirror and must reach the newest imported root and verify the project's page (and,
//!   at the end, its wheel): it follows every rotation the runbook performs.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use tufa_fake_upstream::{FakeUpstream, ProjectSpec, ReleaseSpec};

use crate::harness::{Mirror, ceremony_bin, run_bounded, runtime, tufa_bin, venv};
use crate::tuf::linked_file;
use crate::tuf_client::TufClient;

const RUNBOOK: &str = include_str!("../../../../docs/KEY-CEREMONY.md");

/// The directories the runbook's placeholders stand for.
const PLACEHOLDERS: &[&str] = &[
    "MIRROR", "CEREMONY", "TRANSFER", "ALICE", "BOB", "CAROL", "DANA", "ERIK", "FRANK", "GRETA", "HENRIK",
];

/// What the key holders type at the passphrase prompts in this drill.
const PASSPHRASE: &str = "correct horse battery staple, runbook drill";

/// The project the runbook's `tufa init … --project` line mirrors, and its wheel.
const PROJECT: &str = "requests";
const VERSION: &str = "2.32.3";

/// One command of a ```sh block: its text (continuation lines joined) and the exit code it is
/// announced to end with.
#[derive(Debug)]
struct Line {
    command: String,
    expect: i32,
}

/// The commands of every ```sh block, continuation lines joined, comment lines dropped; a
/// trailing `# exits N …` sets the expected exit code.
fn sh_lines(markdown: &str) -> Vec<Line> {
    let mut lines = Vec::new();
    let mut in_sh = false;
    let mut pending = String::new();
    for raw in markdown.lines() {
        let trimmed = raw.trim();
        if !in_sh {
            in_sh = trimmed == "```sh";
            continue;
        }
        if trimmed == "```" {
            assert!(pending.is_empty(), "unterminated continuation: {pending}");
            in_sh = false;
            continue;
        }
        if pending.is_empty() && (trimmed.is_empty() || trimmed.starts_with('#')) {
            continue;
        }
        if let Some(part) = trimmed.strip_suffix('\\') {
            pending.push_str(part.trim_end());
            pending.push(' ');
            continue;
        }
        pending.push_str(trimmed);
        let full = std::mem::take(&mut pending);
        let (command, expect) = match full.split_once(" # ") {
            Some((command, comment)) => {
                let code = comment
                    .trim()
                    .strip_prefix("exits ")
                    .and_then(|rest| rest.split(|c: char| !c.is_ascii_digit()).next())
                    .and_then(|n| n.parse().ok())
                    .unwrap_or_else(|| panic!("a trailing comment must say `# exits N …`: {full}"));
                (command.trim().to_owned(), code)
            }
            None => (full, 0),
        };
        lines.push(Line { command, expect });
    }
    assert!(!in_sh, "unterminated ```sh block");
    lines
}

#[test]
fn sh_lines_join_continuations_and_read_expected_exit_codes() {
    let md = "text\n```sh\na \\\n  b\n# comment\nc x # exits 3: not yet\n```\n```text\nnot run\n```\n";
    let lines = sh_lines(md);
    let got: Vec<(&str, i32)> = lines.iter().map(|l| (l.command.as_str(), l.expect)).collect();
    assert_eq!(got, [("a b", 0), ("c x", 3)]);
}

/// The `N` of the newest `N.root.json` in `dir`.
fn newest_root(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(|e| {
            e.unwrap()
                .file_name()
                .to_str()?
                .strip_suffix(".root.json")?
                .parse()
                .ok()
        })
        .max()
        .unwrap_or_else(|| panic!("no N.root.json in {}", dir.display()))
}

/// Expands `$NAME` placeholders in one word of a line (for reading paths the line names).
fn expand(word: &str, vars: &BTreeMap<&str, PathBuf>) -> PathBuf {
    let mut out = word.to_owned();
    let mut names: Vec<&&str> = vars.keys().collect();
    names.sort_by_key(|n| std::cmp::Reverse(n.len()));
    for name in names {
        out = out.replace(&format!("${name}"), vars[*name].to_str().unwrap());
    }
    assert!(!out.contains('$'), "unknown placeholder in `{word}`");
    PathBuf::from(out)
}

#[test]
fn every_runbook_line_runs_for_real() {
    let lines = sh_lines(RUNBOOK);
    let mut upstream = Some(runtime().block_on(FakeUpstream::start(vec![
        ProjectSpec::new(PROJECT).release(ReleaseSpec::new(VERSION)),
    ])));
    let upstream_url = upstream.as_ref().unwrap().simple_url();
    let tmp = tempfile::tempdir().unwrap();
    let mut vars: BTreeMap<&str, PathBuf> = BTreeMap::new();
    let mut mirror_dir = Some(tempfile::tempdir().unwrap());
    for name in PLACEHOLDERS {
        let dir = match *name {
            "MIRROR" => mirror_dir.as_ref().unwrap().path().to_owned(),
            _ => tmp.path().join(name.to_ascii_lowercase()),
        };
        std::fs::create_dir_all(&dir).unwrap();
        vars.insert(*name, dir);
    }
    let config = vars["MIRROR"].join("tufa.toml");
    let scratch = tmp.path().join("scratch");
    std::fs::create_dir_all(&scratch).unwrap();
    let bin_dir = tufa_bin().parent().unwrap().to_owned();
    assert_eq!(ceremony_bin().parent().unwrap(), bin_dir);
    let path = format!(
        "{}:{}",
        bin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let driver = Path::new(env!("CARGO_MANIFEST_DIR")).join("pty_answer.py");

    let mut server: Option<Mirror> = None;
    let mut client: Option<TufClient> = None;
    let mut imports = Vec::new();
    let mut ran = 0;
    let mut transcript = String::new();
    for line in &lines {
        let words: Vec<&str> = line.command.split_whitespace().collect();
        assert!(
            matches!(words.first(), Some(&("tufa" | "tufa-ceremony"))),
            "the runbook's sh blocks hold only tufa and tufa-ceremony commands: {}",
            line.command
        );
        let out = run_bounded(
            Command::new(venv().join("bin/python"))
                .arg(&driver)
                .args(["--passphrase", PASSPHRASE, "--timeout", "600", "--"])
                .args(["sh", "-c", &line.command])
                .current_dir(&scratch)
                .env("PATH", &path)
                .env("TUFA_UPSTREAM", &upstream_url)
                .env("NO_PROXY", "127.0.0.1,localhost")
                .env_remove("TUFA_CEREMONY_PASSPHRASE")
                .env_remove("TUFA_PKCS11_PIN")
                .env_remove("TUFA_CONFIG")
                .envs(vars.iter().map(|(k, v)| (*k, v.as_os_str()))),
            Duration::from_secs(660),
            &line.command,
        );
        let shown = String::from_utf8_lossy(&out.stdout);
        transcript.push_str(&format!("$ {}\n{shown}\n", line.command));
        assert_eq!(
            out.status.code(),
            Some(line.expect),
            "runbook line failed (expected exit {}): {}\n--- terminal:\n{shown}\n--- stderr:\n{}",
            line.expect,
            line.command,
            String::from_utf8_lossy(&out.stderr)
        );
        ran += 1;

        // The mirror host's side, watched from outside.
        let on_mirror = words.first() == Some(&"tufa") && words.contains(&"--config");
        if on_mirror && words.contains(&"sync") && server.is_none() && line.expect == 0 {
            server = Some(Mirror::serve(
                upstream.take().unwrap(),
                mirror_dir.take().unwrap(),
                config.clone(),
            ));
        }
        if on_mirror && words.contains(&"import-metadata") && line.expect == 0 {
            let export = expand(words.last().unwrap(), &vars);
            let m = server
                .as_ref()
                .expect("the runbook imports metadata before the mirror's first sync");
            let c = client.get_or_insert_with(|| {
                TufClient::new(&tmp.path().join("python-tuf"), &export.join("1.root.json"))
            });
            let page = format!("simple/{PROJECT}/index.json");
            let run = c.run(&format!("{}tuf/", m.root_url()), &m.root_url(), &[&page]);
            run.assert_ok();
            assert_eq!(
                run.root_version,
                Some(newest_root(&export)),
                "python-tuf did not follow the root chain to {}: {}",
                export.display(),
                run.describe()
            );
            imports.push((export, run.target(&page).bytes()));
        }
    }

    // The whole terminal transcript (shown with `--nocapture`): what an operator would see.
    println!("{transcript}");
    // Enough of the runbook ran, and every verb of the tool was exercised by it.
    assert!(ran >= 60, "only {ran} runbook lines ran");
    for verb in [
        "keygen",
        "init",
        "sign",
        "status",
        "publish",
        "verify",
        "resign",
        "rotate-root",
    ] {
        assert!(
            lines
                .iter()
                .any(|l| l.command.starts_with(&format!("tufa-ceremony {verb} "))),
            "the runbook never runs `tufa-ceremony {verb}`"
        );
    }
    for verb in [
        "init",
        "online-key",
        "sync",
        "import-metadata",
        "verify",
        "refresh",
    ] {
        assert!(
            lines
                .iter()
                .any(|l| l.command.starts_with("tufa ") && l.command.split_whitespace().any(|w| w == verb)),
            "the runbook never runs `tufa {verb}`"
        );
    }
    // python-tuf followed every export: the first ceremony, each re-signing and each rotation.
    assert!(
        imports.len() >= 7,
        "python-tuf followed only {} imports:\n{transcript}",
        imports.len()
    );
    let roots: Vec<u64> = imports.iter().map(|(e, _)| newest_root(e)).collect();
    assert!(
        roots.windows(2).all(|w| w[0] <= w[1]) && roots.last() == Some(&5),
        "root versions seen by python-tuf: {roots:?}"
    );
    // At the end, the wheel too verifies against the last ceremony's metadata.
    let m = server.as_ref().unwrap();
    let (_, page) = imports.last().unwrap();
    let wheel = format!("{PROJECT}-{VERSION}-py3-none-any.whl");
    let (wheel_target, _) = linked_file(page, &wheel);
    let run = client
        .as_ref()
        .unwrap()
        .run(&format!("{}tuf/", m.root_url()), &m.root_url(), &[&wheel_target]);
    run.assert_ok();
    // The online key was rotated by the runbook: the mirror signs with the second key.
    let online_2 = std::fs::read_to_string(vars["TRANSFER"].join("online-2.pub.json")).unwrap();
    let online_2: serde_json::Value = serde_json::from_str(&online_2).unwrap();
    let timestamp = std::fs::read(m.tuf_dir().join("timestamp.json")).unwrap();
    let timestamp: serde_json::Value = serde_json::from_slice(&timestamp).unwrap();
    assert_eq!(
        timestamp["signatures"][0]["keyid"], online_2["keyid"],
        "after the runbook's online-key rotation the mirror must sign with the new key"
    );
}
