//! Accepting and keeping connections: the accept loop of `gk-regler serve`, with the
//! limits a service on a hostile network needs.
//!
//! - **Header-read timeout.** A connection must send a whole request head within
//!   [`Limits::header_read_timeout`] of its first byte (or of being opened), else it is
//!   closed. A slowly trickled or half-sent header cannot hold a connection.
//! - **Idle timeout.** A connection with no request in progress that moves no byte for
//!   [`Limits::idle_timeout`] is closed: an idle keep-alive connection, or a client that
//!   stops reading its answer. A request body that sends nothing for as long is given
//!   up (the handler gets a body error, nothing is stored).
//! - **Connection cap.** At most [`Limits::max_connections`] connections are served at a
//!   time. One more is answered `503` with `Retry-After` and closed; it never reaches the
//!   router. Only its first bytes are looked at, for up to [`PROBE_WAIT`]: a liveness
//!   probe (`GET /health/live`) is answered `200`, since the process does answer, so
//!   that connections held open by others cannot make an orchestrator restart it.
//! - **Shutdown deadline.** When `shutdown` resolves, the listener closes, idle
//!   connections close, in-flight requests may finish within
//!   [`Limits::shutdown_grace`]; then every connection still open is dropped.
//!
//! HTTP/1.1 only (hyper's `http1` server); the timers are kept here rather than in
//! hyper, because hyper runs its header timer from the end of the previous answer, which
//! would make the idle timeout of a kept-alive connection the header timeout.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use hyper::body::Incoming;
use hyper::service::Service as _;
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, Semaphore, watch};
use tokio::task::JoinSet;
use tokio::time::Instant;
use tower_http::timeout::RequestBodyTimeoutLayer;

/// The connection limits of [`serve`] (config: `header_read_timeout_seconds`,
/// `idle_timeout_seconds`, `max_connections`, `shutdown_grace_seconds`).
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    pub header_read_timeout: Duration,
    pub idle_timeout: Duration,
    pub max_connections: usize,
    pub shutdown_grace: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            header_read_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            max_connections: 512,
            shutdown_grace: Duration::from_secs(10),
        }
    }
}

/// Refused connections being answered at once; beyond this a refused connection is
/// closed without an answer, so refusing never costs more than this many descriptors.
const MAX_REFUSALS_IN_FLIGHT: usize = 128;

/// How long a refused connection is given to take its answer, and then how long what it
/// sent is read and dropped, so that closing does not reset the connection before the
/// client has read the answer. With [`PROBE_WAIT`], a refused connection holds one of the
/// [`MAX_REFUSALS_IN_FLIGHT`] for at most 0.3 s, whatever its client does: clients that
/// send nothing and never close must open some 400 connections a second to keep a
/// liveness probe from being answered.
const REFUSAL_LINGER: Duration = Duration::from_millis(100);

/// How long a refused connection may take to send the start of its request line, to
/// tell a liveness probe; one that sends nothing meanwhile is answered `503`.
const PROBE_WAIT: Duration = Duration::from_millis(100);

/// How a liveness probe's request starts; nothing else is answered at the cap.
const LIVE_REQUEST: &[u8] = b"GET /health/live ";

/// The answer at the connection cap to anything but a liveness probe.
const BUSY_BODY: &str =
    "Tjänsten har för många öppna anslutningar just nu. Försök igen om en stund.\n";

