//! Connection-level rules against clients that hold a slot without making progress: a watchdog
//! around each accepted socket (send stall, minimum send rate, idle connection, silent new
//! connection) and the per-client-address connection count.

use std::collections::HashMap;
use std::fmt;
use std::io;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::time::{Instant, Sleep};

use crate::metrics::Closed;
use crate::{AppState, ServerLimits};

/// The timing rules of one connection, from [`ServerLimits`].
#[derive(Debug, Clone, Copy)]
pub(crate) struct Rules {
    /// Until the first byte arrives.
    pub(crate) first_byte: Duration,
    /// No byte read or written.
    pub(crate) idle: Duration,
    /// A write pending without progress; also the window of the rate rule.
    pub(crate) send_stall: Duration,
    /// Bytes per second a blocked sender must average over a window; 0: no rule.
    pub(crate) min_rate: u64,
}

impl Rules {
    pub(crate) fn from_limits(limits: &ServerLimits) -> Self {
        Self {
            first_byte: Duration::from_secs(limits.request_timeout_secs.max(1)),
            idle: Duration::from_secs(limits.idle_timeout_secs.max(1)),
            send_stall: Duration::from_secs(limits.send_idle_timeout_secs.max(1)),
            min_rate: limits.min_send_rate_bytes_per_sec,
        }
    }
}

/// A TCP socket that closes itself (an I/O error hyper ends the connection on) when the peer
/// stops making progress:
/// - no first byte within `first_byte` (hyper's protocol detection would wait forever);
/// - nothing read or written for `idle`;
/// - a write (the response the client should be reading) pending for `send_stall`;
/// - over a window of `send_stall` in which writes were blocked by the client, fewer than
///   `min_rate` bytes per second accepted.
///
/// Deadlines are checked whenever the connection waits on the socket; a connection waiting
/// on the store (the server's own slowness) is not timed here.
pub(crate) struct Watchdog {
    io: TcpStream,
    rules: Rules,
    state: AppState,
    started: Instant,
    read_any: bool,
    last_progress: Instant,
    write_blocked_since: Option<Instant>,
    window_start: Instant,
    window_bytes: u64,
    window_blocked: bool,
    timer: Pin<Box<Sleep>>,
}

impl Watchdog {
    pub(crate) fn new(io: TcpStream, rules: Rules, state: AppState) -> Self {
        let now = Instant::now();
        Self {
            io,
            rules,
            state,
            started: now,
            read_any: false,
            last_progress: now,
            write_blocked_since: None,
            window_start: now,
            window_bytes: 0,
            window_blocked: false,
            timer: Box::pin(tokio::time::sleep_until(now + rules.first_byte)),
        }
    }

    /// The earliest deadline in force, and the rule it belongs to.
    fn deadline(&self) -> (Instant, Closed) {
        let mut deadline = (self.last_progress + self.rules.idle, Closed::Idle);
        if !self.read_any {
            let first = self.started + self.rules.first_byte;
            if first < deadline.0 {
                deadline = (first, Closed::Idle);
            }
        }
        if let Some(since) = self.write_blocked_since {
            let stall = since + self.rules.send_stall;
            if stall < deadline.0 {
                deadline = (stall, Closed::SendStalled);
            }
        }
        deadline
    }

    /// Called when the socket is not ready: arms the timer for the earliest deadline and
    /// fails once it has passed.
    fn check_deadline(&mut self, cx: &mut Context<'_>) -> io::Result<()> {
        let (at, reason) = self.deadline();
        if self.timer.deadline() != at {
            self.timer.as_mut().reset(at);
        }
        if self.timer.as_mut().poll(cx).is_ready() {
            return Err(self.close(reason));
        }
        Ok(())
    }

    /// The rate rule, checked at each write attempt once a window has passed.
    fn check_rate(&mut self) -> io::Result<()> {
        let now = Instant::now();
        let elapsed = now.saturating_duration_since(self.window_start);
        if elapsed < self.rules.send_stall {
            return Ok(());
        }
        let floor = self.rules.min_rate.saturating_mul(elapsed.as_secs().max(1));
        if self.rules.min_rate > 0 && self.window_blocked && self.window_bytes < floor {
            return Err(self.close(Closed::SendTooSlow));
        }
        self.window_start = now;
        self.window_bytes = 0;
        self.window_blocked = self.write_blocked_since.is_some();
        Ok(())
    }

    /// Counts and logs the closing, and makes it an abort: the kernel drops what is still
    /// queued for the peer instead of holding it (up to the socket's send buffer) until a
    /// client that does not read takes it.
    fn close(&self, reason: Closed) -> io::Error {
        let _ = self.io.set_zero_linger();
        self.state.metrics().connection_closed(reason);
        tracing::debug!(
            reason = reason.label(),
            "closing a connection that makes no progress"
        );
        io::Error::new(io::ErrorKind::TimedOut, reason.label())
    }

    fn progressed(&mut self) {
        self.last_progress = Instant::now();
    }
}

impl AsyncRead for Watchdog {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        let before = buf.filled().len();
        match Pin::new(&mut this.io).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                if buf.filled().len() > before {
                    this.read_any = true;
                    this.progressed();
                }
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => match this.check_deadline(cx) {
                Ok(()) => Poll::Pending,
                Err(e) => Poll::Ready(Err(e)),
            },
        }
    }
}

