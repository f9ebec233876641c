//! A verifying replica (`tufa init --upstream-root`): primary → replica → `tufa proxy` → pip,
//! with the primary's metadata republished byte for byte; and a replica fed tampered data,
//! which stores nothing of it, publishes nothing new, and whose `tufa verify` stays clean.

use std::path::{Path, PathBuf};
use std::process::Command;

use tufa_fake_upstream::FakeUpstream;

use crate::attacks::{NEW_WHEEL, Scenario};
use crate::harness::{COMMAND_TIMEOUT, Mirror, check, dist_infos, run_bounded, runtime, tufa_bin, venv_cmd};
use crate::tuf::parse;

/// `tufa init DIR --upstream <root>simple/ --upstream-root ROOT`: DIR and its config.
fn init_replica(upstream_root_url: &str, root: &Path) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let out = run_bounded(
        Command::new(tufa_bin())
            .arg("init")
            .arg(dir.path())
            .args([
                "--upstream",
                &format!("{upstream_root_url}simple/"),
                "--upstream-root",
            ])
            .arg(root),
        COMMAND_TIMEOUT,
        "tufa init --upstream-root",
    );
    check(out, "tufa init --upstream-root");
    let config = dir.path().join("tufa.toml");
    (dir, config)
}

fn tufa(config: &Path, args: &[&str]) -> std::process::Output {
    run_bounded(
        Command::new(tufa_bin()).arg("--config").arg(config).args(args),
        COMMAND_TIMEOUT,
        &format!("tufa {}", args.join(" ")),
    )
}

fn published(dir: &Path, file: &str) -> Option<Vec<u8>> {
    std::fs::read(dir.join("data/store/published/tuf").join(file)).ok()
}

/// Whether any stored blob of the replica has these bytes somewhere in it.
fn store_contains(dir: &Path, needle: &[u8]) -> bool {
    fn walk(dir: &Path, needle: &[u8]) -> bool {
        std::fs::read_dir(dir).into_iter().flatten().flatten().any(|e| {
            let p = e.path();
            if p.is_dir() {
                walk(&p, needle)
            } else {
                std::fs::read(&p).is_ok_and(|d| d.windows(needle.len()).any(|w| w == needle))
            }
        })
    }
    walk(&dir.join("data/store"), needle)
}

