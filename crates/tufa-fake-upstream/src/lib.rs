//! A local, in-process fake PyPI upstream for tests.
//!
//! [`FakeUpstream`] is a small axum server bound to `127.0.0.1` that stands in
//! for pypi.org in every tufa test, so that tests never reach the internet. It
//! serves *real* packages: every release is materialised as a deterministic,
//! pip-installable wheel (`zip`, deflate, fixed timestamps) and/or sdist
//! (`tar.gz`, mtime 0), so sha256 digests are stable across runs.
//!
//! It mirrors the parts of PyPI that a mirror talks to:
//!
//! * the Simple Repository API (`/simple/`, `/simple/<project>/`) in both the
//!   PEP 691/700 JSON form and the PEP 503 HTML form, chosen by `Accept`, with
//!   PEP 503 name normalisation redirects and `X-PyPI-Last-Serial` headers;
//! * distribution files under `/files/<2 hex>/<2 hex>/<filename>` plus PEP 658
//!   `<wheel>.metadata` files;
//! * the XML-RPC changelog API at `POST /pypi` (`changelog_last_serial`,
//!   `changelog_since_serial`, `list_packages_with_serial`) as used by
//!   bandersnatch-style mirrors;
//! * the legacy JSON API `GET /pypi/<project>/json` that bandersnatch 6 reads, with file URLs
//!   in PyPI's `/packages/<2 hex>/<2 hex>/<60 hex>/<filename>` layout (always served too).
//!
//! The upstream can be mutated while running ([`FakeUpstream::add_release`],
//! [`FakeUpstream::remove_release`]) and can misbehave on demand through
//! [`Fault`]s attached to a project page or to a single file.
//!
//! For benchmarks, [`FakeUpstream::start_generated`] (`fake-upstream --generate …`) builds a
//! deterministic upstream of thousands of projects from a seed ([`GenerateSpec`]) whose file
//! bytes are streamed from the seed instead of held in memory, and
//! [`FakeUpstream::mutate`] moves it to its next epoch (1 % of the projects get a release).
//! Three endpoints under `/_fake/` serve the scripts driving it: `GET /_fake/stats` (request
//! counters, JSON), `GET /_fake/manifest` (one line per distribution file:
//! `<sha256> <size> <path>`) and `POST /_fake/mutate` (the next epoch; JSON report).
//!
//! This crate deliberately does not depend on any other tufa crate: it
//! produces the raw JSON, HTML, XML and bytes itself, so it can act as an
//! independent oracle for the code under test.

// This is test-support code: a panic here is a test failure, which is the
// desired outcome, so `unwrap`/`expect` are allowed crate-wide.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod body;
mod dist;
mod generate;
mod pages;
mod raw;
mod server;
mod state;
mod util;
mod xmlrpc;

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::oneshot;

use crate::state::State;

pub use crate::generate::{GenerateSpec, GenerateSpecError, GenerationReport};
pub use crate::raw::RawServer;
pub use crate::util::normalize_name;

/// A canned answer for one path ([`FakeUpstream::set_route`]): any status, headers and body,
/// optionally dribbled out, for a limited number of requests.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Canned {
    pub status: u16,
    /// Headers as given (e.g. `Location`, `Retry-After`, `Content-Encoding`).
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// `Some((chunk, delay_ms))`: the body is sent `chunk` bytes at a time with a pause.
    pub drip: Option<(usize, u64)>,
    /// `Some(n)`: answer the next `n` requests, then the path behaves normally again.
    pub times: Option<u32>,
}

impl Canned {
    /// A 200 answer with this content type and body.
    pub fn ok(content_type: &str, body: impl Into<Vec<u8>>) -> Self {
        Self::status(200).header("content-type", content_type).body(body)
    }

    /// An empty answer with this status.
    pub fn status(status: u16) -> Self {
        Self {
            status,
            headers: Vec::new(),
            body: Vec::new(),
            drip: None,
            times: None,
        }
    }

    /// A redirect (302) to `location`.
    pub fn redirect(location: &str) -> Self {
        Self::status(302).header("location", location)
    }

    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_string(), value.to_string()));
        self
    }

    pub fn body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.body = body.into();
        self
    }

    pub fn drip(mut self, chunk: usize, delay_ms: u64) -> Self {
        self.drip = Some((chunk, delay_ms));
        self
    }

    pub fn times(mut self, n: u32) -> Self {
        self.times = Some(n);
        self
    }
}

/// Rewrites a project's PEP 691 JSON page before it is served
/// ([`FakeUpstream::set_page_transform`]).
pub type PageTransform = Arc<dyn Fn(&mut serde_json::Value) + Send + Sync>;