impl Watchdog {
    fn after_write(
        &mut self,
        cx: &mut Context<'_>,
        polled: Poll<io::Result<usize>>,
    ) -> Poll<io::Result<usize>> {
        match polled {
            Poll::Ready(Ok(n)) => {
                if n > 0 {
                    self.progressed();
                    self.window_bytes += n as u64;
                    self.write_blocked_since = None;
                }
                if let Err(e) = self.check_rate() {
                    return Poll::Ready(Err(e));
                }
                Poll::Ready(Ok(n))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => {
                if self.write_blocked_since.is_none() {
                    self.write_blocked_since = Some(Instant::now());
                }
                self.window_blocked = true;
                if let Err(e) = self.check_rate() {
                    return Poll::Ready(Err(e));
                }
                match self.check_deadline(cx) {
                    Ok(()) => Poll::Pending,
                    Err(e) => Poll::Ready(Err(e)),
                }
            }
        }
    }
}

impl AsyncWrite for Watchdog {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, data: &[u8]) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        let polled = Pin::new(&mut this.io).poll_write(cx, data);
        this.after_write(cx, polled)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        let polled = Pin::new(&mut this.io).poll_write_vectored(cx, bufs);
        this.after_write(cx, polled)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        match Pin::new(&mut this.io).poll_flush(cx) {
            Poll::Pending => {
                if this.write_blocked_since.is_none() {
                    this.write_blocked_since = Some(Instant::now());
                }
                match this.check_deadline(cx) {
                    Ok(()) => Poll::Pending,
                    Err(e) => Poll::Ready(Err(e)),
                }
            }
            ready => ready,
        }
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

/// Connections per client address: an IPv4 address, or the /64 of an IPv6 one (one host
/// usually holds a whole /64). IPv4-mapped IPv6 addresses count as their IPv4 address.
pub(crate) struct PerClient {
    max: usize,
    counts: Arc<Mutex<HashMap<IpAddr, usize>>>,
}

/// One connection's place in its client's count, released on drop.
pub(crate) struct ClientSlot {
    key: IpAddr,
    counts: Arc<Mutex<HashMap<IpAddr, usize>>>,
}

impl PerClient {
    /// `max` connections per client; 0: no limit.
    pub(crate) fn new(max: usize) -> Self {
        Self {
            max,
            counts: Arc::new(Mutex::new(HashMap::new())),
        }
    }

    fn key(ip: IpAddr) -> IpAddr {
        match ip.to_canonical() {
            IpAddr::V6(v6) => {
                let bits = u128::from(v6) & !((1u128 << 64) - 1);
                IpAddr::V6(bits.into())
            }
            v4 => v4,
        }
    }

    /// A slot for a new connection from `ip`, or `None` when the client holds its maximum.
    pub(crate) fn try_acquire(&self, ip: IpAddr) -> Option<ClientSlot> {
        let key = Self::key(ip);
        let mut counts = self.counts.lock().unwrap_or_else(PoisonError::into_inner);
        let count = counts.entry(key).or_insert(0);
        if self.max != 0 && *count >= self.max {
            return None;
        }
        *count += 1;
        Some(ClientSlot {
            key,
            counts: Arc::clone(&self.counts),
        })
    }
}

impl Drop for ClientSlot {
    fn drop(&mut self) {
        let mut counts = self.counts.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(count) = counts.get_mut(&self.key) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                counts.remove(&self.key);
            }
        }
    }
}

impl fmt::Debug for PerClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PerClient")
            .field("max", &self.max)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn per_client_counts_and_releases() {
        let per = PerClient::new(2);
        let a: IpAddr = "127.0.0.2"
            .parse()
            .unwrap_or(IpAddr::V4(std::net::Ipv4Addr::LOCALHOST));
        let first = per.try_acquire(a);
        let second = per.try_acquire(a);
        assert!(first.is_some() && second.is_some());
        assert!(per.try_acquire(a).is_none(), "third from the same address");
        assert!(
            per.try_acquire(IpAddr::V4(std::net::Ipv4Addr::LOCALHOST))
                .is_some()
        );
        drop(first);
        assert!(per.try_acquire(a).is_some(), "a slot is released on drop");
    }

    #[test]
    fn ipv6_counts_per_64_and_mapped_ipv4_as_ipv4() {
        let x: IpAddr = "2001:db8:1:2::1"
            .parse()
            .unwrap_or(IpAddr::V4(std::net::Ipv4Addr::LOCALHOST));
        let y: IpAddr = "2001:db8:1:2:ffff::9"
            .parse()
            .unwrap_or(IpAddr::V4(std::net::Ipv4Addr::LOCALHOST));
        assert_eq!(PerClient::key(x), PerClient::key(y));
        let mapped: IpAddr = "::ffff:127.0.0.2"
            .parse()
            .unwrap_or(IpAddr::V4(std::net::Ipv4Addr::LOCALHOST));
        assert_eq!(
            PerClient::key(mapped),
            "127.0.0.2".parse::<IpAddr>().unwrap_or(mapped)
        );
        let unlimited = PerClient::new(0);
        let slots: Vec<_> = (0..100).filter_map(|_| unlimited.try_acquire(x)).collect();
        assert_eq!(slots.len(), 100);
    }
}
