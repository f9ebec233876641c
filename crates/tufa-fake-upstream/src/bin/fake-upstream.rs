//! Runs a [`tufa_fake_upstream::FakeUpstream`] serving `demo_projects()`.
//!
//! Usage: `fake-upstream [--port N] [--html-only]` (port default 0 =
//! ephemeral; `--html-only` forces PEP 503 HTML simple pages). Prints the
//! base URL (`http://127.0.0.1:PORT`) as one line on stdout, then serves
//! until killed.

use std::io::Write;
use std::process::ExitCode;

use tufa_fake_upstream::{FakeUpstream, demo_projects};

const USAGE: &str = "usage: fake-upstream [--port N] [--html-only]";

struct Args {
    port: u16,
    html_only: bool,
}

fn parse_args() -> Result<Args, String> {
    let mut args = std::env::args().skip(1);
    let mut port = 0u16;
    let mut html_only = false;
    while let Some(arg) = args.next() {
        let value = if arg == "--port" {
            args.next().ok_or("--port needs a value")?
        } else if let Some(v) = arg.strip_prefix("--port=") {
            v.to_string()
        } else if arg == "--html-only" {
            html_only = true;
            continue;
        } else if arg == "-h" || arg == "--help" {
            return Err(USAGE.to_string());
        } else {
            return Err(format!("unknown argument {arg:?}; {USAGE}"));
        };
        port = value
            .parse()
            .map_err(|e| format!("invalid port {value:?}: {e}"))?;
    }
    Ok(Args { port, html_only })
}

#[tokio::main]
async fn main() -> ExitCode {
    let Args { port, html_only } = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    let server = match FakeUpstream::start_on_port(port, demo_projects()).await {
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