#[test]
fn primary_to_replica_to_proxy_to_pip() {
    let primary = Mirror::start_signed();
    let anchor = primary.tuf_dir().join("1.root.json");
    let (dir, config) = init_replica(&primary.root_url(), &anchor);
    let out = check(tufa(&config, &["sync"]), "replica sync");
    let summary = String::from_utf8_lossy(&out.stdout);
    assert!(summary.contains("replicated"), "{summary}");

    // The primary's metadata, byte for byte: same root, same timestamp.
    for file in ["1.root.json", "2.root.json", "timestamp.json"] {
        assert_eq!(
            published(dir.path(), file),
            std::fs::read(primary.tuf_dir().join(file)).ok(),
            "{file}"
        );
    }
    check(tufa(&config, &["verify"]), "tufa verify on the replica");
    // Pages carry compressed variants, as on the primary (pip and uv get gzip and zstd).
    let manifest: serde_json::Value = serde_json::from_slice(
        &std::fs::read(dir.path().join("data/store/published/projects/demo-lib.json")).unwrap(),
    )
    .unwrap();
    for format in ["html", "json"] {
        for variant in ["gzip", "zstd"] {
            assert!(
                manifest[format][variant]["sha256"].is_string(),
                "{format} {variant}: {manifest}"
            );
        }
    }
    // The replica's tree is the primary's: the commands that sign or change it are refused.
    for command in ["refresh", "rebuild-index"] {
        let out = tufa(&config, &[command]);
        assert_eq!(out.status.code(), Some(2), "{command}: {out:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("verifying replica"), "{command}: {stderr}");
    }
    // A second sync with nothing new changes nothing.
    let out = check(tufa(&config, &["sync"]), "second replica sync");
    let summary = String::from_utf8_lossy(&out.stdout);
    assert!(summary.contains(" 0 files downloaded"), "{summary}");

    // Serve the replica and install through a proxy that trusts the primary's root.
    let dummy = runtime().block_on(FakeUpstream::start(tufa_fake_upstream::demo_projects()));
    let replica = Mirror::serve(dummy, dir, config);
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let cache = replica.dir.path().join("proxy-cache");
    let mut proxy = Command::new(tufa_bin())
        .args(["proxy", "--mirror", &replica.root_url(), "--trusted-root"])
        .arg(&anchor)
        .args(["--listen", &format!("127.0.0.1:{port}"), "--cache"])
        .arg(&cache)
        .stdin(std::process::Stdio::null())
        .spawn()
        .unwrap();
    assert!(crate::harness::wait_for(30, || std::net::TcpStream::connect((
        "127.0.0.1",
        port
    ))
    .is_ok()));
    let home = replica.work_dir("pip");
    let site = home.join("site");
    let out = venv_cmd("pip", &home)
        .args([
            "install",
            "--no-cache-dir",
            "--index-url",
            &format!("http://127.0.0.1:{port}/simple/"),
            "--target",
        ])
        .arg(&site)
        .arg("demo-app")
        .output()
        .unwrap();
    let _ = proxy.kill();
    let _ = proxy.wait();
    check(out, "pip through proxy → replica → primary");
    assert_eq!(dist_infos(&site).len(), 3, "{:?}", dist_infos(&site));
}

#[test]
fn a_replica_fed_tampered_data_stores_none_of_it_and_stays_clean() {
    let s = Scenario::new();
    let fx = s.fixture("replica");
    let ts_version = |bytes: &[u8]| parse::<tufa_tuf::Timestamp>("timestamp.json", bytes).version;

    // The fixture as the first sync published it (the old timestamp names the old snapshot,
    // whose bins are all still in tuf/): the replica copies that generation.
    fx.write_tuf("timestamp.json", &s.old_timestamp);
    let (dir, config) = init_replica(&fx.server.url(), &fx.anchor);
    check(tufa(&config, &["sync"]), "replica sync of the first generation");
    let old = published(dir.path(), "timestamp.json").unwrap();
    assert_eq!(ts_version(&old), ts_version(&s.old_timestamp));

    // The second generation, with the new wheel tampered with (same length, one byte flipped).
    fx.reset();
    let wheel = fx.find_target(NEW_WHEEL);
    let file = fx.target_file(&wheel);
    let (honest, evil) = fx.tamper_target(&wheel);
    let out = tufa(&config, &["sync"]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("hash-mismatch"), "{stderr}");
    assert!(stderr.contains(&wheel), "{stderr}");
    // Nothing of it stored, nothing new published, and the replica still verifies.
    assert!(!store_contains(dir.path(), &evil), "tampered bytes stored");
    assert_eq!(
        published(dir.path(), "timestamp.json").unwrap(),
        old,
        "a new timestamp was published"
    );
    check(tufa(&config, &["verify"]), "tufa verify after the refused sync");

    // Honest again: the second generation is copied. Then the primary rolls back to the first
    // one's timestamp: refused, and the replica keeps serving the newer one.
    std::fs::write(&file, &honest).unwrap();
    check(
        tufa(&config, &["sync"]),
        "replica sync once the wheel is honest again",
    );
    let new = published(dir.path(), "timestamp.json").unwrap();
    assert!(ts_version(&new) > ts_version(&old));
    fx.write_tuf("timestamp.json", &s.old_timestamp);
    let out = tufa(&config, &["sync"]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("rollback"),
        "{out:?}"
    );
    assert_eq!(published(dir.path(), "timestamp.json").unwrap(), new);
    check(
        tufa(&config, &["verify"]),
        "tufa verify after the refused rollback",
    );
}