/// Serves `router` on `listener` within `limits` until `shutdown` resolves, then closes
/// connections as described in the module documentation.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: Limits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    // A request body that stops arriving is given up after the idle timeout too (the
    // connection's own timers pause while a request is in the router).
    let router = router.layer(RequestBodyTimeoutLayer::new(limits.idle_timeout));
    let permits = Arc::new(Semaphore::new(limits.max_connections));
    let refusals = Arc::new(Semaphore::new(MAX_REFUSALS_IN_FLIGHT));
    let (stop, stopped) = watch::channel(false);
    let mut connections = JoinSet::new();
    let mut refused = JoinSet::new();
    let shutdown = std::pin::pin!(shutdown);
    let mut shutdown = shutdown;
    loop {
        let stream = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(err) => {
                    // Out of descriptors or a connection reset before accept: wait a
                    // little instead of spinning, then go on accepting.
                    tracing::warn!(error = %err, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => continue,
            Some(_) = refused.join_next(), if !refused.is_empty() => continue,
        };
        // An answer goes out as soon as it is written, not held back until the client
        // acknowledges the previous one (Nagle's algorithm); a failure only costs speed.
        let _ = stream.set_nodelay(true);
        match Arc::clone(&permits).try_acquire_owned() {
            Ok(permit) => {
                let router = router.clone();
                let stopped = stopped.clone();
                connections.spawn(async move {
                    connection(stream, router, limits, stopped).await;
                    drop(permit);
                });
            }
            Err(_) => match Arc::clone(&refusals).try_acquire_owned() {
                Ok(permit) => {
                    refused.spawn(async move {
                        refuse(stream).await;
                        drop(permit);
                    });
                }
                Err(_) => drop(stream),
            },
        }
    }
    drop(listener);
    let _ = stop.send(true);
    refused.abort_all();
    let open = connections.len();
    tracing::info!(open, "shutting down: no new connections");
    let drained = tokio::time::timeout(limits.shutdown_grace, async {
        while connections.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::warn!(
            open = connections.len(),
            grace_seconds = limits.shutdown_grace.as_secs(),
            "shutdown grace period over: closing the connections still open"
        );
        connections.shutdown().await;
    }
    Ok(())
}

/// Answers a connection over the cap, then closes: a liveness probe `200`, anything
/// else `503`. The request's bytes are read and dropped for a moment after the answer,
/// so closing does not reset the connection before the client has read it.
async fn refuse(mut stream: TcpStream) {
    let answer = if is_liveness_probe(&mut stream).await {
        let body = serde_json::to_string(&super::HealthResponse::LIVE)
            .unwrap_or_else(|_| r#"{"status":"ok"}"#.to_owned());
        format!(
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\
                 Cache-Control: no-store\r\nX-Content-Type-Options: nosniff\r\n\
                 Connection: close\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
    } else {
        format!(
            "HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain; charset=utf-8\r\n\
                 Retry-After: 1\r\nCache-Control: no-store\r\nConnection: close\r\n\
                 Content-Length: {}\r\n\r\n{BUSY_BODY}",
            BUSY_BODY.len()
        )
    };
    let written = tokio::time::timeout(REFUSAL_LINGER, async {
        stream.write_all(answer.as_bytes()).await?;
        stream.shutdown().await
    })
    .await;
    if !matches!(written, Ok(Ok(()))) {
        return;
    }
    let _ = tokio::time::timeout(REFUSAL_LINGER, async {
        let mut sink = [0u8; 1024];
        while tokio::io::AsyncReadExt::read(&mut stream, &mut sink).await? > 0 {}
        Ok::<_, io::Error>(())
    })
    .await;
}

/// Whether the connection's request starts as a liveness probe's, read within
/// [`PROBE_WAIT`]; stops reading at the first byte that differs.
async fn is_liveness_probe(stream: &mut TcpStream) -> bool {
    let mut head = [0u8; LIVE_REQUEST.len()];
    let mut filled = 0;
    let read = tokio::time::timeout(PROBE_WAIT, async {
        while filled < head.len() {
            let n = tokio::io::AsyncReadExt::read(stream, &mut head[filled..]).await?;
            if n == 0 || head[..filled + n] != LIVE_REQUEST[..filled + n] {
                return Ok::<_, io::Error>(false);
            }
            filled += n;
        }
        Ok(true)
    })
    .await;
    matches!(read, Ok(Ok(true)))
}

/// Serves one connection until it ends, times out, or the service stops.
async fn connection(
    stream: TcpStream,
    router: Router,
    limits: Limits,
    mut stopped: watch::Receiver<bool>,
) {
    let activity = Arc::new(Activity::new());
    let io = TokioIo::new(Tracked {
        inner: stream,
        activity: Arc::clone(&activity),
    });
    let router = TowerToHyperService::new(router);
    let in_service = Arc::clone(&activity);
    let service = hyper::service::service_fn(move |request: hyper::Request<Incoming>| {
        let guard = RequestGuard::begin(Arc::clone(&in_service));
        let answer = router.call(request);
        async move {
            let answer = answer.await;
            drop(guard);
            answer
        }
    });
    let conn = hyper::server::conn::http1::Builder::new()
        .header_read_timeout(None)
        .serve_connection(io, service);
    let mut conn = std::pin::pin!(conn);
    let mut closing = *stopped.borrow();
    if closing {
        conn.as_mut().graceful_shutdown();
    }
    loop {
        let deadline = activity.deadline(&limits);
        tokio::select! {
            result = conn.as_mut() => {
                if let Err(err) = result {
                    tracing::debug!(error = %err, "connection ended with an error");
                }
                return;
            }
            () = activity.moved.notified() => {}
            () = tokio::time::sleep_until(deadline) => {
                if activity.deadline(&limits) <= Instant::now() {
                    tracing::debug!("connection closed: header or idle timeout");
                    return;
                }
            }
            changed = stopped.changed(), if !closing => {
                let _ = changed;
                closing = true;
                conn.as_mut().graceful_shutdown();
            }
        }
    }
}

/// What a connection is doing, for its timers: times are milliseconds since `opened`.
struct Activity {
    opened: Instant,
    /// The last byte read or written, or the last answer handed to hyper.
    last_io: AtomicU64,
    /// When the request head now being read began ([`NO_HEAD`] when none is).
    head_started: AtomicU64,
    /// Requests handed to the router and not answered yet.
    in_flight: AtomicUsize,
    /// Told when the deadline may have moved earlier (a head began, an answer was made).
    moved: Notify,
}

const NO_HEAD: u64 = u64::MAX;

impl Activity {
    /// A new connection counts as reading a head from the start, so one that sends
    /// nothing is closed after the header timeout.
    fn new() -> Self {
        Self {
            opened: Instant::now(),
            last_io: AtomicU64::new(0),
            head_started: AtomicU64::new(0),
            in_flight: AtomicUsize::new(0),
            moved: Notify::new(),
        }
    }

    fn now(&self) -> u64 {
        u64::try_from(self.opened.elapsed().as_millis()).unwrap_or(NO_HEAD - 1)
    }

    fn at(&self, millis: u64) -> Instant {
        self.opened + Duration::from_millis(millis)
    }

    fn read(&self, bytes: usize) {
        if bytes == 0 {
            return;
        }
        let now = self.now();
        self.last_io.store(now, Ordering::Relaxed);
        if self.in_flight.load(Ordering::Acquire) == 0 {
            // The first byte after an answer starts the next head.
            let started = self.head_started.compare_exchange(
                NO_HEAD,
                now,
                Ordering::AcqRel,
                Ordering::Relaxed,
            );
            if started.is_ok() {
                self.moved.notify_one();
            }
        }
    }

    fn wrote(&self, bytes: usize) {
        if bytes > 0 {
            self.last_io.store(self.now(), Ordering::Relaxed);
        }
    }

    /// When this connection is to be closed unless something happens first. While a
    /// request is being handled there is no deadline (checked again after `idle`).
    fn deadline(&self, limits: &Limits) -> Instant {
        if self.in_flight.load(Ordering::Acquire) > 0 {
            return Instant::now() + limits.idle_timeout;
        }
        match self.head_started.load(Ordering::Acquire) {
            NO_HEAD => self.at(self.last_io.load(Ordering::Relaxed)) + limits.idle_timeout,
            started => self.at(started) + limits.header_read_timeout,
        }
    }
}

/// A request in the router: no timer runs while it is held.
struct RequestGuard(Arc<Activity>);

impl RequestGuard {
    fn begin(activity: Arc<Activity>) -> Self {
        activity.in_flight.fetch_add(1, Ordering::AcqRel);
        activity.head_started.store(NO_HEAD, Ordering::Release);
        Self(activity)
    }
}

impl Drop for RequestGuard {
    fn drop(&mut self) {
        let now = self.0.now();
        self.0.last_io.store(now, Ordering::Relaxed);
        self.0.in_flight.fetch_sub(1, Ordering::AcqRel);
        self.0.moved.notify_one();
    }
}

/// The socket, noting each read and write in its [`Activity`].
struct Tracked {
    inner: TcpStream,
    activity: Arc<Activity>,
}

impl AsyncRead for Tracked {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = polled {
            self.activity.read(buf.filled().len() - before);
        }
        polled
    }
}

impl AsyncWrite for Tracked {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write(cx, buf);
        if let Poll::Ready(Ok(n)) = polled {
            self.activity.wrote(n);
        }
        polled
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        if let Poll::Ready(Ok(n)) = polled {
            self.activity.wrote(n);
        }
        polled
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> Limits {
        Limits {
            header_read_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            ..Limits::default()
        }
    }

    #[test]
    fn a_new_connection_is_on_the_header_clock_and_an_answered_one_on_the_idle_clock() {
        let limits = limits();
        let second = Duration::from_secs(1);
        let activity = Arc::new(Activity::new());
        let deadline = activity.deadline(&limits);
        assert!(deadline <= Instant::now() + 10 * second && deadline > Instant::now() + 9 * second);
        let guard = RequestGuard::begin(Arc::clone(&activity));
        activity.read(100);
        assert!(
            activity.deadline(&limits) > Instant::now() + 59 * second,
            "no header clock while a request is handled"
        );
        drop(guard);
        assert!(
            activity.deadline(&limits) > Instant::now() + 59 * second,
            "an answered connection is on the idle clock"
        );
        activity.read(3);
        assert!(
            activity.deadline(&limits) <= Instant::now() + 10 * second,
            "the next head's first byte starts the header clock"
        );
        activity.read(3);
        assert!(activity.deadline(&limits) <= Instant::now() + 10 * second);
    }
}
