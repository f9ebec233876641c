//! `tufa-testkit`: test support shared by several crates' test suites. Not for production
//! code (it panics with instructions instead of returning errors).
//!
//! Owns finding — and on first use creating — the Python venv the tests drive: real pip, uv
//! and python-tuf, as pinned in `tests/e2e/requirements.txt` and installed by
//! `tests/e2e/setup-venv.sh`. `$TUFA_E2E_VENV` names it (CI sets it); otherwise it lives next
//! to the build output, `<target>/e2e-venv`, so every test binary of a build shares one.
//!
//! Also owns SoftHSM2 for the PKCS#11 tests: found where distributions put it, and installed on
//! first use with `.ci/setup-softhsm.sh` when it is missing ([`softhsm_module`]), so
//! `cargo test --workspace` passes on a fresh machine as it is.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, OnceLock};

/// The venv with pip, uv and python-tuf, created with `tests/e2e/setup-venv.sh` when it is
/// missing or out of date (the script is quick when it is up to date).
pub fn venv() -> PathBuf {
    static VENV: OnceLock<PathBuf> = OnceLock::new();
    static LOCK: Mutex<()> = Mutex::new(());
    VENV.get_or_init(|| {
        let _guard = LOCK.lock().unwrap_or_else(|e| e.into_inner());
        let path = match std::env::var_os("TUFA_E2E_VENV") {
            Some(p) => PathBuf::from(p),
            None => target_dir().join("e2e-venv"),
        };
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/e2e/setup-venv.sh");
        let status = Command::new("bash").arg(&script).arg(&path).status();
        assert!(
            status.is_ok_and(|s| s.success()),
            "{} {} failed: the tests need pip, uv and python-tuf from the package registry",
            script.display(),
            path.display()
        );
        path
    })
    .clone()
}

/// The venv's Python, checked to import python-tuf's `ngclient`.
pub fn python_with_tuf() -> PathBuf {
    let python = venv().join("bin/python");
    let ok = Command::new(&python)
        .args(["-c", "import tuf.ngclient, securesystemslib.formats"])
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        ok,
        "{} cannot import python-tuf: is `tuf` in tests/e2e/requirements.txt?",
        python.display()
    );
    python
}

// ---------------------------------------------------------------------------------------------
// SoftHSM2, the software PKCS#11 token the signing tests use. Each test makes its own config
// and tokens in a temporary directory (`SOFTHSM2_CONF`), never touching /etc or /var/lib.
// ---------------------------------------------------------------------------------------------

/// Overrides where the SoftHSM2 module is (tests also pass the one they found to children).
pub const MODULE_ENV: &str = "TUFA_PKCS11_MODULE";

pub const SOFTHSM_SETUP_HINT: &str = "run `sudo bash .ci/setup-softhsm.sh` (it installs the Debian package \
     softhsm2), or set TUFA_PKCS11_MODULE to the path of libsofthsm2.so";

/// Where distributions put libsofthsm2.so.
const SOFTHSM_CANDIDATES: &[&str] = &[
    "/usr/lib/softhsm/libsofthsm2.so",
    "/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so",
    "/usr/lib/aarch64-linux-gnu/softhsm/libsofthsm2.so",
    "/usr/local/lib/softhsm/libsofthsm2.so",
    "/usr/lib64/pkcs11/libsofthsm2.so",
    "/usr/lib/pkcs11/libsofthsm2.so",
    "/opt/homebrew/lib/softhsm/libsofthsm2.so",
];

/// The module, when SoftHSM2 is usable: the library is there and so is `softhsm2-util`
/// (Debian ships them in two packages; `apt-get remove softhsm2` leaves the library behind).
fn find_softhsm_module() -> Option<PathBuf> {
    let util = Command::new("softhsm2-util")
        .arg("--version")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !util {
        return None;
    }
    SOFTHSM_CANDIDATES.iter().map(PathBuf::from).find(|p| p.is_file())
}

/// The build's target directory (`<target>/<profile>/deps/<test binary>`), shared by every
/// test binary of a build.
fn target_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("the test binary has a path");
    exe.ancestors()
        .nth(3)
        .expect("test binaries live in <target>/<profile>/deps")
        .to_owned()
}

