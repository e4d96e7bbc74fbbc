//! The connection-level serving loop: accepts TCP connections up to a cap, serves each with
//! hyper's HTTP/1 connection builder under a header read timeout and a per-request body read
//! deadline, hands handlers the peer address as `ConnectInfo<SocketAddr>`, and shuts down
//! gracefully. `axum::serve` offers none of these limits, so slow or idle clients could hold
//! sockets (and file descriptors) forever.
//!
//! hyper answers requests it cannot parse (bad request line or header, bad `Content-Length`,
//! a URI over its fixed 65,534-byte limit, headers over the buffer) itself, with an empty body,
//! before the router sees them. [`VspcErrorIo`] rewrites exactly those automatic answers into
//! VSPC `ErrorResponse` bodies, so every error this server sends is JSON.

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::ConnectInfo;
use axum::http::{Request, Response, StatusCode};
use http_body::{Body as HttpBody, Frame, SizeHint};
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio::time::{Instant, Sleep};
use tower::{Service, ServiceExt};

use crate::error::{ApiError, BodyTimeout, ErrorResponse};

/// Connection limits of the API listener (`serve`'s `--header-read-timeout-secs`,
/// `--body-read-timeout-secs` and `--max-connections`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServerLimits {
    /// A request head (and an idle keep-alive connection's next one) must arrive within this.
    pub header_read_timeout: Duration,
    /// A request body must have arrived completely this long after its head (408 otherwise).
    pub body_read_timeout: Duration,
    /// Connections served at once; more wait in the listen backlog.
    pub max_connections: usize,
}

impl Default for ServerLimits {
    fn default() -> Self {
        Self {
            header_read_timeout: Duration::from_secs(10),
            body_read_timeout: Duration::from_secs(60),
            max_connections: default_max_connections(),
        }
    }
}

/// 1024, or fewer when the process may open fewer files: a quarter of the descriptors stay for
/// the database, log files and the metrics listener.
pub fn default_max_connections() -> usize {
    let limit = open_file_limit().unwrap_or(1024);
    (limit - limit / 4).clamp(16, 1024)
}

#[cfg(unix)]
fn open_file_limit() -> Option<usize> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit only writes the struct we pass.
    let ok = unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } == 0;
    (ok && limit.rlim_cur != libc::RLIM_INFINITY).then(|| usize::try_from(limit.rlim_cur).ok())?
}

#[cfg(not(unix))]
fn open_file_limit() -> Option<usize> {
    None
}

/// A request body that fails with [`BodyTimeout`] once its deadline passes.
pub struct TimedBody {
    inner: Incoming,
    deadline: Instant,
    limit: Duration,
    sleep: Option<Pin<Box<Sleep>>>,
}

impl HttpBody for TimedBody {
    type Data = Bytes;
    type Error = Box<dyn std::error::Error + Send + Sync>;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = &mut *self;
        if let Poll::Ready(frame) = Pin::new(&mut this.inner).poll_frame(cx) {
            return Poll::Ready(frame.map(|f| f.map_err(Into::into)));
        }
        let deadline = this.deadline;
        let sleep = this
            .sleep
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
        ready!(sleep.as_mut().poll(cx));
        Poll::Ready(Some(Err(Box::new(BodyTimeout(this.limit)))))
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// Serves `app` on `listener` until `shutdown` resolves, then lets requests in flight finish
/// (for at most 30 seconds).
pub async fn serve<S>(
    listener: TcpListener,
    app: S,
    limits: ServerLimits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()>
where
    S: Service<Request<Body>, Response = Response<Body>, Error = Infallible>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
{
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .keep_alive(true);
    let builder = Arc::new(builder);
    let slots = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let graceful = GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            _ = &mut shutdown => break,
            permit = slots.clone().acquire_owned() => match permit {
                Ok(p) => p,
                Err(_) => break,
            },
        };
        let (stream, peer) = tokio::select! {
            _ = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of file descriptors and the like: wait instead of spinning.
                    tracing::warn!(error = %e, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(250)).await;
                    continue;
                }
            },
        };
        let _ = stream.set_nodelay(true);
        let app = app.clone();
        let body_timeout = limits.body_read_timeout;
        let service = hyper::service::service_fn(move |request: Request<Incoming>| {
            let (mut parts, inner) = request.into_parts();
            parts.extensions.insert(ConnectInfo(peer));
            let body = Body::new(TimedBody {
                inner,
                deadline: Instant::now() + body_timeout,
                limit: body_timeout,
                sleep: None,
            });
            app.clone().oneshot(Request::from_parts(parts, body))
        });
        let connection = builder.serve_connection(TokioIo::new(VspcErrorIo::new(stream)), service);
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(%peer, error = %e, "connection ended with an error");
            }
            drop(permit);
        });
    }
    drop(listener);
    tokio::select! {
        _ = graceful.shutdown() => {}
        _ = tokio::time::sleep(Duration::from_secs(30)) => {
            tracing::warn!("connections still open 30 s after shutdown began; closing them");
        }
    }
    Ok(())
}