/// One release (version) of a project.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReleaseSpec {
    /// The version string, used verbatim in filenames and metadata.
    pub version: String,
    /// `Requires-Dist` entries (PEP 508 requirement strings).
    pub requires_dist: Vec<String>,
    /// `Requires-Python` specifier, if any.
    pub requires_python: Option<String>,
    /// `Some(reason)` marks every file of the release as yanked (PEP 592);
    /// the reason may be empty.
    pub yanked: Option<String>,
    /// Build a `py3-none-any` wheel for this release.
    pub wheel: bool,
    /// Build a `.tar.gz` sdist for this release.
    pub sdist: bool,
    /// Bytes of incompressible padding stored in the wheel (`<dist>/payload.bin`), to make
    /// a big wheel.
    pub payload: usize,
    /// `License-Expression` (PEP 639) in the core metadata.
    pub license_expression: Option<String>,
    /// `Metadata-Version` of the core metadata; `None` writes `2.1`.
    pub metadata_version: Option<String>,
    /// Fields marked `Dynamic` (PEP 643), one `Dynamic:` line each, in order.
    pub dynamic: Vec<String>,
    /// Extras the release declares (`Provides-Extra`): installers ignore an extra that is
    /// not declared.
    pub provides_extra: Vec<String>,
}

impl ReleaseSpec {
    /// A release with both a wheel and an sdist and no requirements.
    pub fn new(version: &str) -> Self {
        Self {
            version: version.to_string(),
            requires_dist: Vec::new(),
            requires_python: None,
            yanked: None,
            wheel: true,
            sdist: true,
            payload: 0,
            license_expression: None,
            metadata_version: None,
            dynamic: Vec::new(),
            provides_extra: Vec::new(),
        }
    }

    /// Sets the core metadata's `Metadata-Version` (default `2.1`), in both the wheel's
    /// METADATA and the sdist's PKG-INFO.
    pub fn metadata_version(mut self, version: &str) -> Self {
        self.metadata_version = Some(version.to_string());
        self
    }

    /// Declares an extra (`Provides-Extra`), for `Requires-Dist: x ; extra == "NAME"`.
    pub fn provides_extra(mut self, name: &str) -> Self {
        self.provides_extra.push(name.to_string());
        self
    }

    /// Adds a `Dynamic` field (PEP 643) to the core metadata, e.g. `"Requires-Dist"`.
    pub fn dynamic(mut self, field: &str) -> Self {
        self.dynamic.push(field.to_string());
        self
    }

    /// Sets the core metadata's `License-Expression`.
    pub fn license(mut self, expression: &str) -> Self {
        self.license_expression = Some(expression.to_string());
        self
    }

    /// Pads the wheel with `bytes` of incompressible data (a big wheel).
    pub fn payload(mut self, bytes: usize) -> Self {
        self.payload = bytes;
        self
    }

    /// Adds a `Requires-Dist` entry.
    pub fn requires(mut self, req: &str) -> Self {
        self.requires_dist.push(req.to_string());
        self
    }

    /// Sets `Requires-Python`.
    pub fn requires_python(mut self, s: &str) -> Self {
        self.requires_python = Some(s.to_string());
        self
    }

    /// Marks the release as yanked with the given reason (may be empty).
    pub fn yanked(mut self, reason: &str) -> Self {
        self.yanked = Some(reason.to_string());
        self
    }

    /// Only build a wheel (no sdist).
    pub fn wheel_only(mut self) -> Self {
        self.wheel = true;
        self.sdist = false;
        self
    }

    /// Only build an sdist (no wheel).
    pub fn sdist_only(mut self) -> Self {
        self.wheel = false;
        self.sdist = true;
        self
    }
}

/// A project and its releases.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProjectSpec {
    /// Display name exactly as given (e.g. `"Foo.Bar_baz"`); the normalised
    /// form is used in URLs.
    pub name: String,
    /// Releases, added in order (each one bumps the serial).
    pub releases: Vec<ReleaseSpec>,
}

impl ProjectSpec {
    /// A project with no releases yet.
    pub fn new(name: &str) -> Self {
        Self {
            name: name.to_string(),
            releases: Vec::new(),
        }
    }

    /// Appends a release.
    pub fn release(mut self, r: ReleaseSpec) -> Self {
        self.releases.push(r);
        self
    }
}

