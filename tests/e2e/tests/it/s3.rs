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
        for p in PROJECTS {
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
            Command::new(tufa_bin())
                .arg("--config")
                .arg(&self.config)
                .args(args)
                .envs(self.env.iter().map(|(k, v)| (*k, v.as_str()))),
            COMMAND_TIMEOUT,
            &format!("tufa {}", args.join(" ")),
        )
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
