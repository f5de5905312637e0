//! The admin listener's own threads: one accepts, and each connection is answered on a short-lived thread
//! of its own, at most [`MAX_CONNECTIONS`] at once. It never uses the worker pool, so it answers while
//! every worker is busy or blocked in a handler, and during the shutdown drain (`/healthz` says 503 then).
//!
//! It speaks plugd's own HTTP/1.1: the head is read with the engine's parser (`http/parse.rs`) and the
//! answer written by its response writer (`http/response.rs`). Blocking sockets with timeouts are enough
//! for a handful of operators and scrapers; one request per connection (`Connection: close`) keeps it
//! simple: a scraper or the page asks every few seconds, not thousands of times.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use super::endpoints::{Admin, Reply};
use crate::config::{MAX_HEADERS, MAX_REQUEST_LINE};
use crate::http::response::{self, Framing};
use crate::http::{BodyFraming, HeadLimits, date, parse_head};

/// Connections answered at once; more get a 503 (a scraper or a browser needs one or two).
const MAX_CONNECTIONS: usize = 8;
/// How long a client may take to send its request, and to read the answer.
const IO_TIMEOUT: Duration = Duration::from_secs(5);
/// Largest admin request head: no admin request needs more than a browser's usual few hundred bytes.
const MAX_HEAD_BYTES: usize = 16 * 1024;
/// Largest request body accepted (and ignored): no endpoint reads one.
const MAX_BODY_BYTES: u64 = 64 * 1024;

/// Binds `addr` and starts the accepting thread; returns the bound address (the real port for `:0`).
pub fn start(addr: SocketAddr, admin: Arc<Admin>) -> io::Result<SocketAddr> {
    let listener = TcpListener::bind(addr)?;
    let bound = listener.local_addr()?;
    std::thread::Builder::new()
        .name("plugd-admin".into())
        .spawn(move || accept_forever(&listener, &admin))?;
    Ok(bound)
}

fn accept_forever(listener: &TcpListener, admin: &Arc<Admin>) {
    let active = Arc::new(AtomicUsize::new(0));
    for stream in listener.incoming() {
        let stream = match stream {
            Ok(stream) => stream,
            Err(err) => {
                log::warn!("admin: accept failed: {err}");
                // Out of descriptors, most likely: give the server a moment to close some.
                std::thread::sleep(Duration::from_millis(100));
                continue;
            }
        };
        if active.fetch_add(1, Ordering::AcqRel) >= MAX_CONNECTIONS {
            active.fetch_sub(1, Ordering::AcqRel);
            refuse_busy(stream);
            continue;
        }
        let (admin, done) = (Arc::clone(admin), Arc::clone(&active));
        let spawned = std::thread::Builder::new()
            .name("plugd-admin-conn".into())
            .spawn(move || {
                serve(stream, &admin);
                done.fetch_sub(1, Ordering::AcqRel);
            });
        if let Err(err) = spawned {
            log::warn!("admin: cannot start a thread for a connection: {err}");
            active.fetch_sub(1, Ordering::AcqRel);
        }
    }
}

fn refuse_busy(mut stream: TcpStream) {
    let _ = stream.set_write_timeout(Some(IO_TIMEOUT));
    let mut out = Vec::new();
    response::write_error(&mut out, 503, "admin listener busy", &date::now());
    let _ = stream.write_all(&out);
}

/// Reads one request, answers it, closes.
fn serve(mut stream: TcpStream, admin: &Admin) {
    let peer = stream
        .peer_addr()
        .map_or_else(|_| "?".to_owned(), |p| p.to_string());
    if stream.set_read_timeout(Some(IO_TIMEOUT)).is_err()
        || stream.set_write_timeout(Some(IO_TIMEOUT)).is_err()
    {
        return;
    }
    let mut out = Vec::new();
    match read_and_answer(&mut stream, admin, &mut out) {
        Ok(()) => {}
        Err(Refusal::Status(status, reason)) => {
            log::debug!("admin: {peer}: refused with {status}: {reason}");
            out.clear();
            response::write_error(&mut out, status, reason, &date::now());
        }
        Err(Refusal::Gone(err)) => {
            log::debug!("admin: {peer}: {err}");
            return;
        }
    }
    if let Err(err) = stream.write_all(&out) {
        log::debug!("admin: {peer}: cannot send the answer: {err}");
    }
}

/// Why a request got no regular answer.
enum Refusal {
    /// The request was refused with this status and reason.
    Status(u16, &'static str),
    /// The client went away or was too slow: nothing to answer.
    Gone(io::Error),
}

fn read_and_answer(
    stream: &mut TcpStream,
    admin: &Admin,
    out: &mut Vec<u8>,
) -> Result<(), Refusal> {
    let limits = HeadLimits {
        max_request_line: MAX_REQUEST_LINE,
        max_header_bytes: MAX_HEAD_BYTES,
        max_headers: MAX_HEADERS,
    };
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 4096];
    loop {
        match parse_head(&buf, &limits) {
            Ok(Some((head, head_len))) => {
                let body_len = match head.body {
                    BodyFraming::None => 0,
                    BodyFraming::Length(len) if len <= MAX_BODY_BYTES => len as usize,
                    BodyFraming::Length(_) => {
                        return Err(Refusal::Status(413, "admin requests carry no body"));
                    }
                    BodyFraming::Chunked => {
                        return Err(Refusal::Status(411, "admin requests carry no body"));
                    }
                };
                // The body is read (so closing does not reset the connection before the answer) and ignored.
                let mut rest = body_len.saturating_sub(buf.len() - head_len);
                while rest > 0 {
                    let n = stream.read(&mut chunk).map_err(Refusal::Gone)?;
                    if n == 0 {
                        return Err(Refusal::Gone(io::ErrorKind::UnexpectedEof.into()));
                    }
                    rest = rest.saturating_sub(n);
                }
                let reply = admin.answer(head.method, head.path);
                write_reply(out, &reply, head.method == "HEAD");
                return Ok(());
            }
            Ok(None) => {}
            Err(err) => return Err(Refusal::Status(err.status(), err.reason())),
        }
        let n = stream.read(&mut chunk).map_err(Refusal::Gone)?;
        if n == 0 {
            return Err(Refusal::Gone(io::ErrorKind::UnexpectedEof.into()));
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

fn write_reply(out: &mut Vec<u8>, reply: &Reply, head_only: bool) {
    let mut fields = vec![
        ("Content-Type", reply.content_type),
        // Live figures: a cache would show old ones.
        ("Cache-Control", "no-store"),
    ];
    if let Some(allow) = reply.allow {
        fields.push(("Allow", allow));
    }
    let framing = Framing {
        body_len: reply.body.len() as u64,
        keep_alive: false,
        http10: false,
    };
    response::write_head(out, reply.status, fields.into_iter(), framing, &date::now());
    if !head_only {
        out.extend_from_slice(&reply.body);
    }
}