/// A misbehaviour to inject, either on a project page
/// ([`FakeUpstream::set_project_fault`]) or on a file download
/// ([`FakeUpstream::set_file_fault`]).
///
/// Faults stay in force until [`FakeUpstream::clear_faults`], except
/// [`Fault::ServerErrors`], which removes itself once exhausted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fault {
    /// File target: the served bytes differ from the advertised sha256 (same
    /// length, the middle byte is flipped). Project target: every file on the
    /// page advertises a wrong sha256 (last hex digit changed).
    HashMismatch,
    /// `Content-Length` announces the full size but the body stops half-way
    /// (the body stream errors, so the connection is aborted).
    Truncated,
    /// The body is dribbled out in 1 KiB chunks with `delay_ms` between them.
    SlowBody {
        /// Delay between consecutive chunks, in milliseconds.
        delay_ms: u64,
    },
    /// The next `remaining` requests to the target answer 503, then normal.
    ServerErrors {
        /// How many more requests will fail.
        remaining: u32,
    },
    /// Project page: the JSON is syntactically broken (final `}` missing);
    /// an HTML page is cut off mid-document.
    MalformedJson,
    /// Project page: valid JSON padded (with a `"_padding"` string member) to
    /// at least `bytes` bytes; HTML pages are padded with a comment.
    OversizedJson {
        /// Target body size in bytes.
        bytes: usize,
    },
    /// Project page lists an extra file named `../../evil-1.0-py3-none-any.whl`.
    TraversalFilename,
    /// Project page lists an extra file named `evil\0-1.0-py3-none-any.whl`.
    NulFilename,
    /// Project page is served with `Content-Type: text/plain`; a file is
    /// served with `Content-Type: text/html`.
    WrongContentType,
    /// File target: that file's advertised `size` on its project page is one
    /// more than the real length (bytes and hash are right). Project target:
    /// every file's advertised size is off by one.
    WrongSize,
}

/// Filename used by [`Fault::TraversalFilename`].
pub const TRAVERSAL_FILENAME: &str = "../../evil-1.0-py3-none-any.whl";
/// Filename used by [`Fault::NulFilename`].
pub const NUL_FILENAME: &str = "evil\u{0}-1.0-py3-none-any.whl";

/// One entry of the XML-RPC changelog.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChangelogEntry {
    /// Project display name.
    pub name: String,
    /// Version, or empty for project-level actions (`"create"`).
    pub version: String,
    /// Unix timestamp (seconds), derived from the serial.
    pub timestamp: i64,
    /// PyPI journal action, e.g. `"new release"`, `"add py3 file <f>"`.
    pub action: String,
    /// Serial of the event.
    pub serial: u64,
}

pub(crate) type Shared = Arc<Mutex<State>>;

pub(crate) fn lock(shared: &Shared) -> MutexGuard<'_, State> {
    // A poisoned lock only means another test thread panicked; the state is
    // still usable for reporting.
    shared.lock().unwrap_or_else(|e| e.into_inner())
}

/// A running fake PyPI. Dropping it stops the server (the listener closes
/// and open connections are shut down gracefully).
pub struct FakeUpstream {
    addr: SocketAddr,
    base_url: String,
    shared: Shared,
    shutdown: Option<oneshot::Sender<()>>,
}

impl fmt::Debug for FakeUpstream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FakeUpstream")
            .field("url", &self.base_url)
            .finish_non_exhaustive()
    }
}

impl Drop for FakeUpstream {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

impl FakeUpstream {
    /// Starts a server on `127.0.0.1:0` on the current tokio runtime.
    ///
    /// # Panics
    /// If binding a loopback ephemeral port fails (or outside a runtime).
    pub async fn start(projects: Vec<ProjectSpec>) -> FakeUpstream {
        Self::start_on_port(0, projects)
            .await
            .expect("binding 127.0.0.1:0 for the fake upstream")
    }

    /// Starts a server on `127.0.0.1:port` (0 = ephemeral) on the current
    /// tokio runtime.
    pub async fn start_on_port(port: u16, projects: Vec<ProjectSpec>) -> io::Result<FakeUpstream> {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
        let addr = listener.local_addr()?;
        let base_url = format!("http://{addr}");
        let mut state = State::new(base_url.clone());
        for p in projects {
            state.ensure_project(&p.name);
            for r in p.releases {
                state.add_release(&p.name, r);
            }
        }
        Ok(Self::serve(listener, state))
    }

