//! Starting the pieces: a fake upstream on a shared runtime, the real `tufa` binary, a venv
//! with pip and uv.

use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{OnceLock, mpsc};
use std::time::{Duration, Instant};

use tufa_fake_upstream::FakeUpstream;

/// The projects every e2e mirror syncs.
pub const PROJECTS: &[&str] = &["demo-app", "demo-lib", "demo-util", "Foo.Bar_baz"];

/// The runtime that serves every fake upstream of this test binary.
pub fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap()
    })
}

/// `target/<profile>/tufa`, next to this test binary's `deps/` folder.
pub fn tufa_bin() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().unwrap().parent().unwrap();
    let bin = dir.join("tufa");
    assert!(
        bin.exists(),
        "{} not built; run `cargo test --workspace` (it builds the tufa binary)",
        bin.display()
    );
    bin
}

/// `target/<profile>/tufa-ceremony`, the offline key-ceremony tool, next to `tufa`.
pub fn ceremony_bin() -> PathBuf {
    let bin = tufa_bin().with_file_name("tufa-ceremony");
    assert!(
        bin.exists(),
        "{} not built; run `cargo build -p tufa-ceremony` (or `cargo test --workspace`)",
        bin.display()
    );
    bin
}

/// How long one `tufa` or `tufa-ceremony` command (init, sync, import, …) may take.
pub const COMMAND_TIMEOUT: Duration = Duration::from_secs(180);

/// Runs `cmd` to completion with stdin closed, capturing its output; kills it and panics (with
/// what it printed so far) after `timeout`.
pub fn run_bounded(cmd: &mut Command, timeout: Duration, what: &str) -> Output {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{what}: cannot start: {e}"));
    let mut out_pipe = child.stdout.take().unwrap();
    let mut err_pipe = child.stderr.take().unwrap();
    let out_reader = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = std::io::Read::read_to_end(&mut out_pipe, &mut v);
        v
    });
    let err_reader = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = std::io::Read::read_to_end(&mut err_pipe, &mut v);
        v
    });
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if start.elapsed() > timeout {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "{what} did not finish within {timeout:?}\nstdout:\n{}\nstderr:\n{}",
                String::from_utf8_lossy(&out_reader.join().unwrap()),
                String::from_utf8_lossy(&err_reader.join().unwrap())
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    Output {
        status,
        stdout: out_reader.join().unwrap(),
        stderr: err_reader.join().unwrap(),
    }
}

/// The venv with pip, uv and python-tuf (shared with the other suites; see `tufa-testkit`).
pub fn venv() -> PathBuf {
    tufa_testkit::venv()
}

/// A running mirror: fake upstream, a synced tufa directory, and `tufa serve` on a free port.
pub struct Mirror {
    pub upstream: FakeUpstream,
    pub dir: tempfile::TempDir,
    pub url: String,
    pub config: PathBuf,
    server: Child,
    server_log: PathBuf,
}

impl Mirror {
    /// A mirror that publishes unsigned (no TUF keys).
    pub fn start() -> Self {
        Self::start_with(false)
    }

    /// A mirror signing with TUF: `tufa init --dev-keys` (INSECURE keys in `DIR/keys/`) and 16
    /// hashed bins (`bins_bit_length = 4`) instead of 16,384, so a sync stays fast.
    pub fn start_signed() -> Self {
        Self::start_with(true)
    }

    fn start_with(signed: bool) -> Self {
        let (upstream, dir, config) = Self::init(PROJECTS, signed);
        if signed {
            let toml = std::fs::read_to_string(&config).unwrap();
            let line = "bins_bit_length = 14";
            assert!(
                toml.lines().any(|l| l == line),
                "`tufa init --dev-keys` no longer writes `{line}`:\n{toml}"
            );
            std::fs::write(&config, toml.replace(line, "bins_bit_length = 4")).unwrap();
        }
        check(tufa_sync(&config), "tufa sync");
        Self::serve(upstream, dir, config)
    }

