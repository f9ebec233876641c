//! Runs a [`tufa_fake_upstream::FakeUpstream`]: the small `demo_projects()` set, or, with
//! `--generate SPEC`, a deterministic upstream of thousands of projects for benchmarks.
//!
//! Prints the base URL (`http://127.0.0.1:PORT`) as one line on stdout once it serves, then
//! serves until killed. Exit codes: 0 after SIGINT, 1 if the port cannot be bound, 2 for a bad
//! command line.

use std::io::Write;
use std::process::ExitCode;
use std::time::Instant;

use tufa_fake_upstream::{FakeUpstream, GenerateSpec, demo_projects};

const USAGE: &str = "usage: fake-upstream [--port N] [--html-only] [--generate SPEC]

A fake PyPI on 127.0.0.1: PEP 691/503 Simple pages with serials, files, PEP 658 metadata,
the legacy JSON API (/pypi/<project>/json) and XML-RPC (list_packages_with_serial,
changelog_since_serial, changelog_last_serial). Prints its URL on stdout, then serves until
killed.

  --port N         port to listen on (default 0: any free port)
  --html-only      Simple pages as PEP 503 HTML only
  --generate SPEC  serve a generated upstream instead of the demo projects; SPEC is
                   comma-separated KEY=VALUE, every key optional:
                     projects=2000    generated projects (most with 1-20 files)
                     seed=1           the same seed gives the same upstream, byte for byte
                     big-projects=N   projects with 500-800 files (default: one per 400)
                     big-file-mb=0    add project `big-file` with one file of this many MiB
                     changed=1        percent of projects given a new release by each
                                      POST /_fake/mutate
                   File URLs follow PyPI's /packages/ layout; file bytes are streamed from
                   the seed, not held in memory. A summary line goes to stderr.
                   GET /_fake/stats (request counters), GET /_fake/manifest (`<sha256>
                   <size> <path>` per file) and POST /_fake/mutate (next epoch) are served.

Exit codes: 0 after SIGINT, 1 if the port cannot be bound, 2 for a bad command line.";

struct Args {
    port: u16,
    html_only: bool,
    generate: Option<GenerateSpec>,
}

fn parse_args() -> Result<Args, String> {
    let mut args = std::env::args().skip(1);
    let mut out = Args {
        port: 0,
        html_only: false,
        generate: None,
    };
    while let Some(arg) = args.next() {
        let (name, inline) = match arg.split_once('=') {
            Some((n, v)) if n.starts_with("--") => (n.to_string(), Some(v.to_string())),
            _ => (arg.clone(), None),
        };
        let mut value = |what: &str| {
            inline
                .clone()
                .or_else(|| args.next())
                .ok_or(format!("{name} needs {what}; {USAGE}"))
        };
        match name.as_str() {
            "--port" => {
                let v = value("a port number")?;
                out.port = v.parse().map_err(|e| format!("invalid port {v:?}: {e}"))?;
            }
            "--generate" => {
                let v = value("a SPEC, e.g. projects=2000,seed=1")?;
                out.generate = Some(v.parse().map_err(|e| format!("--generate {v:?}: {e}"))?);
            }
            "--html-only" if inline.is_none() => out.html_only = true,
            "-h" | "--help" => return Err(USAGE.to_string()),
            _ => return Err(format!("unknown argument {arg:?}; {USAGE}")),
        }
    }
    Ok(out)
}

#[tokio::main]
async fn main() -> ExitCode {
    let Args {
        port,
        html_only,
        generate,
    } = match parse_args() {
        Ok(a) => a,
        Err(e) if e == USAGE => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("fake-upstream: {e}");
            return ExitCode::from(2);
        }
    };
    let started = Instant::now();
    let server = match &generate {
        None => FakeUpstream::start_on_port(port, demo_projects()).await,
        Some(spec) => FakeUpstream::start_generated(port, spec).await.map(|(server, r)| {
            eprintln!(
                "fake-upstream: generated epoch {}: {} projects, {} files, {} bytes, last serial {} ({:.1} s)",
                r.epoch,
                r.projects.len(),
                r.files,
                r.bytes,
                r.last_serial,
                started.elapsed().as_secs_f64()
            );
            server
        }),
    };
    let server = match server {
        Ok(s) => s,
        Err(e) => {
            eprintln!("fake-upstream: cannot bind 127.0.0.1:{port}: {e}");
            return ExitCode::FAILURE;
        }
    };
    server.set_html_only(html_only);
    let mut out = std::io::stdout().lock();
    if writeln!(out, "{}", server.url())
        .and_then(|()| out.flush())
        .is_err()
    {
        return ExitCode::FAILURE;
    }
    drop(out);
    // Serve until killed (SIGINT also ends it cleanly).
    let _ = tokio::signal::ctrl_c().await;
    drop(server);
    ExitCode::SUCCESS
}
