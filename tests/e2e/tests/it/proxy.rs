//! `tufa proxy` between real pip/uv and a tufa mirror: what verifies installs, byte-identical
//! to the signed targets, and installs again offline from the cache; each attack is refused
//! naming its class, and nothing unverified reaches pip's or uv's cache.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

use tufa_pypi::Sha256Digest;
use tufa_tuf::build;

use crate::attacks::{Fixture, NEW_WHEEL, Scenario, sign};
use crate::harness::{Mirror, check, dist_infos, tufa_bin, venv_cmd, wait_for};
use crate::http::get;
use crate::tuf::current_targets;

/// A running `tufa proxy`.
struct Proxy {
    child: Child,
    url: String,
    log: PathBuf,
}

impl Proxy {
    /// Starts a proxy for the mirror at `mirror` (server root URL) trusting `root`, caching in
    /// `cache`, fetching a new timestamp after `refresh_secs`.
    fn start(mirror: &str, root: &Path, cache: &Path, refresh_secs: u64) -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let log = cache.with_extension("log");
        std::fs::create_dir_all(cache.parent().unwrap()).unwrap();
        let child = Command::new(tufa_bin())
            .args(["proxy", "--mirror", mirror, "--trusted-root"])
            .arg(root)
            .args(["--listen", &format!("127.0.0.1:{port}"), "--cache"])
            .arg(cache)
            .args(["--refresh-secs", &refresh_secs.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        let url = format!("http://127.0.0.1:{port}");
        let proxy = Self { child, url, log };
        assert!(
            wait_for(30, || std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()),
            "the proxy did not come up:\n{}",
            proxy.log()
        );
        assert_eq!(get(&format!("{}/healthz", proxy.url), &[]).status, 200);
        proxy
    }

    fn index(&self) -> String {
        format!("{}/simple/", self.url)
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn pip_install(proxy: &Proxy, home: &Path, requirements: &[&str]) -> (Output, PathBuf) {
    let target = home.join("site");
    let out = venv_cmd("pip", home)
        .args(["install", "--cache-dir"])
        .arg(home.join("pip-cache"))
        .args(["--retries", "0", "--index-url", &proxy.index(), "--target"])
        .arg(&target)
        .args(requirements)
        .output()
        .unwrap();
    (out, target)
}

fn uv_install(proxy: &Proxy, home: &Path, requirements: &[&str]) -> (Output, PathBuf) {
    let target = home.join("site");
    let out = venv_cmd("uv", home)
        .args(["pip", "install", "--index-url", &proxy.index(), "--target"])
        .arg(&target)
        .args(requirements)
        .output()
        .unwrap();
    (out, target)
}

fn text(out: &Output) -> String {
    format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Whether any file below `dir` contains `needle`.
fn tree_contains(dir: &Path, needle: &[u8]) -> bool {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return false;
    };
    entries.flatten().any(|e| {
        let path = e.path();
        if path.is_dir() {
            tree_contains(&path, needle)
        } else {
            std::fs::read(&path).is_ok_and(|data| data.windows(needle.len()).any(|w| w == needle))
        }
    })
}

#[test]
fn pip_and_uv_install_through_the_proxy_and_again_offline() {
    let m = Mirror::start_signed();
    let anchor = m.tuf_dir().join("1.root.json");
    let cache = m.work_dir("proxy-cache");
    let proxy = Proxy::start(&m.root_url(), &anchor, &cache, 60);

    let (out, site) = pip_install(&proxy, &m.work_dir("pip"), &["demo-app"]);
    check(out, "pip install through the proxy");
    assert_eq!(
        dist_infos(&site),
        [
            "demo_app-1.0.dist-info",
            "demo_lib-1.1.dist-info",
            "demo_util-0.1.dist-info"
        ]
    );
    let (out, site) = uv_install(&proxy, &m.work_dir("uv"), &["demo-app"]);
    check(out, "uv pip install through the proxy");
    assert_eq!(dist_infos(&site).len(), 3, "{:?}", dist_infos(&site));

    // Pages come out byte-identical to the signed targets, in both formats.
    let targets = current_targets(&m.tuf_dir());
    for (accept, target) in [
        (
            "application/vnd.pypi.simple.v1+json",
            "simple/demo-lib/index.json",
        ),
        ("text/html", "simple/demo-lib/index.html"),
    ] {
        let page = get(&format!("{}demo-lib/", proxy.index()), &[("Accept", accept)]);
        assert_eq!(page.status, 200);
        assert_eq!(
            Sha256Digest::of(&page.body),
            targets[target].sha256().unwrap(),
            "{target}"
        );
    }
    // A name that is not normalised redirects, as on the mirror.
    let redirect = get(&format!("{}Demo_Lib/", proxy.index()), &[]);
    assert_eq!(redirect.status, 301);
    assert_eq!(redirect.header("location"), Some("/simple/demo-lib/"));

    // The mirror goes away: a proxy on the same cache still installs what was verified.
    drop(proxy);
    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead_url = format!("http://{}/", dead.local_addr().unwrap());
    drop(dead);
    let offline = Proxy::start(&dead_url, &anchor, &cache, 60);
    let home = m.work_dir("pip-offline");
    let (out, site) = pip_install(&offline, &home, &["--no-cache-dir", "demo-app"]);
    check(out, "pip install through the proxy with the mirror gone");
    assert_eq!(dist_infos(&site).len(), 3);
    assert!(offline.log().contains("cannot be reached"), "{}", offline.log());
}

/// A proxy in front of a fixture (a static copy of a signed mirror, see `attacks`), fetching a
/// new timestamp on every request.
fn proxy_for(s: &Scenario, fx: &Fixture, name: &str) -> Proxy {
    let cache = s.m.work_dir(&format!("proxy-{name}"));
    Proxy::start(&fx.server.url(), &fx.anchor, &cache, 0)
}

/// pip and uv fail on `requirement`, the proxy names `class` for `target`, and the log says it
/// was refused. Returns pip's output.
fn assert_refused(
    s: &Scenario,
    proxy: &Proxy,
    name: &str,
    requirement: &str,
    target_url: &str,
    class: &str,
) -> String {
    let home = s.m.work_dir(&format!("client-{name}"));
    let (out, site) = pip_install(proxy, &home, &[requirement]);
    assert!(
        !out.status.success(),
        "[{name}] pip installed it:\n{}",
        text(&out)
    );
    assert!(
        dist_infos_or_empty(&site).is_empty(),
        "[{name}] {:?}",
        dist_infos_or_empty(&site)
    );
    let uv_home = s.m.work_dir(&format!("uv-client-{name}"));
    let (uv, uv_site) = uv_install(proxy, &uv_home, &[requirement]);
    assert!(!uv.status.success(), "[{name}] uv installed it:\n{}", text(&uv));
    assert!(
        dist_infos_or_empty(&uv_site).is_empty(),
        "[{name}] uv: {:?}",
        dist_infos_or_empty(&uv_site)
    );
    let answer = get(target_url, &[]);
    assert_eq!(
        answer.header("x-tufa-refused"),
        Some(class),
        "[{name}] {} {}",
        answer.status,
        String::from_utf8_lossy(&answer.body)
    );
    let body = String::from_utf8_lossy(&answer.body);
    assert!(body.contains(class), "[{name}] {body}");
    assert!(proxy.log().contains(class), "[{name}] {}", proxy.log());
    text(&out)
}

fn dist_infos_or_empty(dir: &Path) -> Vec<String> {
    if dir.exists() { dist_infos(dir) } else { Vec::new() }
}

#[test]
fn attacks_through_the_proxy_fail_the_install_naming_the_attack() {
    let s = Scenario::new();
    let fx = s.fixture("proxy");
    let wheel = fx.find_target(NEW_WHEEL);

    // Untampered, the fixture installs (so each refusal below is the attack's doing).
    let proxy = proxy_for(&s, &fx, "honest");
    let (out, site) = pip_install(&proxy, &s.m.work_dir("honest"), &["demo-lib==1.2"]);
    check(out, "pip install from the untampered fixture");
    assert_eq!(dist_infos(&site), ["demo_lib-1.2.dist-info"]);

    // A tampered wheel: same length, one byte flipped. Neither pip nor uv gets it.
    let file = fx.target_file(&wheel);
    let (honest, evil) = fx.tamper_target(&wheel);
    let proxy = proxy_for(&s, &fx, "tampered");
    let wheel_url = format!("{}/{wheel}", proxy.url);
    let pip = assert_refused(
        &s,
        &proxy,
        "tampered",
        "demo-lib==1.2",
        &wheel_url,
        "hash-mismatch",
    );
    // pip prints the status line's reason phrase, which names the attack.
    assert!(pip.contains("tufa refused: hash-mismatch"), "{pip}");
    let home = s.m.work_dir("client-tampered");
    assert!(!tree_contains(&home, &evil), "tampered bytes reached pip's cache");
    let uv_home = s.m.work_dir("uv-tampered");
    let (out, _) = uv_install(&proxy, &uv_home, &["demo-lib==1.2"]);
    assert!(
        !out.status.success(),
        "uv installed a tampered wheel:\n{}",
        text(&out)
    );
    assert!(
        !tree_contains(&uv_home, &evil),
        "tampered bytes reached uv's cache"
    );
    std::fs::write(&file, &honest).unwrap();

    // A rolled-back timestamp, after the proxy trusted the current one.
    let proxy = proxy_for(&s, &fx, "rollback");
    let page_url = format!("{}demo-lib/", proxy.index());
    assert_eq!(get(&page_url, &[]).status, 200);
    fx.write_tuf("timestamp.json", &s.old_timestamp);
    let pip = assert_refused(&s, &proxy, "rollback", "demo-lib", &page_url, "rollback");
    eprintln!("pip on a rolled-back timestamp:\n{pip}");
    fx.reset();

    // An expired timestamp (validly signed by the online key): a freeze.
    let (_, snapshot_bytes, snapshot) = fx.snapshot();
    let past = build::expires_after(jiff::Timestamp::now(), jiff::SignedDuration::from_hours(-1)).unwrap();
    let ts = build::new_timestamp(
        &snapshot_bytes,
        snapshot.version,
        fx.timestamp().version + 1,
        past,
    )
    .unwrap();
    fx.write_tuf("timestamp.json", &sign(ts, &[&s.online]));
    let proxy = proxy_for(&s, &fx, "freeze");
    let page_url = format!("{}demo-lib/", proxy.index());
    assert_refused(&s, &proxy, "freeze", "demo-lib", &page_url, "freeze");
    fx.reset();

    // Bins from an older snapshot under the names the current snapshot lists (the bins of
    // both page formats: pip asks for JSON, the check below for HTML).
    for page in [crate::tuf::HTML_PAGE, "simple/demo-lib/index.json"] {
        let (role, version) = fx.bin_of(page);
        assert!(version >= 2, "{role} was not re-signed by the second sync");
        let old = fx.read_tuf(&format!("{}.{role}.json", version - 1));
        fx.write_tuf(&format!("{version}.{role}.json"), &old);
    }
    let proxy = proxy_for(&s, &fx, "old-bin");
    let page_url = format!("{}demo-lib/", proxy.index());
    assert_refused(&s, &proxy, "old-bin", "demo-lib", &page_url, "rollback");
    fx.reset();

    // A page the mirror serves but nobody signed.
    let evil_dir = fx.dir.join("simple/evil-pkg");
    std::fs::create_dir_all(&evil_dir).unwrap();
    std::fs::write(evil_dir.join("index.html"), b"<a href=\"x.whl\">x.whl</a>").unwrap();
    let proxy = proxy_for(&s, &fx, "unsigned");
    let page_url = format!("{}evil-pkg/", proxy.index());
    assert_refused(&s, &proxy, "unsigned", "evil-pkg", &page_url, "target-not-signed");
}

#[test]
fn a_large_wheel_is_streamed_from_the_verified_cache() {
    let m = Mirror::start_signed();
    // Above the proxy's in-memory answer size (1 MiB): answered by streaming the cache file.
    m.upstream.add_release(
        "demo-util",
        tufa_fake_upstream::ReleaseSpec::new("0.2")
            .wheel_only()
            .payload(3 << 20),
    );
    m.sync();
    let proxy = Proxy::start(
        &m.root_url(),
        &m.tuf_dir().join("1.root.json"),
        &m.work_dir("proxy-cache"),
        60,
    );
    let (out, site) = pip_install(&proxy, &m.work_dir("pip"), &["--no-cache-dir", "demo-util==0.2"]);
    check(out, "pip install of a 3 MiB wheel through the proxy");
    assert_eq!(dist_infos(&site), ["demo_util-0.2.dist-info"]);
    let payload = std::fs::metadata(site.join("demo_util/payload.bin"))
        .unwrap()
        .len();
    assert_eq!(payload, 3 << 20);
    // Fetched once into the cache, then answered from it: byte-identical both times.
    let targets = current_targets(&m.tuf_dir());
    let (path, info) = targets
        .iter()
        .find(|(p, _)| p.ends_with("demo_util-0.2-py3-none-any.whl"))
        .unwrap();
    assert!(info.length > 3 << 20);
    for _ in 0..2 {
        let answer = get(&format!("{}/{path}", proxy.url), &[]);
        assert_eq!(answer.status, 200);
        assert_eq!(Sha256Digest::of(&answer.body), info.sha256().unwrap());
    }
}