    /// A fake upstream with the demo projects and `tufa init DIR --upstream … --project …` for
    /// `projects` (plus `--dev-keys` when asked): the upstream, DIR and DIR/tufa.toml, before
    /// any sync. Finish with [`Mirror::serve`].
    pub fn init(projects: &[&str], dev_keys: bool) -> (FakeUpstream, tempfile::TempDir, PathBuf) {
        let upstream = runtime().block_on(FakeUpstream::start(tufa_fake_upstream::demo_projects()));
        let dir = tempfile::tempdir().unwrap();
        let mut init = Command::new(tufa_bin());
        init.arg("init")
            .arg(dir.path())
            .arg("--upstream")
            .arg(upstream.simple_url());
        for p in projects {
            init.arg("--project").arg(p);
        }
        if dev_keys {
            init.arg("--dev-keys");
        }
        check(run_bounded(&mut init, COMMAND_TIMEOUT, "tufa init"), "tufa init");
        let config = dir.path().join("tufa.toml");
        (upstream, dir, config)
    }

    /// Starts `tufa serve --listen 127.0.0.1:0` on a directory made by [`Mirror::init`] (and
    /// synced, or not, by the caller).
    ///
    /// The server reads the store on every request (`poll_interval_ms = 0`), so a test sees a
    /// publish as soon as `tufa sync` returns; the object-store tests set their own interval.
    pub fn serve(upstream: FakeUpstream, dir: tempfile::TempDir, config: PathBuf) -> Self {
        Self::serve_with_env(upstream, dir, config, &[])
    }

    /// [`Mirror::serve`] with extra environment variables for `tufa serve` (object-store
    /// credentials).
    pub fn serve_with_env(
        upstream: FakeUpstream,
        dir: tempfile::TempDir,
        config: PathBuf,
        env: &[(&'static str, String)],
    ) -> Self {
        let toml = std::fs::read_to_string(&config).unwrap();
        if !toml.lines().any(|l| l.starts_with("poll_interval_ms")) {
            assert!(
                toml.contains("\n[serve]\n"),
                "no [serve] section in {}",
                config.display()
            );
            std::fs::write(
                &config,
                toml.replace("\n[serve]\n", "\n[serve]\npoll_interval_ms = 0\n"),
            )
            .unwrap();
        }
        let server_log = dir.path().join("serve.log");
        let mut server = Command::new(tufa_bin())
            .arg("--config")
            .arg(&config)
            .args(["serve", "--listen", "127.0.0.1:0"])
            .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&server_log).unwrap())
            .spawn()
            .unwrap();
        // The first line names the address; read it on a thread so a server that never
        // prints cannot hang the test.
        let stdout = server.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        let line = match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(line) => line,
            Err(_) => {
                let _ = server.kill();
                let _ = server.wait();
                panic!(
                    "tufa serve printed no address within 60 s:\n{}",
                    std::fs::read_to_string(&server_log).unwrap_or_default()
                );
            }
        };
        let Some(url) = line.trim().strip_prefix("serving ").map(str::to_owned) else {
            let _ = server.kill();
            let _ = server.wait();
            panic!(
                "unexpected serve output {line:?}:\n{}",
                std::fs::read_to_string(&server_log).unwrap_or_default()
            );
        };
        assert!(
            url.starts_with("http://127.0.0.1:") && url.ends_with("/simple/"),
            "{url}"
        );
        Self {
            upstream,
            dir,
            url,
            config,
            server,
            server_log,
        }
    }

    /// The process id of `tufa serve`.
    pub fn server_pid(&self) -> u32 {
        self.server.id()
    }

    /// Runs `tufa sync` again (the server keeps running), panicking unless it succeeds.
    pub fn sync(&self) -> Output {
        check(tufa_sync(&self.config), "tufa sync")
    }

    /// Runs `tufa <args>` against this mirror's config.
    pub fn tufa(&self, args: &[&str]) -> Output {
        run_bounded(
            Command::new(tufa_bin())
                .arg("--config")
                .arg(&self.config)
                .args(args),
            COMMAND_TIMEOUT,
            &format!("tufa {}", args.join(" ")),
        )
    }

    /// The server root (`http://127.0.0.1:PORT/`): `/tuf/…`, `/simple/…` and `/files/…` are below.
    pub fn root_url(&self) -> String {
        self.url.strip_suffix("simple/").unwrap().to_owned()
    }

    /// Where the published TUF metadata files are (`1.root.json`, `timestamp.json`, …).
    pub fn tuf_dir(&self) -> PathBuf {
        self.dir.path().join("data/store/published/tuf")
    }

    /// The stored blob with this sha256 (files, pages and METADATA are all blobs).
    pub fn blob_path(&self, sha256_hex: &str) -> PathBuf {
        self.dir
            .path()
            .join("data/store/blobs/sha256")
            .join(&sha256_hex[..2])
            .join(&sha256_hex[2..4])
            .join(sha256_hex)
    }

    /// The dev key `DIR/keys/<name>.json` (`root`, `targets`, `bins`, `online`).
    pub fn key_path(&self, name: &str) -> PathBuf {
        self.dir.path().join("keys").join(format!("{name}.json"))
    }

    /// Paths the server was asked for so far (from its access log).
    pub fn served_paths(&self) -> Vec<String> {
        self.served().into_iter().map(|(path, _)| path).collect()
    }

    /// Paths the server was asked for so far, each with the body bytes it sent (from its
    /// access log).
    pub fn served(&self) -> Vec<(String, u64)> {
        // The access log is written by another process; give it a moment to flush.
        std::thread::sleep(Duration::from_millis(200));
        let log = std::fs::read_to_string(&self.server_log).unwrap();
        let field = |line: &str, name: &str| {
            line.split_whitespace()
                .find_map(|w| w.strip_prefix(name))
                .map(|v| v.trim_matches('"').to_owned())
        };
        log.lines()
            .filter(|l| l.contains("request"))
            .filter_map(|l| {
                let path = field(l, "path=")?;
                let bytes = field(l, "bytes=").and_then(|b| b.parse().ok()).unwrap_or(0);
                Some((path, bytes))
            })
            .collect()
    }

    pub fn work_dir(&self, name: &str) -> PathBuf {
        let p = self.dir.path().join(name);
        std::fs::create_dir_all(&p).unwrap();
        p
    }
}

