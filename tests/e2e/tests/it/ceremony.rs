//! The offline key ceremony feeding a real mirror: `tufa-ceremony` creates root (2 of 3),
//! targets and bins from encrypted key files, the mirror imports what it publishes (`tufa
//! import-metadata`) and signs the online roles with its own key, and python-tuf's `ngclient`,
//! trusting only the ceremony's `1.root.json`, verifies what `tufa serve` serves — before and
//! after a root key and the online key are rotated (docs/KEY-CEREMONY.md, end to end).
//!
//! A mirror here has no dev keys: `tufa init` without `--dev-keys` (which configures `[tuf]
//! online_key = "keys/online.json"`), the online key made with `tufa online-key generate`, and
//! rotated with `online-key generate --next` and the import that promotes it. 16 hashed bins
//! (`bins_bit_length = 4` on both sides) keep it fast.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;
use tufa_fake_upstream::{FakeUpstream, ReleaseSpec};

use crate::harness::{COMMAND_TIMEOUT, Mirror, ceremony_bin, check, run_bounded, tufa_bin, tufa_sync};
use crate::tuf::{HTML_PAGE, JSON_PAGE, linked_file};
use crate::tuf_client::{ClientRun, TufClient};

/// What this mirror syncs (a subset of the demo projects).
const PROJECTS: &[&str] = &["demo-lib", "demo-util"];
const BITS: &str = "4";
/// The wheel every client run verifies.
const WHEEL: &str = "demo_lib-1.1-py3-none-any.whl";

