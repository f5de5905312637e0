//! The rate limit's cost per request and its memory with a million clients:
//! `cargo bench -p plugd --bench rate_limit`.
//!
//! Before the timings it feeds 1,000,000 distinct client addresses through one limiter and prints the
//! process's resident memory before and after (`VmRSS`): the bucket table is fixed-size, so the growth is
//! bounded by the table (docs/ARCHITECTURE.md §16), whatever the number of clients. Then criterion times
//! `RateLimiter::check` (client address, path prefixes, the bucket) for one client over and over, and for
//! a stream of distinct clients (every one a new slot).

use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use criterion::Criterion;
use plugd::handler::Request;
use plugd::http::{HeadLimits, RequestHead, parse_head};
use plugd::rate_limit::{RateLimiter, Settings, TrustedProxies};

const CLIENTS: u32 = 1_000_000;

fn limiter() -> RateLimiter {
    let settings = Settings {
        requests_per_second: 100.0,
        burst: 200,
        paths: Vec::new(),
        draft_fields: false,
    };
    RateLimiter::new(&settings, TrustedProxies::default())
}

fn head(raw: &[u8]) -> RequestHead<'_> {
    let limits = HeadLimits {
        max_request_line: 8192,
        max_header_bytes: 16384,
        max_headers: 100,
    };
    parse_head(raw, &limits).unwrap().unwrap().0
}

fn peer(n: u32) -> SocketAddr {
    SocketAddr::new(IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + n)), 40000)
}

fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.trim().trim_end_matches(" kB").parse().ok())
        .unwrap()
}

/// RSS before and after a million distinct clients.
fn million_clients() {
    let raw = b"GET /plaintext HTTP/1.1\r\nHost: x\r\n\r\n";
    let head = head(raw);
    let before = rss_kib();
    let limiter = limiter();
    let created = rss_kib();
    let now = Instant::now();
    for n in 0..CLIENTS {
        let req = Request {
            head: &head,
            params: &[],
            body: b"",
            peer: peer(n),
            upload: None,
        };
        black_box(limiter.check(&req, now + Duration::from_micros(u64::from(n))));
    }
    let after = rss_kib();
    println!(
        "rate limit memory: RSS {before} KiB before, {created} KiB with the limiter, {after} KiB after \
         {CLIENTS} distinct clients (+{} KiB)",
        after - before
    );
}

fn benches(c: &mut Criterion) {
    let raw = b"GET /plaintext HTTP/1.1\r\nHost: x\r\n\r\n";
    let head = head(raw);
    let limiter = limiter();
    let start = Instant::now();
    c.bench_function("rate_limit_check/one_client", |b| {
        let req = Request {
            head: &head,
            params: &[],
            body: b"",
            peer: peer(1),
            upload: None,
        };
        b.iter(|| black_box(limiter.check(black_box(&req), start)))
    });
    c.bench_function("rate_limit_check/distinct_clients", |b| {
        let mut n = 0u32;
        b.iter(|| {
            n = n.wrapping_add(1) % CLIENTS;
            let req = Request {
                head: &head,
                params: &[],
                body: b"",
                peer: peer(n),
                upload: None,
            };
            black_box(limiter.check(black_box(&req), start))
        })
    });
}

fn main() {
    million_clients();
    let mut criterion = Criterion::default().configure_from_args();
    benches(&mut criterion);
    criterion.final_summary();
}
