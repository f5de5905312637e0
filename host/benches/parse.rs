//! Request-head parsing: `cargo bench -p plugd --bench parse`.
//!
//! Two inputs that bracket what plugd sees: a typical browser navigation (Chrome's `GET` with 13 fields,
//! ~700 bytes) and the small request wrk sends (2 fields), parsed alone and as a pipelined batch of 16
//! (the `pipeline16` scenario: one read holds 16 requests, parsed back to back).
//!
//! On the 2-core development machine (shared, so compare runs made back to back): browser_get 982 -> 515 ns,
//! wrk_get 79 -> 49 ns, wrk_get_pipelined_x16 1.26 -> 0.82 us when the one-pass scanners and inline fields
//! came in (`http/scan.rs`, `http/headers.rs`).

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use plugd::config::{MAX_HEADERS, MAX_REQUEST_LINE};
use plugd::http::{HeadLimits, parse_head};

const BROWSER_GET: &[u8] = b"GET /static/css/site.css?v=3 HTTP/1.1\r\n\
Host: localhost:8080\r\n\
Connection: keep-alive\r\n\
sec-ch-ua: \"Chromium\";v=\"124\", \"Google Chrome\";v=\"124\", \"Not-A.Brand\";v=\"99\"\r\n\
sec-ch-ua-mobile: ?0\r\n\
User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36\r\n\
sec-ch-ua-platform: \"Linux\"\r\n\
Accept: text/css,*/*;q=0.1\r\n\
Sec-Fetch-Site: same-origin\r\n\
Sec-Fetch-Mode: no-cors\r\n\
Sec-Fetch-Dest: style\r\n\
Referer: http://localhost:8080/\r\n\
Accept-Encoding: gzip, deflate, br, zstd\r\n\
Accept-Language: en-GB,en;q=0.9,de;q=0.8\r\n\
\r\n";

/// What wrk sends for `http://127.0.0.1:28080/plaintext`.
const WRK_GET: &[u8] = b"GET /plaintext HTTP/1.1\r\nHost: 127.0.0.1:28080\r\n\r\n";

fn limits() -> HeadLimits {
    HeadLimits {
        max_request_line: MAX_REQUEST_LINE,
        max_header_bytes: 16 * 1024,
        max_headers: MAX_HEADERS,
    }
}

/// Parses every request in `buf` back to back, as the connection does after one read.
fn parse_all(buf: &[u8], limits: &HeadLimits) -> usize {
    let mut at = 0;
    let mut n = 0;
    while let Ok(Some((head, used))) = parse_head(&buf[at..], limits) {
        black_box(&head);
        at += used;
        n += 1;
    }
    n
}

fn bench(c: &mut Criterion) {
    let limits = limits();
    let mut group = c.benchmark_group("parse_head");
    for (name, input) in [("browser_get", BROWSER_GET), ("wrk_get", WRK_GET)] {
        assert!(matches!(parse_head(input, &limits), Ok(Some(_))), "{name}");
        group.throughput(Throughput::Bytes(input.len() as u64));
        group.bench_function(name, |b| {
            b.iter(|| parse_head(black_box(input), &limits).map(|r| r.map(|(_, n)| n)))
        });
    }
    let batch = WRK_GET.repeat(16);
    assert_eq!(parse_all(&batch, &limits), 16);
    group.throughput(Throughput::Elements(16));
    group.bench_function("wrk_get_pipelined_x16", |b| {
        b.iter(|| parse_all(black_box(&batch), &limits))
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