/// `tufa --config CONFIG ARGS…`, bounded; not checked.
fn tufa(config: &Path, args: &[&str]) -> Output {
    run_bounded(
        Command::new(tufa_bin()).arg("--config").arg(config).args(args),
        COMMAND_TIMEOUT,
        &format!("tufa {}", args.join(" ")),
    )
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Both streams, for assertion messages.
fn describe(out: &Output) -> String {
    format!(
        "exit {}\nstdout:\n{}\nstderr:\n{}",
        out.status,
        stdout(out),
        stderr(out)
    )
}

fn read_json(path: &Path) -> Value {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_slice(&bytes).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The `.json` files in `dir`, sorted (none when `dir` does not exist).
fn json_files(dir: &Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut names: Vec<String> = entries
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(".json"))
        .collect();
    names.sort();
    names
}

/// Replaces the one line `old` of the config file with `new`, panicking when it is not there.
fn edit_config(config: &Path, old: &str, new: &str) {
    let toml = std::fs::read_to_string(config).unwrap();
    assert!(
        toml.lines().any(|l| l == old),
        "{} has no line `{old}`:\n{toml}",
        config.display()
    );
    let edited: Vec<&str> = toml.lines().map(|l| if l == old { new } else { l }).collect();
    std::fs::write(config, edited.join("\n") + "\n").unwrap();
}

/// One key holder: an encrypted key file, its public key file, and a passphrase of their own.
#[derive(Debug, Clone)]
struct Holder {
    name: &'static str,
    key: PathBuf,
    public: PathBuf,
    passphrase: PathBuf,
}

impl Holder {
    fn keyid(&self) -> String {
        read_json(&self.public)["keyid"].as_str().unwrap().to_owned()
    }
}

/// The ceremony machine's media: one folder per key holder, the ceremony directory, and the
/// transfer stick (the online public keys in, the published metadata out).
#[derive(Debug)]
struct Offline {
    dir: tempfile::TempDir,
}

impl Offline {
    fn new() -> Self {
        Self {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    /// `$CEREMONY`.
    fn cer(&self) -> PathBuf {
        self.dir.path().join("ceremony")
    }

    /// A path on the transfer stick.
    fn transfer(&self, name: &str) -> PathBuf {
        let stick = self.dir.path().join("transfer");
        std::fs::create_dir_all(&stick).unwrap();
        stick.join(name)
    }

    /// `tufa-ceremony ARGS…`, bounded; not checked. Passphrases only ever come from
    /// `--passphrase-file`.
    fn run<I, S>(&self, args: I) -> Output
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let args: Vec<S> = args.into_iter().collect();
        let what = format!(
            "tufa-ceremony {}",
            args.iter()
                .map(|a| a.as_ref().to_string_lossy().into_owned())
                .collect::<Vec<_>>()
                .join(" ")
        );
        run_bounded(
            Command::new(ceremony_bin())
                .args(&args)
                .env_remove("TUFA_CEREMONY_PASSPHRASE")
                .env_remove("TUFA_PKCS11_PIN"),
            COMMAND_TIMEOUT,
            &what,
        )
    }

    /// Like [`Offline::run`], panicking unless it exits 0.
    fn ok<I, S>(&self, args: I) -> Output
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let args: Vec<S> = args.into_iter().collect();
        let first = args.first().map(|a| a.as_ref().to_string_lossy().into_owned());
        let out = self.run(args);
        check(out, &format!("tufa-ceremony {}", first.unwrap_or_default()))
    }

    /// `tufa-ceremony keygen --out $NAME/NAME.key --holder NAME --passphrase-file … --drill`
    /// (a passphrase file is for drills and tests only).
    fn keygen(&self, name: &'static str) -> Holder {
        let medium = self.dir.path().join(name);
        std::fs::create_dir_all(&medium).unwrap();
        let passphrase = self.dir.path().join(format!("{name}.passphrase"));
        std::fs::write(
            &passphrase,
            format!("{name}'s own passphrase, not anyone else's\n"),
        )
        .unwrap();
        let key = medium.join(format!("{name}.key"));
        let out = self.ok([
            OsStr::new("keygen"),
            OsStr::new("--out"),
            key.as_os_str(),
            OsStr::new("--holder"),
            OsStr::new(name),
            OsStr::new("--passphrase-file"),
            passphrase.as_os_str(),
            OsStr::new("--drill"),
        ]);
        let public = medium.join(format!("{name}.key.pub.json"));
        assert!(public.is_file(), "keygen wrote no {}", public.display());
        let holder = Holder {
            name,
            key,
            public,
            passphrase,
        };
        assert!(
            stdout(&out).contains(&holder.keyid()),
            "keygen did not print the key id:\n{}",
            describe(&out)
        );
        holder
    }

    /// `tufa-ceremony sign $CEREMONY ROLE --key … --passphrase-file … --yes` (no terminal to
    /// confirm on).
    fn sign(&self, role: &str, holder: &Holder) -> Output {
        let out = self.run([
            OsStr::new("sign"),
            self.cer().as_os_str(),
            OsStr::new(role),
            OsStr::new("--key"),
            holder.key.as_os_str(),
            OsStr::new("--passphrase-file"),
            holder.passphrase.as_os_str(),
            OsStr::new("--yes"),
        ]);
        check(out, &format!("{} signing {role}", holder.name))
    }

    /// `tufa-ceremony status $CEREMONY` (stdout). Exits 0 when every threshold is met, 3 while
    /// signatures are missing.
    fn status(&self) -> String {
        let out = self.run([OsStr::new("status"), self.cer().as_os_str()]);
        let text = stdout(&out);
        let expected = if text.contains("not ready to publish") {
            3
        } else {
            0
        };
        assert_eq!(out.status.code(), Some(expected), "{}", describe(&out));
        text
    }

    /// `tufa-ceremony publish $CEREMONY --out $TRANSFER/NAME`, unchecked.
    fn try_publish(&self, name: &str) -> (PathBuf, Output) {
        let out_dir = self.transfer(name);
        let out = self.run([
            OsStr::new("publish"),
            self.cer().as_os_str(),
            OsStr::new("--out"),
            out_dir.as_os_str(),
        ]);
        (out_dir, out)
    }

    /// Publishes to `$TRANSFER/NAME` and checks the export offline (`tufa-ceremony verify`).
    fn publish(&self, name: &str) -> PathBuf {
        let (out_dir, out) = self.try_publish(name);
        check(out, "tufa-ceremony publish");
        self.ok([OsStr::new("verify"), out_dir.as_os_str()]);
        self.ok([OsStr::new("verify"), self.cer().as_os_str()]);
        out_dir
    }
}

/// The root 2-of-3 cast of docs/KEY-CEREMONY.md.
#[derive(Debug)]
struct Cast {
    alice: Holder,
    bob: Holder,
    carol: Holder,
    /// targets
    dana: Holder,
    /// bins
    erik: Holder,
}

/// Everything up to the ceremony's unsigned v1: an initialised (not yet synced) mirror
/// directory with its online key, the key holders' keys, and `tufa-ceremony init`.
struct Prepared {
    upstream: FakeUpstream,
    dir: tempfile::TempDir,
    config: PathBuf,
    offline: Offline,
    cast: Cast,
    /// The online public key file on the transfer stick.
    online_pub: PathBuf,
}

impl Prepared {
    fn new() -> Self {
        // On the mirror host: config and online key; the public half goes to the ceremony.
        let (upstream, dir, config) = Mirror::init(PROJECTS, false);
        edit_config(
            &config,
            "bins_bit_length = 14",
            &format!("bins_bit_length = {BITS}"),
        );
        let offline = Offline::new();
        let online_pub = offline.transfer("online.pub.json");
        let out = tufa(
            &config,
            &[
                "online-key",
                "generate",
                "--public-out",
                online_pub.to_str().unwrap(),
            ],
        );
        check(out, "tufa online-key generate");
        assert!(dir.path().join("keys/online.json").is_file());
        assert!(online_pub.is_file());

        // On the ceremony machine: every key holder makes their own key.
        let cast = Cast {
            alice: offline.keygen("alice"),
            bob: offline.keygen("bob"),
            carol: offline.keygen("carol"),
            dana: offline.keygen("dana"),
            erik: offline.keygen("erik"),
        };
        let cer = offline.cer();
        let out = offline.ok([
            OsStr::new("init"),
            cer.as_os_str(),
            OsStr::new("--root-key"),
            cast.alice.public.as_os_str(),
            OsStr::new("--root-key"),
            cast.bob.public.as_os_str(),
            OsStr::new("--root-key"),
            cast.carol.public.as_os_str(),
            OsStr::new("--root-threshold"),
            OsStr::new("2"),
            OsStr::new("--targets-key"),
            cast.dana.public.as_os_str(),
            OsStr::new("--bins-key"),
            cast.erik.public.as_os_str(),
            OsStr::new("--online-key"),
            online_pub.as_os_str(),
            OsStr::new("--bins-bit-length"),
            OsStr::new(BITS),
        ]);
        assert!(
            stdout(&out).contains("delegates 16 hashed bins (bit length 4) to the online key"),
            "{}",
            describe(&out)
        );
        assert_eq!(
            json_files(&cer.join("pending")),
            ["1.bins.json", "1.root.json", "1.targets.json"]
        );
        Self {
            upstream,
            dir,
            config,
            offline,
            cast,
            online_pub,
        }
    }

    /// `tufa sync` before any TUF metadata exists: it publishes, unsigned, and says so.
    fn sync_unsigned(&self) {
        let out = check(tufa_sync(&self.config), "tufa sync");
        assert!(
            stderr(&out).contains("no TUF root metadata yet: pages are published unsigned until the key ceremony's metadata is imported"),
            "tufa sync did not warn that it published unsigned:\n{}",
            describe(&out)
        );
    }

    fn tuf_dir(&self) -> PathBuf {
        self.dir.path().join("data/store/published/tuf")
    }
}

/// A mirror whose offline metadata came from a 2-of-3 root ceremony, serving.
struct Deployed {
    m: Mirror,
    offline: Offline,
    cast: Cast,
    /// `$TRANSFER/initial/1.root.json`: what clients pin.
    anchor: PathBuf,
    online_pub: PathBuf,
}

impl Deployed {
    /// The first ceremony (alice and carol sign root, dana targets, erik bins), `tufa sync`,
    /// `tufa import-metadata`, `tufa verify`, `tufa serve`.
    fn start() -> Self {
        let p = Prepared::new();
        let o = &p.offline;
        let out = o.sign("root", &p.cast.alice);
        assert!(
            stdout(&out).contains("the v1 root keys: 1 of 2 required signature(s)"),
            "{}",
            describe(&out)
        );
        o.sign("root", &p.cast.carol);
        o.sign("targets", &p.cast.dana);
        o.sign("bins", &p.cast.erik);
        let status = o.status();
        assert!(
            status.contains("the v1 root keys: 2 of 2 required signature(s) — threshold met"),
            "{status}"
        );
        assert!(
            status.contains("all thresholds met: ready to publish"),
            "{status}"
        );
        let initial = o.publish("initial");
        assert_eq!(
            json_files(&initial),
            ["1.bins.json", "1.root.json", "1.targets.json"]
        );
        assert!(json_files(&o.cer().join("pending")).is_empty());

        // On the mirror host.
        p.sync_unsigned();
        assert!(
            !p.tuf_dir().join("timestamp.json").exists(),
            "tufa signed before it had root metadata"
        );
        let out = check(
            tufa(&p.config, &["import-metadata", initial.to_str().unwrap()]),
            "tufa import-metadata",
        );
        assert!(
            stdout(&out).contains("imported root v1 (1 new), targets v1, bins v1"),
            "{}",
            describe(&out)
        );
        // The first import prints what the operator checks against the ceremony log.
        let sha = tufa_pypi::Sha256Digest::of(&std::fs::read(initial.join("1.root.json")).unwrap());
        let online = read_json(&p.online_pub)["keyid"].as_str().unwrap().to_owned();
        let first = stdout(&out)
            .lines()
            .find(|l| l.starts_with("first root: "))
            .unwrap_or_else(|| panic!("no `first root:` line:\n{}", describe(&out)))
            .to_owned();
        assert!(
            first.starts_with(&format!("first root: 1.root.json sha256 {}; root keys ", sha.to_hex()))
                && first.contains("(threshold 2)")
                && [&p.cast.alice, &p.cast.bob, &p.cast.carol, &p.cast.dana]
                    .iter()
                    .all(|h| first.contains(&h.keyid()))
                && first.ends_with(&format!(
                    "snapshot/timestamp (online) key {online} (threshold 1): check these against the ceremony log"
                )),
            "{first}"
        );
        check(tufa(&p.config, &["verify"]), "tufa verify");
        // What the mirror serves as 1.root.json is the ceremony's, byte for byte.
        for name in ["1.root.json", "1.targets.json", "1.bins.json"] {
            assert_eq!(
                std::fs::read(p.tuf_dir().join(name)).unwrap(),
                std::fs::read(initial.join(name)).unwrap(),
                "the mirror's {name} is not the ceremony's"
            );
        }
        assert_online_signed(&p.tuf_dir(), &online);

        let Prepared {
            upstream,
            dir,
            config,
            offline,
            cast,
            online_pub,
        } = p;
        let anchor = initial.join("1.root.json");
        Self {
            m: Mirror::serve(upstream, dir, config),
            offline,
            cast,
            anchor,
            online_pub,
        }
    }

    /// A client that pins the ceremony's `1.root.json`, under the mirror's directory.
    fn client(&self, name: &str) -> TufClient {
        TufClient::new(&self.m.work_dir(name), &self.anchor)
    }

    /// `tufa import-metadata DIR`, checked; returns stdout.
    fn import(&self, dir: &Path) -> String {
        let out = check(
            self.m.tufa(&["import-metadata", dir.to_str().unwrap()]),
            "tufa import-metadata",
        );
        check(self.m.tufa(&["verify"]), "tufa verify");
        stdout(&out)
    }
}

/// Asserts that the timestamp, the snapshot it names and every bin that snapshot lists are
/// signed by exactly the key `keyid`.
fn assert_online_signed(tuf_dir: &Path, keyid: &str) {
    let signers = |name: &str| -> Vec<String> {
        read_json(&tuf_dir.join(name))["signatures"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["keyid"].as_str().unwrap().to_owned())
            .collect()
    };
    let ts = read_json(&tuf_dir.join("timestamp.json"));
    assert_eq!(signers("timestamp.json"), [keyid], "timestamp.json");
    let snapshot_version = ts["signed"]["meta"]["snapshot.json"]["version"].as_u64().unwrap();
    let snapshot_name = format!("{snapshot_version}.snapshot.json");
    assert_eq!(signers(&snapshot_name), [keyid], "{snapshot_name}");
    let snapshot = read_json(&tuf_dir.join(&snapshot_name));
    let mut bins = 0;
    for (meta, file) in snapshot["signed"]["meta"].as_object().unwrap() {
        if meta.starts_with("bin-") {
            let name = format!("{}.{meta}", file["version"].as_u64().unwrap());
            assert_eq!(signers(&name), [keyid], "{name}");
            bins += 1;
        }
    }
    assert_eq!(bins, 16, "{snapshot_name} lists {bins} bins, not 16");
}

/// Refreshes `client` and downloads the demo-lib HTML page and `wheel` through it, checking
/// the wheel against upstream's bytes. Returns the refresh that fetched the pages.
fn verify_demo_lib(m: &Mirror, client: &TufClient, wheel: &str) -> ClientRun {
    let root = m.root_url();
    let metadata_url = format!("{root}tuf/");
    let run = client.run(&metadata_url, &root, &[HTML_PAGE, JSON_PAGE]);
    run.assert_ok();
    let html = String::from_utf8(run.target(HTML_PAGE).bytes()).unwrap();
    assert!(html.contains(wheel), "{wheel} is not on the page:\n{html}");
    let (wheel_path, _) = linked_file(&run.target(JSON_PAGE).bytes(), wheel);
    let wheel_run = client.run(&metadata_url, &root, &[&wheel_path]);
    wheel_run.assert_ok();
    assert_eq!(
        wheel_run.target(&wheel_path).bytes(),
        m.upstream.file_bytes(wheel).unwrap(),
        "{wheel} verified but differs from upstream"
    );
    assert_eq!(wheel_run.root_version, run.root_version);
    run
}

/// The root the client now trusts (ngclient keeps it as `root.json` in its metadata dir).
fn client_root(client: &TufClient) -> Value {
    read_json(&client.metadata_dir.join("root.json"))
}

fn role_keyids(root: &Value, role: &str) -> Vec<String> {
    let mut ids: Vec<String> = root["signed"]["roles"][role]["keyids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k.as_str().unwrap().to_owned())
        .collect();
    ids.sort();
    ids
}

fn sorted(ids: &[String]) -> Vec<String> {
    let mut v = ids.to_vec();
    v.sort();
    v
}

#[test]
fn ceremony_2_of_3_root_publishes_a_mirror_python_tuf_verifies() {
    let d = Deployed::start();
    let client = d.client("client");
    let run = verify_demo_lib(&d.m, &client, WHEEL);
    assert_eq!(run.root_version, Some(1), "{}", run.describe());

    // The client trusts what the ceremony decided: root 2 of {alice, bob, carol}, targets dana,
    // snapshot and timestamp the mirror's online key.
    let root = client_root(&client);
    assert_eq!(root["signed"]["roles"]["root"]["threshold"], 2);
    assert_eq!(
        role_keyids(&root, "root"),
        sorted(&[d.cast.alice.keyid(), d.cast.bob.keyid(), d.cast.carol.keyid()])
    );
    assert_eq!(role_keyids(&root, "targets"), [d.cast.dana.keyid()]);
    let online = read_json(&d.online_pub)["keyid"].as_str().unwrap().to_owned();
    for role in ["snapshot", "timestamp"] {
        assert_eq!(role_keyids(&root, role), [online.as_str()], "{role}");
    }
    // Signed by the two root key holders who signed, and nobody else.
    let mut signed_by: Vec<String> = root["signatures"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["keyid"].as_str().unwrap().to_owned())
        .collect();
    signed_by.sort();
    assert_eq!(signed_by, sorted(&[d.cast.alice.keyid(), d.cast.carol.keyid()]));
    // The offline keys never reached the mirror host: only the online key is there.
    assert!(
        json_files(d.m.dir.path()).is_empty(),
        "{:?}",
        json_files(d.m.dir.path())
    );
    assert_eq!(
        json_files(&d.m.dir.path().join("keys")),
        ["online.json"],
        "key files on the mirror host"
    );
}

#[test]
fn under_signed_root_is_refused_by_publish_and_by_the_client() {
    // That python-tuf refuses an under-signed 1.root.json as a trust anchor is proven in the
    // ceremony crate (keys-ceremony/tests/it/ceremony.rs,
    // `under_signed_root_is_refused_by_publish_and_by_python_tuf`); here: publish and the mirror.
    let p = Prepared::new();
    let o = &p.offline;
    o.sign("root", &p.cast.alice);
    o.sign("targets", &p.cast.dana);
    o.sign("bins", &p.cast.erik);
    let status = o.status();
    assert!(
        status.contains("the v1 root keys: 1 of 2 required signature(s) — threshold NOT met"),
        "{status}"
    );
    assert!(
        status.contains("not ready to publish: thresholds unmet"),
        "{status}"
    );

    let (out_dir, out) = o.try_publish("initial");
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    let err = stderr(&out);
    assert!(
        err.contains("cannot publish: role `root` v1 (`pending/1.root.json`) has 1 of 2 required signatures"),
        "{}",
        describe(&out)
    );
    // The missing holders are listed in key id order, which differs from run to run.
    let mut missing: Vec<&str> = err
        .split_once("not yet signed by: ")
        .and_then(|(_, rest)| rest.split_once(')'))
        .unwrap_or_else(|| panic!("no `not yet signed by` list:\n{}", describe(&out)))
        .0
        .split(", ")
        .collect();
    missing.sort_unstable();
    assert_eq!(missing, ["bob", "carol"], "{}", describe(&out));
    assert!(json_files(&out_dir).is_empty(), "publish wrote {out_dir:?}");
    assert!(json_files(&o.cer().join("published")).is_empty());

    // Someone carries the pending files over by hand: the mirror refuses them too, and
    // publishes nothing signed.
    p.sync_unsigned();
    let by_hand = o.transfer("by-hand");
    std::fs::create_dir_all(&by_hand).unwrap();
    for name in ["1.root.json", "1.targets.json", "1.bins.json"] {
        std::fs::copy(o.cer().join("pending").join(name), by_hand.join(name)).unwrap();
    }
    let out = tufa(&p.config, &["import-metadata", by_hand.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    let err = stderr(&out);
    assert!(
        err.contains("`1.root.json`")
            && err.contains("1 valid signature(s) from authorised keys, threshold is 2"),
        "{}",
        describe(&out)
    );
    assert!(
        json_files(&p.tuf_dir()).is_empty(),
        "a refused import published {:?}",
        json_files(&p.tuf_dir())
    );

    // The refusal leaves nothing behind: once bob signs too, publish and import go through.
    o.sign("root", &p.cast.bob);
    let out_dir = o.publish("initial");
    let out = check(
        tufa(&p.config, &["import-metadata", out_dir.to_str().unwrap()]),
        "tufa import-metadata",
    );
    assert!(
        stdout(&out).contains("imported root v1 (1 new)"),
        "{}",
        describe(&out)
    );
    check(tufa(&p.config, &["verify"]), "tufa verify");
    assert!(p.tuf_dir().join("timestamp.json").is_file());
}

#[test]
fn root_rotation_is_followed_by_an_existing_client() {
    let d = Deployed::start();
    let o = &d.offline;
    let client = d.client("client");
    let run = verify_demo_lib(&d.m, &client, WHEEL);
    assert_eq!(run.root_version, Some(1));

    // Bob leaves; dave takes his root key's place (still 2 of 3).
    let dave = o.keygen("dave");
    let out = o.ok([
        OsStr::new("rotate-root"),
        o.cer().as_os_str(),
        OsStr::new("--remove-root-key"),
        OsStr::new("bob"),
        OsStr::new("--add-root-key"),
        dave.public.as_os_str(),
    ]);
    assert_eq!(
        json_files(&o.cer().join("pending")),
        ["2.root.json"],
        "{}",
        describe(&out)
    );

    // Alice and dave meet the new root's threshold but not the old one's: not publishable.
    o.sign("root", &d.cast.alice);
    o.sign("root", &dave);
    let status = o.status();
    assert!(
        status.contains("the v1 root keys: 1 of 2 required signature(s) — threshold NOT met"),
        "{status}"
    );
    assert!(
        status.contains("the v2 root keys: 2 of 2 required signature(s) — threshold met"),
        "{status}"
    );
    let (refused_dir, out) = o.try_publish("rotate-bob-refused");
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    assert!(stderr(&out).contains("role `root` v2"), "{}", describe(&out));
    assert!(json_files(&refused_dir).is_empty());

    // Carol's signature completes both: {alice, carol} of v1, {alice, carol, dave} of v2.
    o.sign("root", &d.cast.carol);
    let status = o.status();
    assert!(
        status.contains("the v1 root keys: 2 of 2 required signature(s) — threshold met"),
        "{status}"
    );
    assert!(
        status.contains("all thresholds met: ready to publish"),
        "{status}"
    );
    let rotated = o.publish("rotate-bob");
    assert_eq!(
        json_files(&rotated),
        ["1.bins.json", "1.root.json", "1.targets.json", "2.root.json"]
    );
    let imported = d.import(&rotated);
    assert!(
        imported.contains("imported root v2 (1 new), targets v1, bins v1"),
        "{imported}"
    );
    assert_eq!(
        std::fs::read(d.m.tuf_dir().join("2.root.json")).unwrap(),
        std::fs::read(rotated.join("2.root.json")).unwrap()
    );

    // The same client walks 1 → 2 and keeps verifying.
    let run = verify_demo_lib(&d.m, &client, WHEEL);
    assert_eq!(run.root_version, Some(2), "{}", run.describe());
    let root = client_root(&client);
    assert_eq!(root["signed"]["version"], 2);
    assert_eq!(
        role_keyids(&root, "root"),
        sorted(&[d.cast.alice.keyid(), d.cast.carol.keyid(), dave.keyid()])
    );
    assert!(!role_keyids(&root, "root").contains(&d.cast.bob.keyid()));

    // So does a new client that pins the ceremony's 1.root.json.
    let fresh = d.client("fresh-client");
    let run = verify_demo_lib(&d.m, &fresh, WHEEL);
    assert_eq!(run.root_version, Some(2), "{}", run.describe());
}

#[test]
fn online_key_rotation_is_followed_by_clients() {
    let d = Deployed::start();
    let o = &d.offline;
    let client = d.client("client");
    let before = verify_demo_lib(&d.m, &client, WHEEL);
    assert_eq!(before.root_version, Some(1));
    let old_online = read_json(&d.online_pub)["keyid"].as_str().unwrap().to_owned();

    // On the mirror host: the next key, beside the current one, which keeps signing.
    let keys = d.m.dir.path().join("keys");
    let new_pub = o.transfer("online-2.pub.json");
    check(
        d.m.tufa(&[
            "online-key",
            "generate",
            "--next",
            "--public-out",
            new_pub.to_str().unwrap(),
        ]),
        "tufa online-key generate --next",
    );
    assert!(keys.join("online.next.json").is_file());
    let new_online = read_json(&new_pub)["keyid"].as_str().unwrap().to_owned();
    assert_ne!(new_online, old_online);

    // On the ceremony machine: root v2 with the new snapshot/timestamp key, bins v2 delegating
    // the hashed bins to it.
    o.ok([
        OsStr::new("rotate-root"),
        o.cer().as_os_str(),
        OsStr::new("--online-key"),
        new_pub.as_os_str(),
    ]);
    assert_eq!(
        json_files(&o.cer().join("pending")),
        ["2.bins.json", "2.root.json"]
    );
    o.sign("root", &d.cast.alice);
    o.sign("root", &d.cast.carol);
    o.sign("bins", &d.cast.erik);
    let status = o.status();
    assert!(
        status.contains("all thresholds met: ready to publish"),
        "{status}"
    );
    let rotated = o.publish("online-key-2");
    assert_eq!(
        json_files(&rotated),
        ["1.root.json", "1.targets.json", "2.bins.json", "2.root.json"]
    );

    // The next key went missing before the import (another host, a wiped disk): the import
    // is refused, naming the keys, and nothing changes.
    let aside = d.m.dir.path().join("online.next.json.aside");
    std::fs::rename(keys.join("online.next.json"), &aside).unwrap();
    let out = d.m.tufa(&["import-metadata", rotated.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    assert!(
        stderr(&out).contains(&format!(
            "root v2 names online key {new_online} (snapshot) / {new_online} (timestamp), but this mirror's online key is {old_online}"
        )) && stderr(&out).contains("its next key is none"),
        "{}",
        describe(&out)
    );
    assert!(!d.m.tuf_dir().join("2.root.json").exists());
    assert_online_signed(&d.m.tuf_dir(), &old_online);
    std::fs::rename(&aside, keys.join("online.next.json")).unwrap();

    // The import promotes the next key: it becomes keys/online.json, the old one is kept.
    let imported = d.import(&rotated);
    assert!(
        imported.contains("imported root v2 (1 new), targets v1, bins v2"),
        "{imported}"
    );
    assert!(
        imported.contains(&format!("online key rotated: now signing with {new_online}")),
        "{imported}"
    );
    assert_eq!(
        json_files(&keys),
        [
            "online.json".to_owned(),
            format!("online.retired-{}.json", &old_online[..8])
        ]
    );
    assert_online_signed(&d.m.tuf_dir(), &new_online);

    // The existing client moves to root v2 and the new key's timestamp.
    let run = verify_demo_lib(&d.m, &client, WHEEL);
    assert_eq!(run.root_version, Some(2), "{}", run.describe());
    assert!(
        run.timestamp_version > before.timestamp_version,
        "{}",
        run.describe()
    );
    let root = client_root(&client);
    for role in ["snapshot", "timestamp"] {
        assert_eq!(role_keyids(&root, role), [new_online.as_str()], "{role}");
    }
    let ts = read_json(&client.metadata_dir.join("timestamp.json"));
    assert_eq!(ts["signatures"][0]["keyid"], Value::String(new_online.clone()));

    // The mirror keeps syncing, signing with the new key, and the client follows.
    d.m.upstream.add_release("demo-lib", ReleaseSpec::new("1.2"));
    d.m.sync();
    check(d.m.tufa(&["verify"]), "tufa verify after the sync");
    assert_online_signed(&d.m.tuf_dir(), &new_online);
    let run = verify_demo_lib(&d.m, &client, "demo_lib-1.2-py3-none-any.whl");
    assert_eq!(run.root_version, Some(2), "{}", run.describe());
    // …and so does a client that starts from the ceremony's 1.root.json.
    let fresh = d.client("fresh-client");
    let run = verify_demo_lib(&d.m, &fresh, "demo_lib-1.2-py3-none-any.whl");
    assert_eq!(run.root_version, Some(2), "{}", run.describe());
}

// ---------------------------------------------------------------------------------------------
// Two safeguards, first found missing while writing the tests above: no rollback through
// re-importing an old export, and no signing with an online key the root does not list.
// ---------------------------------------------------------------------------------------------

/// The bins version listed by the snapshot the mirror currently publishes.
fn published_bins_version(tuf_dir: &Path) -> u64 {
    let ts = read_json(&tuf_dir.join("timestamp.json"));
    let v = ts["signed"]["meta"]["snapshot.json"]["version"].as_u64().unwrap();
    let snapshot = read_json(&tuf_dir.join(format!("{v}.snapshot.json")));
    snapshot["signed"]["meta"]["bins.json"]["version"]
        .as_u64()
        .unwrap()
}

#[test]
fn reimporting_an_older_export_does_not_roll_back_bins() {
    let d = Deployed::start();
    let o = &d.offline;
    let client = d.client("client");
    verify_demo_lib(&d.m, &client, WHEEL);

    // The yearly re-signing of bins: bins v2, imported, seen by the client.
    o.ok([OsStr::new("resign"), o.cer().as_os_str(), OsStr::new("bins")]);
    o.sign("bins", &d.cast.erik);
    let resigned = o.publish("resign-bins");
    let imported = d.import(&resigned);
    assert!(imported.contains("bins v2"), "{imported}");
    verify_demo_lib(&d.m, &client, WHEEL);
    assert_eq!(published_bins_version(&d.m.tuf_dir()), 2);

    // The operator imports the first export again by mistake. Refusing it, or keeping bins v2,
    // are both fine; publishing a snapshot that lists bins v1 is not.
    let initial = o.transfer("initial");
    let out = d.m.tufa(&["import-metadata", initial.to_str().unwrap()]);
    let bins = published_bins_version(&d.m.tuf_dir());
    let run = client.run(&format!("{}tuf/", d.m.root_url()), &d.m.root_url(), &[HTML_PAGE]);
    // Refused: importing it would make the snapshot list bins v1, which the client that saw
    // v2 rejects.
    assert!(
        bins >= 2 && run.success,
        "the mirror rolled bins back to v{bins}:\n{}\nthe client that saw bins v2:\n{}",
        describe(&out),
        run.describe()
    );
}

#[test]
fn refresh_refuses_an_online_key_the_root_does_not_list() {
    let d = Deployed::start();
    let client = d.client("client");
    verify_demo_lib(&d.m, &client, WHEEL);

    // Step one of the online key rotation, followed by a timer's `tufa refresh` before the
    // ceremony's export is imported.
    edit_config(
        &d.m.config,
        "online_key = \"keys/online.json\"",
        "online_key = \"keys/online-2.json\"",
    );
    let new_pub = d.offline.transfer("online-2.pub.json");
    check(
        d.m.tufa(&[
            "online-key",
            "generate",
            "--public-out",
            new_pub.to_str().unwrap(),
        ]),
        "tufa online-key generate",
    );
    let timestamp = d.m.tuf_dir().join("timestamp.json");
    let before = std::fs::read(&timestamp).unwrap();
    let out = d.m.tufa(&["refresh"]);
    let unchanged = std::fs::read(&timestamp).unwrap() == before;
    let run = client.run(&format!("{}tuf/", d.m.root_url()), &d.m.root_url(), &[HTML_PAGE]);
    // Refused: a timestamp signed by the new, unlisted key would make every client fail.
    assert!(
        !out.status.success() && unchanged && run.success,
        "tufa refresh signed with a key root v1 does not list:\n{}\nthe client:\n{}",
        describe(&out),
        run.describe()
    );
}
