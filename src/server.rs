//! The hyper receiver: `POST {path}` → verify → store → 202; `GET /healthz`; graceful shutdown.
//!
//! The receiver does as little as it can. It checks the signature over the raw bytes, checks that
//! the body is a JSON object, stores the bytes, and answers only after the commit. Parsing into
//! events is the worker's job, so a parser bug gives a failed delivery that can be replayed, not
//! a lost webhook.
//!
//! | request                                   | answer |
//! |-------------------------------------------|--------|
//! | body over `max_body_bytes`                | 413, before reading it when Content-Length says so |
//! | missing, malformed or wrong signature     | 401, nothing stored; no digest is ever echoed |
//! | missing `X-GitHub-Event` / `-Delivery`    | 400 |
//! | not a JSON object, form without `payload` | 400; other content types 415 |
//! | stored                                    | 202 |
//! | same delivery id and body again           | 200, nothing stored or sent again |
//! | same delivery id, different body          | 409, the first is kept |
//! | the database could not commit             | 503, so GitHub shows the delivery as failed |
//!
//! Like mini-redis, [`run`] takes its listener and a shutdown future, so tests bind port 0.

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use http_body_util::{BodyExt, Full, LengthLimitError, Limited};
use hyper::body::{Bytes, Incoming};
use hyper::header::{self, HeaderMap, HeaderValue};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

use crate::github::{self, ContentType, PayloadError};
use crate::signature::{self, Secret};
use crate::store::{Enqueued, NewDelivery, Writer, now_ms};

/// How long requests in flight may take to finish once shutdown begins.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);
/// The longest delivery id we store; GitHub's are 36-character UUIDs.
const DELIVERY_ID_MAX: usize = 128;

/// The most request-header bytes read; more gets 431. GitHub sends about 1 KiB.
const MAX_HEADER_BYTES: usize = 64 * 1024;

/// What the receiver needs to accept a webhook.
pub struct Intake {
    pub path: String,
    pub secrets: Vec<Secret>,
    pub limits: Limits,
    pub writer: Writer,
}

/// What a client may cost the server.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Larger bodies get 413: from Content-Length before reading, or once passed while reading.
    pub max_body_bytes: u64,
    /// Time to send the request headers, after which the connection is closed.
    pub header_timeout: Duration,
    /// Time to send the body, after which the request gets 408.
    pub body_timeout: Duration,
    /// Connections served at once; further ones wait in the listen backlog.
    pub max_connections: usize,
}