/// `TUFA_PKCS11_MODULE`, or libsofthsm2.so where distributions put it. When SoftHSM2 is not
/// installed, installs it first with `.ci/setup-softhsm.sh` (the Debian package `softhsm2`,
/// through sudo when not root), once: under a file lock in the target directory, so test
/// binaries running in parallel install it once between them. If that is impossible the test
/// fails saying what to run; it is never skipped.
pub fn softhsm_module() -> PathBuf {
    if let Some(path) = std::env::var_os(MODULE_ENV) {
        let path = PathBuf::from(path);
        assert!(
            path.is_file(),
            "SoftHSM2 module not found: {MODULE_ENV}={} is not a file; {SOFTHSM_SETUP_HINT}",
            path.display()
        );
        return path;
    }
    static MODULE: OnceLock<PathBuf> = OnceLock::new();
    static LOCK: Mutex<()> = Mutex::new(());
    if let Some(found) = MODULE.get() {
        return found.clone();
    }
    let _guard = LOCK.lock().unwrap_or_else(|e| e.into_inner());
    MODULE
        .get_or_init(|| {
            if let Some(found) = find_softhsm_module() {
                return found;
            }
            // Between processes: the first test binary to get here installs, the others wait
            // for it and then find the module.
            let target = target_dir();
            std::fs::create_dir_all(&target).expect("create the target directory");
            let lock_path = target.join("softhsm-setup.lock");
            let lock = std::fs::File::create(&lock_path)
                .unwrap_or_else(|e| panic!("cannot create {}: {e}", lock_path.display()));
            lock.lock()
                .unwrap_or_else(|e| panic!("cannot lock {}: {e}", lock_path.display()));
            if let Some(found) = find_softhsm_module() {
                return found;
            }
            let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.ci/setup-softhsm.sh");
            eprintln!(
                "SoftHSM2 is not installed: installing it with {} (once)",
                script.display()
            );
            // Non-interactive: a sudo that would ask for a password fails instead of waiting.
            let status = Command::new("bash")
                .arg(&script)
                .env("SOFTHSM_SETUP_NONINTERACTIVE", "1")
                .stdin(std::process::Stdio::null())
                .status();
            let found = find_softhsm_module();
            let _ = lock.unlock();
            found.unwrap_or_else(|| {
                panic!(
                    "SoftHSM2 is not installed and {} could not install it ({}): the PKCS#11 tests \
                     need it; {SOFTHSM_SETUP_HINT} (looked for libsofthsm2.so in {SOFTHSM_CANDIDATES:?})",
                    script.display(),
                    match status {
                        Ok(s) => format!("it exited with {s}"),
                        Err(e) => format!("cannot run bash: {e}"),
                    }
                )
            })
        })
        .clone()
}

/// Writes a SoftHSM2 config whose token directory is `dir/tokens`; returns its path (for
/// `SOFTHSM2_CONF`).
pub fn softhsm_config(dir: &Path) -> PathBuf {
    let tokens = dir.join("tokens");
    std::fs::create_dir(&tokens).unwrap();
    let conf = dir.join("softhsm2.conf");
    std::fs::write(
        &conf,
        format!(
            "directories.tokendir = {}\nobjectstore.backend = file\nlog.level = ERROR\nslots.removable = false\n",
            tokens.display()
        ),
    )
    .unwrap();
    conf
}

