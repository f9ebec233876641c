//! A raw TCP listener that answers every connection with fixed bytes: for what an HTTP
//! server library will not send (a body longer than its `Content-Length`, garbage instead
//! of a TLS handshake), and as an "internal service" whose connection count proves nothing
//! reached it.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpListener;

/// A running raw listener on `127.0.0.1`. Dropping it stops accepting.
#[derive(Debug)]
pub struct RawServer {
    addr: SocketAddr,
    connections: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for RawServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl RawServer {
    /// Listens on `127.0.0.1:0`; each connection gets `answer` (after reading whatever the
    /// client sent first, up to 64 KiB), then is closed.
    pub async fn start(answer: Vec<u8>) -> RawServer {
        let listener = TcpListener::bind(("127.0.0.1", 0))
            .await
            .expect("binding 127.0.0.1:0");
        let addr = listener.local_addr().expect("local address");
        let connections = Arc::new(AtomicUsize::new(0));
        let count = Arc::clone(&connections);
        let answer = Arc::new(answer);
        let task = tokio::spawn(async move {
            while let Ok((mut sock, _)) = listener.accept().await {
                count.fetch_add(1, Ordering::SeqCst);
                let answer = Arc::clone(&answer);
                tokio::spawn(async move {
                    let mut buf = vec![0u8; 64 * 1024];
                    let _ = tokio::time::timeout(std::time::Duration::from_millis(500), sock.read(&mut buf))
                        .await;
                    let _ = sock.write_all(&answer).await;
                    let _ = sock.shutdown().await;
                });
            }
        });
        RawServer {
            addr,
            connections,
            task,
        }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Connections accepted so far.
    pub fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }
}