    /// Starts a server on `127.0.0.1:port` (0 = ephemeral) serving the upstream generated from
    /// `spec` (see [`GenerateSpec`]): file URLs in PyPI's `/packages/…` layout, no request log
    /// ([`FakeUpstream::requests`] stays empty; the counters of `/_fake/stats` run).
    /// Generating hashes every file once (about a second per GiB), on a blocking thread.
    pub async fn start_generated(
        port: u16,
        spec: &GenerateSpec,
    ) -> io::Result<(FakeUpstream, GenerationReport)> {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
        let base_url = format!("http://{}", listener.local_addr()?);
        let spec = spec.clone();
        let (state, report) = tokio::task::spawn_blocking(move || {
            let mut state = State::new(base_url);
            let report = generate::generate(&mut state, &spec);
            (state, report)
        })
        .await
        .map_err(io::Error::other)?;
        Ok((Self::serve(listener, state), report))
    }

    fn serve(listener: tokio::net::TcpListener, state: State) -> FakeUpstream {
        let addr = listener
            .local_addr()
            .unwrap_or_else(|_| SocketAddr::from(([127, 0, 0, 1], 0)));
        let base_url = state.base_url.clone();
        let shared: Shared = Arc::new(Mutex::new(state));
        let (tx, rx) = oneshot::channel::<()>();
        let app = server::router(shared.clone());
        tokio::spawn(async move {
            let res = axum::serve(listener, app)
                .with_graceful_shutdown(async move {
                    let _ = rx.await;
                })
                .await;
            if let Err(e) = res {
                tracing::warn!("fake upstream server error: {e}");
            }
        });
        FakeUpstream {
            addr,
            base_url,
            shared,
            shutdown: Some(tx),
        }
    }

    /// A generated upstream's next epoch ([`GenerateSpec::changed_percent`] of its projects get
    /// a new release); `None` if it was not generated.
    pub fn mutate(&self) -> Option<GenerationReport> {
        generate::mutate(&mut lock(&self.shared))
    }

    /// Every distribution file (no `.metadata`), sorted by path: the path below the server
    /// root as the Simple pages link it, its sha256 and its size.
    pub fn manifest(&self) -> Vec<ManifestEntry> {
        lock(&self.shared)
            .manifest()
            .into_iter()
            .map(|(path, sha256, size)| ManifestEntry { path, sha256, size })
            .collect()
    }

    /// The bound socket address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT` (no trailing slash).
    pub fn url(&self) -> String {
        self.base_url.clone()
    }

    /// `http://127.0.0.1:PORT/simple/`.
    pub fn simple_url(&self) -> String {
        format!("{}/simple/", self.base_url)
    }

    /// Adds a release (creating the project if new, with `project` as its
    /// display name). Replaces an existing release with the same version.
    /// Bumps the serial and records changelog entries.
    pub fn add_release(&self, project: &str, r: ReleaseSpec) {
        lock(&self.shared).add_release(project, r);
    }

    /// Removes a release and its files (downloads then 404). Bumps the serial
    /// and records a `"remove release"` changelog entry. No-op if unknown.
    pub fn remove_release(&self, project: &str, version: &str) {
        lock(&self.shared).remove_release(project, version);
    }

    /// Injects a fault on `GET /simple/<project>/` (name is normalised).
    pub fn set_project_fault(&self, project: &str, fault: Fault) {
        lock(&self.shared)
            .project_faults
            .insert(normalize_name(project), fault);
    }

    /// Injects a fault on the download of `filename` (use
    /// `"<wheel>.metadata"` to target a metadata file). [`Fault::WrongSize`]
    /// and [`Fault::HashMismatch`] are file faults; `WrongSize` shows up on
    /// the project page.
    pub fn set_file_fault(&self, filename: &str, fault: Fault) {
        lock(&self.shared).file_faults.insert(filename.to_string(), fault);
    }

    /// Removes all project and file faults, routes and page transforms.
    pub fn clear_faults(&self) {
        let mut s = lock(&self.shared);
        s.project_faults.clear();
        s.file_faults.clear();
        s.routes.clear();
        s.page_transforms.clear();
    }

    /// Answers requests for exactly `path` (any method, query ignored) with `canned`, before
    /// anything else the server knows.
    pub fn set_route(&self, path: &str, canned: Canned) {
        lock(&self.shared).routes.insert(path.to_string(), canned);
    }

    /// Rewrites the PEP 691 JSON page of `project` with `transform` each time it is served
    /// (HTML pages are not affected).
    pub fn set_page_transform(
        &self,
        project: &str,
        transform: impl Fn(&mut serde_json::Value) + Send + Sync + 'static,
    ) {
        lock(&self.shared)
            .page_transforms
            .insert(normalize_name(project), state::Transform(Arc::new(transform)));
    }

    /// The PEP 691 JSON page of `project` as it would be served now (without faults or
    /// transforms).
    pub fn project_json(&self, project: &str) -> serde_json::Value {
        let s = lock(&self.shared);
        serde_json::from_str(&pages::project_json(&s, &normalize_name(project), None)).unwrap()
    }