/// Initialises a token `label` in the config `conf` with `softhsm2-util` (installing SoftHSM2
/// first when needed, see [`softhsm_module`]).
pub fn softhsm_init_token(conf: &Path, label: &str, so_pin: &str, pin: &str) {
    softhsm_module();
    let out = Command::new("softhsm2-util")
        .args([
            "--init-token",
            "--free",
            "--label",
            label,
            "--so-pin",
            so_pin,
            "--pin",
            pin,
        ])
        .env("SOFTHSM2_CONF", conf)
        .output()
        .unwrap_or_else(|e| {
            panic!("SoftHSM2 is not installed (cannot run softhsm2-util: {e}): {SOFTHSM_SETUP_HINT}")
        });
    assert!(
        out.status.success(),
        "softhsm2-util --init-token --label {label} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

// ---------------------------------------------------------------------------------------------
// moto's S3 server: a real S3 HTTP endpoint (SigV4, multipart uploads, conditional writes) for
// the object-storage tests. `moto[server]` is pinned in tests/e2e/requirements.txt, so it lives
// in the same venv as pip and uv.
// ---------------------------------------------------------------------------------------------

/// A running `moto_server` on a free loopback port, stopped when dropped.
#[derive(Debug)]
pub struct S3Server {
    child: std::process::Child,
    port: u16,
}

impl S3Server {
    /// Access key the tests use (moto accepts any).
    pub const ACCESS_KEY: &str = "tufa-test-key";
    pub const SECRET_KEY: &str = "tufa-test-secret";
    pub const REGION: &str = "us-east-1";

    /// Starts the server and waits until it answers.
    pub fn start() -> Self {
        let exe = venv().join("bin/moto_server");
        assert!(
            exe.is_file(),
            "{} is missing: is `moto[server]` in tests/e2e/requirements.txt?",
            exe.display()
        );
        let (child, port) = start_watched(
            "moto_server",
            &exe,
            |port| vec!["-H".into(), "127.0.0.1".into(), "-p".into(), port.to_string()],
            |port| http_status(port, "GET", "/", b"") == Some(200),
        );
        Self { child, port }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// `http://127.0.0.1:PORT`
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Creates a bucket (S3 names: 3-63 lowercase letters, digits, `-`).
    pub fn create_bucket(&self, name: &str) {
        let status = self.request("PUT", &format!("/{name}"));
        assert_eq!(status, Some(200), "creating bucket {name} on moto");
    }

    /// The standard AWS environment that points a client at this server.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("AWS_ACCESS_KEY_ID", Self::ACCESS_KEY.to_owned()),
            ("AWS_SECRET_ACCESS_KEY", Self::SECRET_KEY.to_owned()),
            ("AWS_REGION", Self::REGION.to_owned()),
            ("AWS_ENDPOINT_URL", self.endpoint()),
            ("AWS_ALLOW_HTTP", "true".to_owned()),
            // Never let a test reach a real metadata service or config.
            ("AWS_EC2_METADATA_DISABLED", "true".to_owned()),
            ("AWS_CONFIG_FILE", "/dev/null".to_owned()),
            ("AWS_SHARED_CREDENTIALS_FILE", "/dev/null".to_owned()),
        ]
    }

    /// Runs `body` (Python, with `s3` a boto3 client of this server and `argv` the extra
    /// arguments) with `stdin`; its output. Exit code 3 is left to the caller ("not found").
    fn boto3(&self, body: &str, args: &[&str], stdin: &[u8]) -> std::process::Output {
        use std::io::Write as _;
        let script = format!(
            "import sys, boto3\n\
             s3 = boto3.client('s3', endpoint_url=sys.argv[1], region_name=sys.argv[2], \
             aws_access_key_id=sys.argv[3], aws_secret_access_key=sys.argv[4])\n\
             argv = sys.argv[5:]\n{body}\n"
        );
        let mut child = Command::new(venv().join("bin/python"))
            .args([
                "-c",
                &script,
                &self.endpoint(),
                Self::REGION,
                Self::ACCESS_KEY,
                Self::SECRET_KEY,
            ])
            .args(args)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("run the venv's python");
        child.stdin.take().unwrap().write_all(stdin).unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success() || out.status.code() == Some(3),
            "boto3 {body:?} {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        out
    }

    /// Overwrites (or creates) object `key` in `bucket` with `body`, behind tufa's back: what
    /// an attacker with write access to the bucket, or a broken replication, does. A signed
    /// request through boto3 (moto refuses anonymous writes to existing objects).
    pub fn put_object(&self, bucket: &str, key: &str, body: &[u8]) {
        self.boto3(
            "s3.put_object(Bucket=argv[0], Key=argv[1], Body=sys.stdin.buffer.read())",
            &[bucket, key],
            body,
        );
    }

    /// The bytes of object `key` in `bucket`, or `None` when there is none.
    pub fn get_object(&self, bucket: &str, key: &str) -> Option<Vec<u8>> {
        let out = self.boto3(
            "try: sys.stdout.buffer.write(s3.get_object(Bucket=argv[0], Key=argv[1])['Body'].read())\n\
             except s3.exceptions.NoSuchKey: sys.exit(3)",
            &[bucket, key],
            b"",
        );
        out.status.success().then_some(out.stdout)
    }

    /// Every object under `prefix` in `bucket` with its bytes (one boto3 run).
    pub fn objects(&self, bucket: &str, prefix: &str) -> std::collections::BTreeMap<String, Vec<u8>> {
        let out = self.boto3(
            "for page in s3.get_paginator('list_objects_v2').paginate(Bucket=argv[0], Prefix=argv[1]):\n\
             \x20for o in page.get('Contents', []):\n\
             \x20\x20print(o['Key'], s3.get_object(Bucket=argv[0], Key=o['Key'])['Body'].read().hex())",
            &[bucket, prefix],
            b"",
        );
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|line| {
                let (key, hex) = line.split_once(' ')?;
                let bytes = (0..hex.len())
                    .step_by(2)
                    .map(|i| u8::from_str_radix(hex.get(i..i + 2)?, 16).ok())
                    .collect::<Option<Vec<u8>>>()?;
                Some((key.to_owned(), bytes))
            })
            .collect()
    }

    /// The keys of the incomplete multipart uploads in `bucket` (S3 ListMultipartUploads).
    pub fn multipart_uploads(&self, bucket: &str) -> Vec<String> {
        let out = self.boto3(
            "for u in s3.list_multipart_uploads(Bucket=argv[0]).get('Uploads', []): print(u['Key'])",
            &[bucket],
            b"",
        );
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(str::to_owned)
            .collect()
    }

    /// Sends one bodiless request; the status code, or `None` when the server does not answer.
    fn request(&self, method: &str, path: &str) -> Option<u16> {
        http_status(self.port, method, path, b"")
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        stop_group(&mut self.child);
    }
}

