//! docs/KEY-CEREMONY.md cannot rot: every command in its ```sh blocks runs here, in order.
//!
//! - `tufa-ceremony …` lines run through `sh -c` with the binary first on `PATH`, the runbook's
//!   placeholders (`$CEREMONY`, `$TRANSFER`, `$ALICE`, …) set to directories in a temporary
//!   directory, and `TUFA_CEREMONY_PASSPHRASE` set; each must succeed.
//! - `tufa …` lines (the mirror's side) are not run, since that binary and a mirror are not
//!   part of this crate's tests, but what they stand for is simulated and checked:
//!   `tufa online-key generate --public-out P` writes a fresh online public key to `P` in the
//!   format tufa writes, and `tufa import-metadata DIR` requires `DIR` to verify offline
//!   (`verify_metadata_dir`), so the runbook's export paths must match its `publish --out`
//!   paths. Other `tufa` lines (`tufa verify`) are skipped.
//! - Any other command in an `sh` block fails the test: the runbook shows only commands this
//!   test understands.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use tufa_tuf::{Ed25519Signer, Signer as _};

use crate::support::BIN;

const RUNBOOK: &str = include_str!("../../../docs/KEY-CEREMONY.md");

const PLACEHOLDERS: &[&str] = &[
    "CEREMONY", "TRANSFER", "ALICE", "BOB", "CAROL", "DANA", "ERIK", "FRANK", "GRETA", "HENRIK",
];

/// The commands of every ```sh block, continuation lines joined, comments dropped.
fn sh_commands(markdown: &str) -> Vec<String> {
    let mut commands = Vec::new();
    let mut in_sh = false;
    let mut pending = String::new();
    for line in markdown.lines() {
        let trimmed = line.trim();
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
        match trimmed.strip_suffix('\\') {
            Some(part) => {
                pending.push_str(part.trim_end());
                pending.push(' ');
            }
            None => {
                pending.push_str(trimmed);
                commands.push(std::mem::take(&mut pending));
            }
        }
    }
    assert!(!in_sh, "unterminated ```sh block");
    commands
}

/// Expands `$NAME` placeholders (for the simulated `tufa` lines, which do not go through sh).
fn expand(word: &str, vars: &BTreeMap<&str, String>) -> String {
    let mut out = word.to_owned();
    // Longest names first, so `$CEREMONY` is not cut short by a shorter name.
    let mut names: Vec<&&str> = vars.keys().collect();
    names.sort_by_key(|n| std::cmp::Reverse(n.len()));
    for name in names {
        out = out.replace(&format!("${name}"), &vars[*name]);
    }
    assert!(!out.contains('$'), "unknown placeholder in `{word}`");
    out
}

#[test]
fn every_runbook_command_runs() {
    let commands = sh_commands(RUNBOOK);
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let mut vars = BTreeMap::new();
    for name in PLACEHOLDERS {
        let dir = root.join(name.to_ascii_lowercase());
        std::fs::create_dir_all(&dir).unwrap();
        vars.insert(*name, dir.to_str().unwrap().to_owned());
    }
    let bin_dir = Path::new(BIN).parent().unwrap();
    let path = format!(
        "{}:{}",
        bin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );

    let mut ran = 0;
    let mut simulated = 0;
    let mut imported = Vec::new();
    for command in &commands {
        let words: Vec<&str> = command.split_whitespace().collect();
        match words.as_slice() {
            ["tufa-ceremony", ..] => {
                let out = Command::new("sh")
                    .arg("-c")
                    .arg(command)
                    .current_dir(root)
                    .env("PATH", &path)
                    .env("TUFA_CEREMONY_PASSPHRASE", "runbook drill passphrase")
                    .env_remove("TUFA_PKCS11_PIN")
                    .envs(vars.iter().map(|(k, v)| (*k, v.as_str())))
                    .stdin(std::process::Stdio::null())
                    .output()
                    .unwrap();
                assert!(
                    out.status.success(),
                    "runbook command failed ({}): {command}\nstdout:\n{}\nstderr:\n{}",
                    out.status,
                    String::from_utf8_lossy(&out.stdout),
                    String::from_utf8_lossy(&out.stderr)
                );
                ran += 1;
            }
            ["tufa", "online-key", "generate", "--public-out", public] => {
                let online = Ed25519Signer::generate();
                let json = serde_json::json!({"keyid": online.keyid().to_hex(), "key": online.key()});
                std::fs::write(expand(public, &vars), serde_json::to_vec_pretty(&json).unwrap()).unwrap();
                simulated += 1;
            }
            ["tufa", "import-metadata", dir] => {
                let dir = expand(dir, &vars);
                tufa_ceremony::verify_metadata_dir(Path::new(&dir), &BTreeMap::new(), jiff::Timestamp::now())
                    .unwrap_or_else(|e| panic!("`{command}`: the export does not verify: {e}"));
                imported.push(dir);
                simulated += 1;
            }
            ["tufa", ..] => {}
            _ => panic!("the runbook shows a command this test does not run: {command}"),
        }
    }
    assert!(
        ran >= 40,
        "only {ran} tufa-ceremony commands found in the runbook"
    );
    assert_eq!(simulated, 4, "online-key generate ×2 and import-metadata ×2");
    assert_eq!(imported.len(), 2);
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
            commands
                .iter()
                .any(|c| c.starts_with(&format!("tufa-ceremony {verb} "))),
            "the runbook never runs `{verb}`"
        );
    }
    // The drill ends with a ceremony whose whole published history verifies.
    let ceremony = tufa_ceremony::Ceremony::open(Path::new(&vars["CEREMONY"])).unwrap();
    let report = ceremony.verify(jiff::Timestamp::now()).unwrap().to_string();
    assert!(report.contains("root chain: 5 version(s)"), "{report}");
    assert!(report.contains("targets: threshold 1 of 1 (greta "), "{report}");
}