/// Serves HTTP on `listener` until `shutdown` completes, then stops accepting and waits up to
/// `SHUTDOWN_GRACE` for requests in flight.
pub async fn run(listener: TcpListener, intake: Arc<Intake>, shutdown: impl Future<Output = ()>) {
    let graceful = GracefulShutdown::new();
    let mut http = http1::Builder::new();
    // The timer is what makes header_read_timeout work: without one hyper never times out.
    http.timer(TokioTimer::new())
        .header_read_timeout(intake.limits.header_timeout)
        .max_header_size(MAX_HEADER_BYTES);
    let connections = Arc::new(Semaphore::new(intake.limits.max_connections));
    tokio::pin!(shutdown);
    loop {
        // Wait for a free connection slot before accepting, so a flood of connections queues
        // in the kernel's backlog instead of exhausting memory or file descriptors.
        let permit = tokio::select! {
            permit = Arc::clone(&connections).acquire_owned() => permit.expect("the semaphore is never closed"),
            () = &mut shutdown => break,
        };
        tokio::select! {
            accepted = listener.accept() => {
                let (stream, peer) = match accepted {
                    Ok(accepted) => accepted,
                    Err(e) => {
                        // Out of file descriptors, usually: back off instead of spinning.
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                };
                let intake = Arc::clone(&intake);
                let service = service_fn(move |req| handle(Arc::clone(&intake), req));
                let connection = graceful.watch(http.serve_connection(TokioIo::new(stream), service));
                tokio::spawn(async move {
                    if let Err(e) = connection.await {
                        tracing::debug!(%peer, error = %e, "connection ended with an error");
                    }
                    drop(permit);
                });
            }
            () = &mut shutdown => break,
        }
    }
    drop(listener);
    tokio::select! {
        () = graceful.shutdown() => tracing::info!("all connections closed"),
        () = tokio::time::sleep(SHUTDOWN_GRACE) => {
            tracing::warn!("connections still open after {SHUTDOWN_GRACE:?}; closing them");
        }
    }
}

type Answer = Response<Full<Bytes>>;

async fn handle(intake: Arc<Intake>, req: Request<Incoming>) -> Result<Answer, Infallible> {
    let path = req.uri().path();
    Ok(match (req.method(), path) {
        (&Method::POST, p) if p == intake.path => receive(&intake, req).await,
        (&Method::GET | &Method::HEAD, "/healthz") => answer(StatusCode::OK, "ok"),
        (_, p) if p == intake.path => {
            let mut res = answer(StatusCode::METHOD_NOT_ALLOWED, "use POST");
            res.headers_mut().insert(header::ALLOW, HeaderValue::from_static("POST"));
            res
        }
        (_, "/healthz") => {
            let mut res = answer(StatusCode::METHOD_NOT_ALLOWED, "use GET");
            res.headers_mut().insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
            res
        }
        _ => answer(StatusCode::NOT_FOUND, "not found"),
    })
}

async fn receive(intake: &Intake, req: Request<Incoming>) -> Answer {
    let declared_len = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let limits = &intake.limits;
    if declared_len.is_some_and(|len| len > limits.max_body_bytes) {
        return too_large(limits);
    }
    let (parts, body) = req.into_parts();
    let reading = Limited::new(body, limits.max_body_bytes as usize).collect();
    let body = match tokio::time::timeout(limits.body_timeout, reading).await {
        Err(_) => return answer(StatusCode::REQUEST_TIMEOUT, "the request body took too long"),
        Ok(Ok(collected)) => collected.to_bytes(),
        Ok(Err(e)) if e.downcast_ref::<LengthLimitError>().is_some() => return too_large(limits),
        Ok(Err(e)) => {
            tracing::debug!(error = %e, "reading the request body failed");
            return answer(StatusCode::BAD_REQUEST, "could not read the request body");
        }
    };
    let headers = &parts.headers;

    let signature = match single(headers, "x-hub-signature-256") {
        Ok(value) => value.map(HeaderValue::as_bytes),
        // A repeated header is refused, not resolved: which copy would we trust?
        Err(()) => Some(&b"duplicated"[..]),
    };
    if let Err(e) = signature::verify(signature, &body, &intake.secrets) {
        tracing::warn!(
            reason = %e,
            delivery = text(headers, "x-github-delivery").unwrap_or("-"),
            "refused a request"
        );
        return answer(StatusCode::UNAUTHORIZED, "signature verification failed");
    }

    let Some(event) = text(headers, "x-github-event").filter(|e| is_token(e, 64)) else {
        return answer(StatusCode::BAD_REQUEST, "missing or invalid X-GitHub-Event header");
    };
    let Some(id) = text(headers, "x-github-delivery").filter(|id| is_token(id, DELIVERY_ID_MAX))
    else {
        return answer(StatusCode::BAD_REQUEST, "missing or invalid X-GitHub-Delivery header");
    };
    let content_type = match ContentType::from_header(text(headers, "content-type")) {
        Ok(ct) => ct,
        Err(e) => return answer(StatusCode::UNSUPPORTED_MEDIA_TYPE, &e.to_string()),
    };
    if let Err(e) = github::payload(content_type, &body) {
        let status = match e {
            PayloadError::UnsupportedContentType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            _ => StatusCode::BAD_REQUEST,
        };
        tracing::warn!(delivery = %id, error = %e, "refused an authentic delivery");
        return answer(status, &e.to_string());
    }

    let bytes = body.len();
    let delivery = NewDelivery {
        id: id.to_string(),
        event: event.to_string(),
        hook_id: text(headers, "x-github-hook-id").filter(|h| is_token(h, 64)).map(str::to_string),
        content_type,
        // Takes the buffer without copying when the body arrived in one piece.
        body: Vec::from(body),
        received_at_ms: now_ms(),
    };
    match intake.writer.enqueue(delivery).await {
        Ok(Enqueued::Stored) => {
            tracing::info!(delivery = %id, %event, bytes, "stored");
            answer(StatusCode::ACCEPTED, "stored")
        }
        Ok(Enqueued::Duplicate) => {
            tracing::info!(delivery = %id, %event, "duplicate delivery; already stored");
            answer(StatusCode::OK, "duplicate delivery; already stored")
        }
        Ok(Enqueued::Conflict) => {
            tracing::warn!(delivery = %id, %event, "delivery id reused with a different body; kept the first");
            answer(StatusCode::CONFLICT, "delivery id already stored with a different body")
        }
        Err(e) if e.is_full() => {
            tracing::error!(
                delivery = %id,
                error = %e,
                "the database is full; answering 503 until space is freed (or [storage] max_bytes raised)"
            );
            answer(StatusCode::SERVICE_UNAVAILABLE, "storage is full; redeliver later")
        }
        Err(e) => {
            tracing::error!(delivery = %id, error = %e, "could not store a delivery; answering 503");
            answer(StatusCode::SERVICE_UNAVAILABLE, "could not store the delivery; redeliver later")
        }
    }
}

fn too_large(limits: &Limits) -> Answer {
    answer(
        StatusCode::PAYLOAD_TOO_LARGE,
        &format!("body larger than {} bytes", limits.max_body_bytes),
    )
}

/// The header's value if it appears at most once; `Err` if repeated.
fn single<'a>(headers: &'a HeaderMap, name: &str) -> Result<Option<&'a HeaderValue>, ()> {
    let mut values = headers.get_all(name).iter();
    let first = values.next();
    if values.next().is_some() { Err(()) } else { Ok(first) }
}

/// A header as text, if present once and visible ASCII.
fn text<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    single(headers, name).ok().flatten().and_then(|v| v.to_str().ok())
}

/// Non-empty, at most `max` bytes, and only characters that are safe in logs and tables.
fn is_token(s: &str, max: usize) -> bool {
    !s.is_empty()
        && s.len() <= max
        && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(&b))
}

fn answer(status: StatusCode, message: &str) -> Answer {
    let mut res = Response::new(Full::new(Bytes::from(format!("{message}\n"))));
    *res.status_mut() = status;
    res.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
    res
}