/// The VSPC error body for a request hyper refused before routing it. `request_line` is the
/// refused request's first line when it was seen.
fn automatic_error(status: StatusCode, request_line: Option<&[u8]>) -> ApiError {
    if status == StatusCode::URI_TOO_LONG {
        if let Some(e) = request_line.and_then(over_long_parameter) {
            return e;
        }
    }
    let message = match status.as_u16() {
        414 => "The request URI is longer than the 65,534 bytes this server reads; shorten the \
                 filter, sort or select values."
            .to_string(),
        431 => "The request headers are larger than this server accepts.".to_string(),
        413 => "The request body is larger than this server accepts.".to_string(),
        _ => "The request could not be parsed: its request line, a header or its \
              Content-Length is malformed."
            .to_string(),
    };
    ApiError::new(
        status,
        crate::error::ErrorType::Logical,
        i32::from(status.as_u16()),
        message,
    )
}

/// The query engine's answer to a request whose URI hyper found too long: the 400 on the first
/// collection parameter whose decoded value is over [`tallyman_query::MAX_VALUE_CHARS`], decoded
/// and matched as the query engine does (form decoding, names ignoring case, first occurrence
/// wins).
fn over_long_parameter(request_line: &[u8]) -> Option<ApiError> {
    const KNOWN: [&str; 5] = ["filter", "sort", "select", "limit", "offset"];
    let line = std::str::from_utf8(request_line).ok()?.trim_end();
    let target = line.split(' ').nth(1)?;
    let (_, query) = target.split_once('?')?;
    let mut seen: Vec<String> = Vec::new();
    for (name, value) in form_urlencoded::parse(query.as_bytes()) {
        let name = name.to_ascii_lowercase();
        if !KNOWN.contains(&name.as_str()) || seen.contains(&name) {
            continue;
        }
        if value.chars().count() > tallyman_query::MAX_VALUE_CHARS {
            return Some(ApiError::bad_parameter(
                name,
                format!(
                    "Parameter value must not be longer than {} characters.",
                    tallyman_query::MAX_VALUE_CHARS
                ),
            ));
        }
        seen.push(name);
    }
    None
}

/// If `buf` is one of hyper's automatic error answers (a 4xx head with `content-length: 0`
/// and no content type; the router's errors always carry a JSON body), the same answer with
/// a VSPC `ErrorResponse` body.
fn rewrite_automatic_error(buf: &[u8], request_line: Option<&[u8]>) -> Option<Vec<u8>> {
    let rest = buf.strip_prefix(b"HTTP/1.1 4")?;
    let head_end = buf.windows(4).position(|w| w == b"\r\n\r\n")? + 4;
    if head_end != buf.len() {
        return None;
    }
    let code = std::str::from_utf8(buf.get(9..12)?)
        .ok()?
        .parse::<u16>()
        .ok()?;
    if !matches!(code, 400 | 413 | 414 | 431) || rest.is_empty() {
        return None;
    }
    let head = std::str::from_utf8(&buf[..head_end])
        .ok()?
        .to_ascii_lowercase();
    if !head.contains("\r\ncontent-length: 0\r\n") || head.contains("\r\ncontent-type:") {
        return None;
    }
    let error = automatic_error(StatusCode::from_u16(code).ok()?, request_line);
    let status = error.status;
    let body = serde_json::to_vec(&ErrorResponse {
        errors: vec![*error.error],
    })
    .ok()?;
    let mut out = format!(
        "HTTP/1.1 {} {}\r\ncontent-type: application/json; charset=utf-8\r\n\
         content-length: {}\r\nconnection: close\r\n\r\n",
        status.as_u16(),
        status.canonical_reason().unwrap_or(""),
        body.len()
    )
    .into_bytes();
    out.extend_from_slice(&body);
    Some(out)
}

/// Longest request line kept to explain a 414 (hyper itself stops reading a head at ~400 KB).
const MAX_CAPTURED_LINE: usize = 256 * 1024;

/// The TCP stream of one connection, with hyper's automatic error answers rewritten (see
/// [`rewrite_automatic_error`]). Writes are never vectored, so hyper hands over each response
/// head in one buffer. To answer an over-long URI the way the query engine would, it keeps the
/// first line of the request being read (only that line, and only while it is being read).
pub struct VspcErrorIo<T> {
    inner: T,
    /// A rewritten answer being written: bytes, how many are out, and the length of the
    /// buffer hyper handed in (reported as written once all of ours are).
    pending: Option<(Vec<u8>, usize, usize)>,
    /// The first line of the request being read, while `capturing`.
    line: Vec<u8>,
    capturing: bool,
}

impl<T> VspcErrorIo<T> {
    pub fn new(inner: T) -> Self {
        Self {
            inner,
            pending: None,
            line: Vec::new(),
            capturing: true,
        }
    }