/// Kills a watched server's whole process group (the watchdog shell and the server).
fn stop_group(child: &mut std::process::Child) {
    let _ = Command::new("kill")
        .args(["-TERM", "--", &format!("-{}", child.id())])
        .status();
    let _ = child.wait();
}

/// Starts `exe args(port)` on a free loopback port under a watchdog shell, in its own process
/// group: the shell stops the server when this process is gone (a shared server in a static is
/// never dropped), and [`stop_group`] kills both. Waits until `ready(port)`; retries on another
/// port when the server exits (the port was taken meanwhile).
fn start_watched(
    name: &str,
    exe: &Path,
    args: impl Fn(u16) -> Vec<String>,
    ready: impl Fn(u16) -> bool,
) -> (std::process::Child, u16) {
    use std::os::unix::process::CommandExt as _;
    for _ in 0..5 {
        let port = free_port();
        let log = std::env::temp_dir().join(format!("tufa-{name}-{port}.log"));
        let log_file = std::fs::File::create(&log).unwrap();
        let script = format!(
            "\"$0\" \"$@\" & m=$!; \
             while kill -0 {parent} 2>/dev/null && kill -0 $m 2>/dev/null; do sleep 1; done; \
             kill $m 2>/dev/null; wait $m",
            parent = std::process::id()
        );
        let mut child = Command::new("sh")
            .arg("-c")
            .arg(script)
            .arg(exe)
            .args(args(port))
            .process_group(0)
            .stdout(log_file.try_clone().unwrap())
            .stderr(log_file)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", exe.display()));
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        while std::time::Instant::now() < deadline {
            if let Ok(Some(_)) = child.try_wait() {
                break;
            }
            if ready(port) {
                return (child, port);
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        stop_group(&mut child);
        eprintln!(
            "{name} on port {port} did not start: {}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
    }
    panic!("{name} did not start (see the logs above)");
}

/// Sends one request with `body` to 127.0.0.1:`port`; the status code, or `None` when nothing
/// answers.
fn http_status(port: u16, method: &str, path: &str, body: &[u8]) -> Option<u16> {
    use std::io::{Read as _, Write as _};
    let mut conn = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    conn.set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .ok()?;
    write!(
        conn,
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .ok()?;
    conn.write_all(body).ok()?;
    let mut head = [0u8; 12];
    conn.read_exact(&mut head).ok()?;
    std::str::from_utf8(head.get(9..12)?).ok()?.parse().ok()
}

/// One server shared by all tests of a test binary (each test makes its own bucket with
/// [`unique_bucket`]); stopped by its watchdog when the test binary exits.
pub fn shared_s3() -> &'static S3Server {
    static SERVER: OnceLock<S3Server> = OnceLock::new();
    SERVER.get_or_init(S3Server::start)
}

/// A fresh bucket on the shared server: `tufa-<counter>-<pid>`.
pub fn unique_bucket() -> String {
    let name = unique_name();
    shared_s3().create_bucket(&name);
    name
}

/// `tufa-<counter>-<pid>`: unique in this process and among concurrent test binaries, and a
/// valid S3 bucket and Azure container name.
fn unique_name() -> String {
    static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    format!("tufa-{n}-{}", std::process::id())
}

/// A port that was free a moment ago.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("bind a loopback port")
}

// ---------------------------------------------------------------------------------------------
// Azurite: Microsoft's Azure Blob Storage emulator (npm package `azurite`), installed on first use
// with `.ci/setup-azurite.sh` into the target directory, for tufa-store's Azure tests.
// ---------------------------------------------------------------------------------------------

/// A running `azurite-blob` on a free loopback port (in-memory), stopped when dropped.
#[derive(Debug)]
pub struct Azurite {
    child: std::process::Child,
    port: u16,
}

impl Azurite {
    /// Azurite's well-known development account and key.
    pub const ACCOUNT: &str = "devstoreaccount1";
    pub const KEY: &str =
        "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

    /// Installs Azurite if needed (once, under a file lock), starts it and waits until it answers.
    pub fn start() -> Self {
        let dir = target_dir().join("azurite");
        std::fs::create_dir_all(&dir).unwrap();
        let lock_path = dir.join("setup.lock");
        let lock = std::fs::File::create(&lock_path).unwrap();
        lock.lock().unwrap();
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.ci/setup-azurite.sh");
        let status = Command::new("bash").arg(&script).arg(&dir).status();
        let _ = lock.unlock();
        assert!(
            status.is_ok_and(|s| s.success()),
            "{} {} failed: the Azure tests need Azurite from npm (and node/npm)",
            script.display(),
            dir.display()
        );
        let exe = dir.join("node_modules/.bin/azurite-blob");
        let (child, port) = start_watched(
            "azurite",
            &exe,
            |port| {
                [
                    "--blobHost",
                    "127.0.0.1",
                    "--blobPort",
                    &port.to_string(),
                    "--inMemoryPersistence",
                    "--skipApiVersionCheck",
                    "--silent",
                ]
                .map(str::to_owned)
                .to_vec()
            },
            |port| http_status(port, "GET", "/", b"").is_some(),
        );
        Self { child, port }
    }

    /// `http://127.0.0.1:PORT/devstoreaccount1`: the account's blob endpoint.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}/{}", self.port, Self::ACCOUNT)
    }

    /// Creates a container (3-63 lowercase letters, digits, `-`), with a SharedKey-signed
    /// request (Python's standard library: no Azure SDK needed).
    pub fn create_container(&self, name: &str) {
        let script = r#"
import base64, hashlib, hmac, sys, urllib.request, email.utils
port, account, key, name = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
date = email.utils.formatdate(usegmt=True)
version = "2021-08-06"
to_sign = "PUT\n\n\n\n\n\n\n\n\n\n\n\n" + f"x-ms-date:{date}\nx-ms-version:{version}\n" \
    + f"/{account}/{account}/{name}\nrestype:container"
sig = base64.b64encode(hmac.new(base64.b64decode(key), to_sign.encode(), hashlib.sha256).digest()).decode()
req = urllib.request.Request(f"http://127.0.0.1:{port}/{account}/{name}?restype=container", method="PUT",
    headers={"x-ms-date": date, "x-ms-version": version, "Authorization": f"SharedKey {account}:{sig}", "Content-Length": "0"})
print(urllib.request.urlopen(req).status)
"#;
        let out = Command::new("python3")
            .args([
                "-c",
                script,
                &self.port.to_string(),
                Self::ACCOUNT,
                Self::KEY,
                name,
            ])
            .output()
            .expect("run python3");
        assert!(
            out.status.success(),
            "creating container {name} on Azurite failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

impl Drop for Azurite {
    fn drop(&mut self) {
        stop_group(&mut self.child);
    }
}

/// One Azurite shared by all tests of a test binary; stopped by its watchdog at exit.
pub fn shared_azurite() -> &'static Azurite {
    static SERVER: OnceLock<Azurite> = OnceLock::new();
    SERVER.get_or_init(Azurite::start)
}

/// A fresh container on the shared Azurite: `tufa-<counter>-<pid>`.
pub fn unique_container() -> String {
    let name = unique_name();
    shared_azurite().create_container(&name);
    name
}
