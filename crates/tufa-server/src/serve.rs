//! The accept loop: HTTP/1.1 and HTTP/2 (over TLS when configured), connection and header
//! limits, graceful shutdown.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use rustls_pki_types::pem::PemObject as _;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_rustls::TlsAcceptor;

use crate::conn::{PerClient, Rules, Watchdog};
use crate::metrics::Closed;
use crate::{AppState, ServerError, router};

/// How long in-flight requests may take to finish after shutdown was asked for.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(30);
/// Smallest read buffer hyper's HTTP/1 accepts.
const MIN_H1_BUF: usize = 8192;
/// Most header lines in one HTTP/1 request.
const MAX_HEADERS: usize = 100;
/// Most concurrent HTTP/2 streams on one connection.
const MAX_H2_STREAMS: u32 = 100;

/// A PEM certificate chain (leaf first) and its PEM private key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// Serves until `shutdown` resolves, then stops accepting and lets in-flight requests finish
/// for up to [`SHUTDOWN_GRACE`]. At most `max_connections` connections are served at once
/// (the accept loop waits for a free slot, so further clients queue in the listen backlog),
/// and at most `max_connections_per_ip` from one client address (further ones are closed at
/// once); request headers are limited to `max_header_bytes` and must arrive within
/// `request_timeout_secs` (a TLS handshake too). Every connection runs under a watchdog
/// (`conn::Watchdog`): no first byte within `request_timeout_secs`, nothing read or written
/// for `idle_timeout_secs`, a response write stalled for `send_idle_timeout_secs` or read
/// slower than `min_send_rate_bytes_per_sec`, and the connection is closed. (Dead HTTP/2
/// peers are caught by these rules too, so no keep-alive pings are sent.)
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    tls: Option<TlsFiles>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServerError> {
    let acceptor = match &tls {
        Some(files) => Some(tls_acceptor(files).await?),
        None => None,
    };
    let limits = state.limits().clone();
    limits.validate()?;
    let rules = Rules::from_limits(&limits);
    let per_client = PerClient::new(limits.max_connections_per_ip);
    let request_timeout = Duration::from_secs(limits.request_timeout_secs.max(1));
    let local = listener.local_addr().map_err(ServerError::Listener)?;

    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(request_timeout)
        .max_buf_size(limits.max_header_bytes.max(MIN_H1_BUF))
        .max_headers(MAX_HEADERS);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_header_list_size(u32::try_from(limits.max_header_bytes).unwrap_or(u32::MAX))
        .max_concurrent_streams(MAX_H2_STREAMS);

    let app = router(state.clone());
    let slots = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let graceful = GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown);
    tracing::info!(address = %local, tls = acceptor.is_some(), "serving");

    loop {
        let permit = tokio::select! {
            permit = Arc::clone(&slots).acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => break,
            },
            () = &mut shutdown => break,
        };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Usually out of file descriptors: back off instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let Some(client_slot) = per_client.try_acquire(peer.ip()) else {
            state.metrics().connection_closed(Closed::PerClientLimit);
            tracing::debug!(peer = %peer, limit = limits.max_connections_per_ip, "client holds its maximum of connections; closed");
            drop(stream);
            continue;
        };
        let _ = stream.set_nodelay(true);
        let stream = Watchdog::new(stream, rules, state.clone());
        let service = TowerToHyperService::new(app.clone());
        let builder = builder.clone();
        let watcher = graceful.watcher();
        let acceptor = acceptor.clone();
        tokio::spawn(async move {
            let _permit = permit;
            let _client_slot = client_slot;
            let result = match acceptor {
                None => {
                    let conn = builder.serve_connection(TokioIo::new(stream), service);
                    watcher.watch(conn).await
                }
                Some(acceptor) => {
                    let tls = match tokio::time::timeout(request_timeout, acceptor.accept(stream)).await {
                        Ok(Ok(tls)) => tls,
                        Ok(Err(e)) => {
                            tracing::debug!(peer = %peer, error = %e, "TLS handshake failed");
                            return;
                        }
                        Err(_) => {
                            tracing::debug!(peer = %peer, "TLS handshake timed out");
                            return;
                        }
                    };
                    let conn = builder.serve_connection(TokioIo::new(tls), service);
                    watcher.watch(conn).await
                }
            };
            if let Err(e) = result {
                tracing::debug!(peer = %peer, error = %e, "connection ended with an error");
            }
        });
    }

    drop(listener);
    tracing::info!(
        connections = graceful.count(),
        "shutting down: no longer accepting"
    );
    tokio::select! {
        () = graceful.shutdown() => tracing::info!("all connections closed"),
        () = tokio::time::sleep(SHUTDOWN_GRACE) => {
            tracing::warn!(grace_secs = SHUTDOWN_GRACE.as_secs(), "grace period over; abandoning open connections");
        }
    }
    Ok(())
}

/// Resolves on SIGTERM or Ctrl-C (SIGINT).
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %e, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
    tracing::info!("shutdown signal received");
}

async fn read_file(path: &Path) -> Result<Vec<u8>, ServerError> {
    tokio::fs::read(path)
        .await
        .map_err(|source| ServerError::TlsRead {
            path: path.to_owned(),
            source,
        })
}

/// A TLS acceptor for the PEM certificate chain and key, with ring as the crypto provider and
/// ALPN offering HTTP/2 and HTTP/1.1.
async fn tls_acceptor(files: &TlsFiles) -> Result<TlsAcceptor, ServerError> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let cert_pem = read_file(&files.cert).await?;
    let key_pem = read_file(&files.key).await?;
    let pem_error = |path: &Path, reason: String| ServerError::TlsPem {
        path: path.to_owned(),
        reason,
    };
    let certs = CertificateDer::pem_slice_iter(&cert_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| pem_error(&files.cert, e.to_string()))?;
    if certs.is_empty() {
        return Err(pem_error(&files.cert, "no certificate found".to_owned()));
    }
    let key = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|e| pem_error(&files.key, e.to_string()))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(ServerError::TlsConfig)?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(ServerError::TlsConfig)?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}