    fn capture(&mut self, read: &[u8]) {
        if !self.capturing || read.is_empty() {
            return;
        }
        if self.line.is_empty() && !read[0].is_ascii_uppercase() {
            // Not a request line (blank lines between requests, or body bytes).
            self.capturing = read[0] == b'\r' || read[0] == b'\n';
            return;
        }
        let end = read.iter().position(|&b| b == b'\n');
        let take = end.map_or(read.len(), |i| i + 1);
        if self.line.len() + take > MAX_CAPTURED_LINE {
            self.line = Vec::new();
            self.capturing = false;
            return;
        }
        self.line.extend_from_slice(&read[..take]);
        if end.is_some() {
            self.capturing = false;
        }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for VspcErrorIo<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        ready!(Pin::new(&mut self.inner).poll_read(cx, buf))?;
        self.capture(&buf.filled()[before..]);
        Poll::Ready(Ok(()))
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for VspcErrorIo<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        if this.pending.is_none() {
            let line = (!this.line.is_empty()).then_some(this.line.as_slice());
            match rewrite_automatic_error(buf, line) {
                Some(replacement) => this.pending = Some((replacement, 0, buf.len())),
                None => {
                    let written = ready!(Pin::new(&mut this.inner).poll_write(cx, buf))?;
                    if buf.starts_with(b"HTTP/1.1 ") && !buf.starts_with(b"HTTP/1.1 1") {
                        // An answer went out: the next bytes read start a new request.
                        this.line.clear();
                        this.capturing = true;
                    }
                    return Poll::Ready(Ok(written));
                }
            }
        }
        let Some((bytes, written, claimed)) = this.pending.as_mut() else {
            return Poll::Ready(Ok(0));
        };
        while *written < bytes.len() {
            let n = ready!(Pin::new(&mut this.inner).poll_write(cx, &bytes[*written..]))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            *written += n;
        }
        let claimed = *claimed;
        this.pending = None;
        Poll::Ready(Ok(claimed))
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

    #[test]
    fn hypers_automatic_answers_become_vspc_errors() {
        let raw = b"HTTP/1.1 414 URI Too Long\r\ncontent-length: 0\r\ndate: x\r\n\r\n";
        let out = String::from_utf8(rewrite_automatic_error(raw, None).unwrap()).unwrap();
        assert!(out.starts_with("HTTP/1.1 414 URI Too Long\r\n"), "{out}");
        let (_, body) = out.split_once("\r\n\r\n").unwrap();
        let v: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(v["errors"][0]["code"], 414);
        assert_eq!(v["errors"][0]["type"], "logical");
        assert!(out.contains(&format!("content-length: {}\r\n", body.len())));
    }

    #[test]
    fn the_routers_own_answers_pass_untouched() {
        let json = b"HTTP/1.1 400 Bad Request\r\ncontent-type: application/json\r\ncontent-length: 0\r\n\r\n";
        assert!(rewrite_automatic_error(json, None).is_none());
        let ok = b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n";
        assert!(rewrite_automatic_error(ok, None).is_none());
        let with_body = b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\nxx";
        assert!(rewrite_automatic_error(with_body, None).is_none());
    }

    #[test]
    fn an_over_long_parameter_in_a_too_long_uri_is_the_query_engines_400() {
        let raw = b"HTTP/1.1 414 URI Too Long\r\ncontent-length: 0\r\n\r\n";
        let long = "a".repeat(tallyman_query::MAX_VALUE_CHARS + 1);
        let line = format!("GET /api/v3/x?limit=5&SORT={long}&filter=%5B HTTP/1.1\r\n");
        let out = String::from_utf8(rewrite_automatic_error(raw, Some(line.as_bytes())).unwrap())
            .unwrap();
        assert!(out.starts_with("HTTP/1.1 400 Bad Request\r\n"), "{out}");
        let (_, body) = out.split_once("\r\n\r\n").unwrap();
        let v: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(v["errors"][0]["parameterName"], "sort");
        assert_eq!(v["errors"][0]["code"], 400);
        // A long URI without an over-long parameter stays a 414.
        let line = format!("GET /api/v3/x?a={long} HTTP/1.1\r\n");
        let out = rewrite_automatic_error(raw, Some(line.as_bytes())).unwrap();
        assert!(out.starts_with(b"HTTP/1.1 414 "));
    }

    #[test]
    fn only_the_request_line_is_kept() {
        let mut io = VspcErrorIo::new(());
        io.capture(b"GET /x?filter=ab");
        io.capture(b"cd HTTP/1.1\r\nHost: x\r\n\r\nbody");
        assert_eq!(io.line, b"GET /x?filter=abcd HTTP/1.1\r\n");
        assert!(!io.capturing);
        let mut io = VspcErrorIo::new(());
        io.capture(b"\x00binary");
        assert!(io.line.is_empty() && !io.capturing);
    }
}
