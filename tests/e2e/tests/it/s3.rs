//! Object storage end to end: one writer and two stateless readers over one S3 bucket (moto's
//! S3 server: a real S3 HTTP endpoint with SigV4, multipart uploads and conditional writes),
//! with real pip, uv and python-tuf against both readers.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use tufa_fake_upstream::{FakeUpstream, ReleaseSpec};
use tufa_pypi::Sha256Digest;
use tufa_testkit::{S3Server, shared_s3, unique_bucket};

use crate::harness::{
    COMMAND_TIMEOUT, Mirror, PROJECTS, check, dist_infos, run_bounded, runtime, tufa_bin, venv_cmd,
};
use crate::http;
use crate::tuf::served_targets;
use crate::tuf_client::TufClient;

/// The readers' poll interval.
const POLL: Duration = Duration::from_millis(500);
const JSON: &str = "application/vnd.pypi.simple.v1+json";

/// A writer directory (tufa.toml, index, dev keys) whose store is `s3://BUCKET/mirror`.
struct Writer {
    dir: tempfile::TempDir,
    config: PathBuf,
    bucket: String,
    url: String,
    env: Vec<(&'static str, String)>,
}

impl Writer {
    /// `tufa init --storage s3://… --dev-keys` for [`PROJECTS`] (16 bins), then one sync.
    fn init(upstream: &FakeUpstream) -> Self {
        Self::init_with(upstream, PROJECTS)
    }

    /// [`Writer::init`] for `projects`.
    fn init_with(upstream: &FakeUpstream, projects: &[&str]) -> Self {
        let server: &S3Server = shared_s3();
        let bucket = unique_bucket();
        let url = format!("s3://{bucket}/mirror");
        let dir = tempfile::tempdir().unwrap();
        let env = server.env();
        let mut init = Command::new(tufa_bin());
        init.arg("init")
            .arg(dir.path())
            .args([
                "--upstream",
                &upstream.simple_url(),
                "--storage",
                &url,
                "--dev-keys",
            ])
            .envs(env.iter().map(|(k, v)| (*k, v.as_str())));
        for p in projects {
            init.args(["--project", p]);
        }
        check(run_bounded(&mut init, COMMAND_TIMEOUT, "tufa init"), "tufa init");
        let config = dir.path().join("tufa.toml");
        let toml = std::fs::read_to_string(&config).unwrap();
        assert!(toml.contains(&format!("url = \"{url}\"")), "{toml}");
        std::fs::write(
            &config,
            toml.replace("bins_bit_length = 14", "bins_bit_length = 4"),
        )
        .unwrap();
        let writer = Self {
            dir,
            config,
            bucket,
            url,
            env,
        };
        let out = check(writer.tufa(&["sync"]), "tufa sync into S3");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(stdout.contains("files downloaded"), "{stdout}");
        writer
    }

    fn tufa(&self, args: &[&str]) -> Output {
        run_bounded(
            &mut self.command(args),
            COMMAND_TIMEOUT,
            &format!("tufa {}", args.join(" ")),
        )
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(tufa_bin());
        cmd.arg("--config")
            .arg(&self.config)
            .args(args)
            .envs(self.env.iter().map(|(k, v)| (*k, v.as_str())));
        cmd
    }

    /// Another writer host restored from backup: this writer's tufa.toml and keys, no index.
    fn new_host(&self) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("tufa.toml");
        std::fs::copy(&self.config, &config).unwrap();
        let keys = dir.path().join("keys");
        std::fs::create_dir(&keys).unwrap();
        for entry in std::fs::read_dir(self.dir.path().join("keys")).unwrap() {
            let entry = entry.unwrap();
            std::fs::copy(entry.path(), keys.join(entry.file_name())).unwrap();
        }
        Self {
            dir,
            config,
            bucket: self.bucket.clone(),
            url: self.url.clone(),
            env: self.env.clone(),
        }
    }

    /// Every TUF metadata object in the bucket with its bytes.
    fn tuf_objects(&self) -> std::collections::BTreeMap<String, Vec<u8>> {
        shared_s3().objects(&self.bucket, "mirror/published/tuf/")
    }