    /// The PEP 503 HTML page of `project` as it would be served now.
    pub fn project_html(&self, project: &str) -> String {
        let s = lock(&self.shared);
        pages::project_html(&s, &normalize_name(project), None)
    }

    /// When on, `/simple/` endpoints always answer PEP 503 HTML.
    pub fn set_html_only(&self, on: bool) {
        lock(&self.shared).html_only = on;
    }

    /// Every request so far as `"METHOD /path?query"`, in order.
    pub fn requests(&self) -> Vec<String> {
        lock(&self.shared).requests.clone()
    }

    /// Number of `GET`s under `/files/` for distribution files (not
    /// `.metadata`), whether they succeeded or not.
    pub fn file_downloads(&self) -> usize {
        lock(&self.shared).file_downloads
    }

    /// Clears the request log and the download counter.
    pub fn reset_counters(&self) {
        let mut s = lock(&self.shared);
        s.requests.clear();
        s.file_downloads = 0;
    }

    /// The global last serial (0 if nothing was ever added).
    pub fn last_serial(&self) -> u64 {
        lock(&self.shared).serial
    }

    /// The last serial of one project, if it exists.
    pub fn project_serial(&self, project: &str) -> Option<u64> {
        lock(&self.shared)
            .projects
            .get(&normalize_name(project))
            .map(|p| p.last_serial)
    }

    /// The true bytes of a generated file (also accepts `<wheel>.metadata`).
    pub fn file_bytes(&self, filename: &str) -> Option<Vec<u8>> {
        let body = lock(&self.shared).lookup(filename).map(|(_, b)| b)?;
        Some(body.to_bytes().to_vec())
    }

    /// Lowercase hex sha256 of a generated file (also accepts
    /// `<wheel>.metadata`).
    pub fn file_sha256(&self, filename: &str) -> Option<String> {
        let s = lock(&self.shared);
        if let Some(f) = s.files.get(filename) {
            return Some(f.sha256.clone());
        }
        s.lookup(filename).map(|(_, b)| util::sha256_hex(&b.to_bytes()))
    }

    /// Absolute download URL of a generated file (also accepts
    /// `<wheel>.metadata`), as the Simple pages link it.
    pub fn file_url(&self, filename: &str) -> Option<String> {
        let s = lock(&self.shared);
        let base = filename.strip_suffix(".metadata").unwrap_or(filename);
        let (f, _) = s.lookup(filename)?;
        let path = s.file_path(base, f);
        let suffix = &filename[base.len()..];
        Some(format!("{}/{path}{suffix}", s.base_url))
    }

    /// Filenames of all current files of a project, in release order.
    pub fn filenames(&self, project: &str) -> Vec<String> {
        let s = lock(&self.shared);
        s.projects
            .get(&normalize_name(project))
            .map(|p| p.releases.iter().flat_map(|r| r.files.iter().cloned()).collect())
            .unwrap_or_default()
    }

    /// The whole changelog, in serial order.
    pub fn changelog(&self) -> Vec<ChangelogEntry> {
        lock(&self.shared).changelog.clone()
    }
}

/// One distribution file of [`FakeUpstream::manifest`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ManifestEntry {
    /// Below the server root, e.g. `packages/ab/cd/<60 hex>/x-1.0.tar.gz`.
    pub path: String,
    /// Lowercase hex.
    pub sha256: String,
    pub size: u64,
}

/// A small dependency chain for end-to-end tests:
///
/// * `demo-app` 1.0 requires `demo-lib>=1.0`
/// * `demo-lib` 0.9 (yanked, reason `"broken"`), 1.0, and 1.1 (requires
///   `demo-util`, `Requires-Python: >=3.8`)
/// * `demo-util` 0.1
/// * `Foo.Bar_baz` 2.0 (tricky name, normalises to `foo-bar-baz`)
pub fn demo_projects() -> Vec<ProjectSpec> {
    vec![
        ProjectSpec::new("demo-util").release(ReleaseSpec::new("0.1")),
        ProjectSpec::new("demo-lib")
            .release(ReleaseSpec::new("0.9").yanked("broken"))
            .release(ReleaseSpec::new("1.0"))
            .release(
                ReleaseSpec::new("1.1")
                    .requires("demo-util")
                    .requires_python(">=3.8"),
            ),
        ProjectSpec::new("demo-app").release(ReleaseSpec::new("1.0").requires("demo-lib>=1.0")),
        ProjectSpec::new("Foo.Bar_baz").release(ReleaseSpec::new("2.0")),
    ]
}