impl Drop for Mirror {
    fn drop(&mut self) {
        let _ = self.server.kill();
        let _ = self.server.wait();
    }
}

/// `tufa --config CONFIG sync`, bounded by [`COMMAND_TIMEOUT`].
pub fn tufa_sync(config: &Path) -> Output {
    run_bounded(
        Command::new(tufa_bin()).arg("--config").arg(config).arg("sync"),
        COMMAND_TIMEOUT,
        "tufa sync",
    )
}

pub fn check(out: Output, what: &str) -> Output {
    assert!(
        out.status.success(),
        "{what} failed with {}\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// A command from the venv with an environment that ignores the user's pip/uv config.
pub fn venv_cmd(tool: &str, home: &Path) -> Command {
    let mut c = Command::new(venv().join("bin").join(tool));
    c.env("PIP_CONFIG_FILE", "/dev/null")
        .env("PIP_DISABLE_PIP_VERSION_CHECK", "1")
        .env("PIP_NO_INPUT", "1")
        .env("UV_NO_CONFIG", "1")
        .env("UV_CACHE_DIR", home.join("uv-cache"))
        .env("UV_PYTHON_DOWNLOADS", "never")
        .env("UV_PYTHON", venv().join("bin").join("python"))
        .env("HOME", home)
        .env_remove("PIP_INDEX_URL")
        .env_remove("PIP_FIND_LINKS")
        .env_remove("PIP_EXTRA_INDEX_URL")
        .env_remove("UV_FIND_LINKS")
        .env_remove("UV_EXTRA_INDEX_URL")
        .env_remove("UV_INDEX_URL")
        .env_remove("UV_DEFAULT_INDEX");
    c
}

/// `pip install` or `uv pip install` (`tool`) of `requirement` from `index_url`, with the
/// client's cache off, into `home/site`; panics unless it succeeds. Returns the site.
pub fn install_uncached(tool: &str, home: &Path, index_url: &str, requirement: &str) -> PathBuf {
    let site = home.join("site");
    let mut cmd = venv_cmd(tool, home);
    if tool == "uv" {
        cmd.args(["pip", "install", "--no-cache"]);
    } else {
        cmd.args(["install", "--no-cache-dir"]);
    }
    let out = cmd
        .args(["--index-url", index_url, "--target"])
        .arg(&site)
        .arg(requirement)
        .output()
        .unwrap();
    check(out, &format!("{tool} install {requirement}"));
    site
}

/// Waits for `cond`, at most `secs`.
#[allow(dead_code)]
pub fn wait_for(secs: u64, mut cond: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(secs) {
        if cond() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

/// Names of the `*.dist-info` folders under `dir`.
pub fn dist_infos(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.ends_with(".dist-info"))
        .collect();
    v.sort();
    v
}