    /// A reader: a directory holding only a tufa.toml that names the bucket, `tufa serve` on it.
    fn reader(&self, upstream: FakeUpstream) -> Mirror {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("tufa.toml");
        std::fs::write(
            &config,
            format!(
                "[storage]\nurl = \"{}\"\n\n[serve]\npoll_interval_ms = {}\n",
                self.url,
                POLL.as_millis()
            ),
        )
        .unwrap();
        let reader = Mirror::serve_with_env(upstream, dir, config, &self.env);
        let files: Vec<String> = std::fs::read_dir(reader.dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n != "serve.log")
            .collect();
        assert_eq!(files, ["tufa.toml"], "a reader keeps no local state");
        reader
    }
}

/// An upstream that answers nothing: readers never contact one, but [`Mirror`] owns one.
fn idle_upstream() -> FakeUpstream {
    runtime().block_on(FakeUpstream::start(Vec::new()))
}

fn json_filenames(simple_url: &str, project: &str) -> Vec<String> {
    let page = http::get(&format!("{simple_url}{project}/"), &[("Accept", JSON)]);
    assert_eq!(page.status, 200, "{project} from {simple_url}");
    let v: serde_json::Value = serde_json::from_slice(&page.body).unwrap();
    v["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["filename"].as_str().unwrap().to_owned())
        .collect()
}

fn install_with_pip_and_uv(reader: &Mirror, what: &str) {
    let expected = [
        "demo_app-1.0.dist-info",
        "demo_lib-1.1.dist-info",
        "demo_util-0.1.dist-info",
    ];
    // (tool, its install command, its no-cache flag)
    for (tool, install, no_cache) in [
        ("pip", &["install"][..], "--no-cache-dir"),
        ("uv", &["pip", "install"][..], "--no-cache"),
    ] {
        let target = reader.work_dir(&format!("{tool}-site"));
        let out = venv_cmd(tool, reader.dir.path())
            .args(install)
            .args([no_cache, "--index-url", &reader.url, "--target"])
            .arg(&target)
            .arg("demo-app")
            .output()
            .unwrap();
        check(out, &format!("{tool} install from {what}"));
        assert_eq!(dist_infos(&target), expected, "{tool} from {what}");
    }
}

/// python-tuf verifies every page, file and METADATA file the reader links; returns the
/// timestamp version it reached.
fn verify_everything_with_python_tuf(reader: &Mirror, client: &TufClient) -> u64 {
    let root = reader.root_url();
    let targets = served_targets(&reader.url);
    let paths: Vec<&str> = targets.iter().map(String::as_str).collect();
    let run = client.run(&format!("{root}tuf/"), &root, &paths);
    run.assert_ok();
    run.timestamp_version.unwrap()
}

/// One GET: status, `Content-Length` and the body bytes that arrived (the head is parsed only
/// when it arrived whole), or `None` when the server closed the connection before a head.
fn raw_get(url: &str) -> Option<(u16, Option<usize>, Vec<u8>)> {
    use std::io::{Read as _, Write as _};
    let rest = url.strip_prefix("http://").unwrap();
    let (host, path) = rest.split_at(rest.find('/').unwrap());
    let mut conn = std::net::TcpStream::connect(host).unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    write!(
        conn,
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut raw = Vec::new();
    // A reset after a partial body is an answer too: keep what arrived.
    let _ = conn.read_to_end(&mut raw);
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let status = head.split(' ').nth(1)?.parse().ok()?;
    let announced = head
        .lines()
        .filter_map(|l| l.split_once(':'))
        .find(|(n, _)| n.trim().eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.trim().parse().ok());
    Some((status, announced, raw[split + 4..].to_vec()))
}

fn save(path: &Path, bytes: &[u8]) -> PathBuf {
    std::fs::write(path, bytes).unwrap();
    path.to_owned()
}

#[test]
fn two_readers_over_one_bucket_serve_pip_uv_and_python_tuf() {
    let upstream = runtime().block_on(FakeUpstream::start(tufa_fake_upstream::demo_projects()));
    let writer = Writer::init(&upstream);
    let a = writer.reader(upstream);
    let b = writer.reader(idle_upstream());

    // The trust anchor, as a client would get it out of band (here: from the first reader).
    let root = http::get(&format!("{}tuf/1.root.json", a.root_url()), &[]);
    assert_eq!(root.status, 200);
    let anchor = save(&writer.dir.path().join("anchor.json"), &root.body);

    let mut clients = Vec::new();
    for (name, reader) in [("reader A", &a), ("reader B", &b)] {
        install_with_pip_and_uv(reader, name);
        let client = TufClient::new(&reader.work_dir("tuf"), &anchor);
        let version = verify_everything_with_python_tuf(reader, &client);
        assert_eq!(version, 1, "{name}");
        clients.push(client);
    }

    // A new upstream release: after the next sync, both readers list it within the poll
    // interval (plus the time one request takes), and python-tuf follows to the new timestamp.
    a.upstream.add_release("demo-util", ReleaseSpec::new("0.2"));
    check(writer.tufa(&["sync"]), "second tufa sync");
    let synced = Instant::now();
    for (name, reader) in [("reader A", &a), ("reader B", &b)] {
        let seen = crate::harness::wait_for(10, || {
            json_filenames(&reader.url, "demo-util")
                .iter()
                .any(|f| f.starts_with("demo_util-0.2"))
        });
        assert!(seen, "{name} never listed demo-util 0.2");
    }
    let lag = synced.elapsed();
    assert!(
        lag < POLL + Duration::from_secs(3),
        "the readers took {lag:?} to see the publish (poll interval {POLL:?})"
    );
    for ((name, reader), client) in [("reader A", &a), ("reader B", &b)].into_iter().zip(&clients) {
        assert_eq!(verify_everything_with_python_tuf(reader, client), 2, "{name}");
    }
    check(writer.tufa(&["verify"]), "tufa verify on S3");
}

#[test]
fn a_blob_overwritten_in_the_bucket_is_never_served_and_verify_names_it() {
    let upstream = runtime().block_on(FakeUpstream::start(tufa_fake_upstream::demo_projects()));
    let writer = Writer::init(&upstream);
    let reader = writer.reader(upstream);

    let wheel = "demo_util-0.1-py3-none-any.whl";
    let sha = reader.upstream.file_sha256(wheel).unwrap();
    let digest: Sha256Digest = sha.parse().unwrap();
    let files = json_filenames(&reader.url, "demo-util");
    assert!(files.iter().any(|f| f == wheel), "{files:?}");
    let url = format!(
        "{}files/{}/{}/{}/{wheel}",
        reader.root_url(),
        &sha[..2],
        &sha[2..4],
        &sha[4..]
    );
    let good = http::get(&url, &[]);
    assert_eq!(good.status, 200);
    assert_eq!(Sha256Digest::of(&good.body), digest);

    // Same length, other bytes, written straight into the bucket.
    let mut evil = good.body.clone();
    evil[0] ^= 0xff;
    let key = format!("mirror/blobs/sha256/{}/{}/{sha}", &sha[..2], &sha[2..4]);
    shared_s3().put_object(&writer.bucket, &key, &evil);

    // The reader may end the body early (the corruption shows only once the bytes are
    // hashed) or close the connection before any header, when the first chunk is also the
    // last: either way never a complete response.
    let got = raw_get(&url);
    if let Some((status, announced, body)) = &got {
        let complete = *status == 200 && *announced == Some(body.len());
        assert!(
            !complete,
            "the reader served a complete response with the tampered bytes (status {status}, {} of {announced:?} bytes)",
            body.len()
        );
        assert_ne!(Sha256Digest::of(body), Sha256Digest::of(&evil));
    }
    std::thread::sleep(Duration::from_millis(200));
    let log = std::fs::read_to_string(reader.dir.path().join("serve.log")).unwrap();
    assert!(log.contains(&sha), "the reader logs the corrupt digest:\n{log}");

    let out = writer.tufa(&["verify"]);
    assert_eq!(out.status.code(), Some(1), "tufa verify must fail");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains(&sha), "tufa verify names the blob:\n{text}");
}

#[test]
fn an_unreachable_bucket_is_one_error_line() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("tufa.toml");
    std::fs::write(
        &config,
        "[storage]\nurl = \"s3://no-such-bucket/x\"\nendpoint = \"http://127.0.0.1:9\"\nallow_http = true\n",
    )
    .unwrap();
    let mut env = shared_s3().env();
    env.retain(|(k, _)| *k != "AWS_ENDPOINT_URL");
    let out = run_bounded(
        Command::new(tufa_bin())
            .arg("--config")
            .arg(&config)
            .arg("verify")
            .envs(env.iter().map(|(k, v)| (*k, v.as_str()))),
        COMMAND_TIMEOUT,
        "tufa verify",
    );
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let errors: Vec<&str> = stderr.lines().filter(|l| l.starts_with("error:")).collect();
    assert_eq!(errors.len(), 1, "{stderr}");
    assert!(errors[0].contains("s3://no-such-bucket/x"), "{stderr}");

    // A bad URL is a usage error, before anything is written.
    let out = run_bounded(
        Command::new(tufa_bin())
            .arg("init")
            .arg(dir.path().join("new"))
            .args(["--storage", "s3:/nobucket"]),
        COMMAND_TIMEOUT,
        "tufa init",
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(!dir.path().join("new").exists());
}

/// The published timestamp's version.
fn timestamp_version(tuf: &std::collections::BTreeMap<String, Vec<u8>>) -> u64 {
    let ts: serde_json::Value = serde_json::from_slice(&tuf["mirror/published/tuf/timestamp.json"]).unwrap();
    ts["signed"]["version"].as_u64().unwrap()
}

#[test]
fn a_writer_killed_mid_publish_is_replaced_by_a_new_host_and_tuf_clients_follow() {
    // Enough projects that publishing them takes a while on moto.
    let names: Vec<String> = (0..12).map(|i| format!("pkg{i:02}")).collect();
    let specs = names
        .iter()
        .map(|n| tufa_fake_upstream::ProjectSpec::new(n).release(ReleaseSpec::new("1.0")))
        .collect();
    let upstream = runtime().block_on(FakeUpstream::start(specs));
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    let a = Writer::init_with(&upstream, &names);
    let reader = a.reader(idle_upstream());
    let root = http::get(&format!("{}tuf/1.root.json", reader.root_url()), &[]);
    let anchor = save(&a.dir.path().join("anchor.json"), &root.body);
    let pages: Vec<String> = names.iter().map(|n| format!("simple/{n}/index.json")).collect();
    let pages: Vec<&str> = pages.iter().map(String::as_str).collect();
    let client = TufClient::new(&reader.work_dir("tuf"), &anchor);
    let run = client.run(&format!("{}tuf/", reader.root_url()), &reader.root_url(), &pages);
    run.assert_ok();
    let trusted = run.timestamp_version.unwrap();

    // A new release of every project; writer A is SIGKILLed as soon as it starts publishing.
    for n in &names {
        upstream.add_release(n, ReleaseSpec::new("2.0"));
    }
    let mut sync = a
        .command(&["sync"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = std::io::BufReader::new(sync.stderr.take().unwrap());
    let mut seen = Vec::new();
    for line in std::io::BufRead::lines(stderr) {
        let line = line.unwrap();
        let publishing = line.contains("published") && line.contains("project=");
        seen.push(line);
        if publishing {
            break;
        }
    }
    sync.kill().unwrap();
    let status = sync.wait().unwrap();
    assert!(
        !status.success(),
        "writer A finished before it could be killed mid-publish:\n{}",
        seen.join("\n")
    );
    let after_kill = a.tuf_objects();

    // A new writer host: A's config and keys restored, no index. Its sync refuses to publish
    // over the mirror until the index is rebuilt from the bucket.
    let b = a.new_host();
    let out = b.tufa(&["sync"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("rebuild-index"));
    check(b.tufa(&["rebuild-index"]), "tufa rebuild-index on the new host");
    let out = check(b.tufa(&["sync"]), "tufa sync on the new host");
    assert!(String::from_utf8_lossy(&out.stdout).contains("files downloaded"));
    check(b.tufa(&["verify"]), "tufa verify after the takeover");

    // No TUF version reused: every metadata file in the bucket after the kill (the published
    // ones and whatever A wrote before it died) has the same bytes now; the timestamp moved on.
    let now = b.tuf_objects();
    for (key, bytes) in &after_kill {
        if key.ends_with("/timestamp.json") {
            continue;
        }
        assert_eq!(now.get(key), Some(bytes), "{key} was rewritten or removed");
    }
    assert!(timestamp_version(&now) > timestamp_version(&after_kill));

    // The client that trusted A's publish follows, and sees every 2.0.
    let run = client.run(&format!("{}tuf/", reader.root_url()), &reader.root_url(), &pages);
    run.assert_ok();
    assert!(run.timestamp_version.unwrap() > trusted);
    for page in &pages {
        let body = String::from_utf8(run.target(page).bytes()).unwrap();
        assert!(body.contains("-2.0"), "{page}: {body}");
    }
}
