//! One access-log line, formatted straight into a worker's buffer: Combined Log Format (what GoAccess,
//! AWStats and Loki's parsers read) or a JSON object per line.
//!
//! Every value a client controls is escaped so that no input can end a line, close a quoted field or
//! smuggle terminal control sequences into whoever reads the log. The rules are nginx's: `escape=default`
//! for the combined format (`"`, `\`, bytes below 0x20 and above 0x7E become `\xHH`) and `escape=json` for
//! JSON (`\"`, `\\`, `\n` ..., `\u00HH`), except that JSON lines stay valid UTF-8: a byte that is not part of
//! a valid UTF-8 sequence is written as `\u00HH` (the byte's value; nginx would copy it raw).
//!
//! Formatting allocates nothing per line and avoids `core::fmt` (IPv4 peers, numbers and the cached time are
//! copied as bytes): at 1.6 us of CPU per pipelined request, a line has a budget of about 0.15 us.

use std::net::IpAddr;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::http::date::{HTTP_DATE_LEN, write_http_date};
use crate::http::{RequestHead, Version};
use crate::{sys, words};

/// Which line format the access log writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// `%h %l %u %t "%r" %>s %b "%{Referer}i" "%{User-agent}i"`, then the duration in seconds with
    /// millisecond resolution (nginx's `$request_time`, GoAccess's `%T`) and the handler in quotes, and
    /// the request id in quotes when the response has one.
    Combined,
    /// One JSON object per line: time, remote_addr, method, target, protocol, status, body_bytes, referer,
    /// user_agent, request_time (seconds), handler, and request_id when the response has one.
    Json,
}

/// What one line says about one answered request.
pub struct Entry<'a> {
    pub peer: IpAddr,
    pub request: Request<'a>,
    pub status: u16,
    /// Body bytes of the response (headers excluded), as `%b`.
    pub body_bytes: u64,
    /// From the request's first byte to its response being queued.
    pub duration: Duration,
    /// Who answered: a plugin's name, `static` or `builtin`.
    pub handler: &'a str,
    /// The response's `X-Request-Id` (set by a filter such as `request-id`), if it has one: appended to a
    /// combined line in quotes, a `request_id` member of a JSON line.
    pub request_id: Option<&'a str>,
}

/// The request a line is about.
#[derive(Clone, Copy)]
pub enum Request<'a> {
    /// A request whose head was read: method, target, protocol, `Referer` and `User-Agent` come from it.
    Parsed(&'a RequestHead<'a>),
    /// A request refused before its head was read whole (400, 408, 414, 431...): its first line as far as
    /// it came, written escaped in place of the request line, as nginx logs such requests (empty: `-`).
    Refused(&'a [u8]),
}

impl Format {
    /// Appends `entry` as one line, newline included, with the second `cache` holds.
    #[inline]
    pub fn write(self, out: &mut Vec<u8>, entry: &Entry<'_>, cache: &mut LineCache) {
        match self {
            Format::Combined => write_combined(out, entry, cache),
            Format::Json => write_json(out, entry, cache),
        }
    }
}

/// A worker's clock and its formatted second (like the `Date` value in `http/date.rs`, formatted once per
/// second per worker), and the start of its last line.
///
/// The clock is the coarse one ([`sys::coarse_monotonic`]): the precise clock cost a third of a line
/// (59 ns a read on this project's VM). Once a second a precise reading is taken beside a coarse one, and
/// a coarse reading plus their difference gives an `Instant` within one kernel tick (1-4 ms) of the truth;
/// durations are written in milliseconds, as nginx's `$request_time` is. Times are UTC (`+0000`), so a
/// line needs no time-zone lookup and reads the same on every host.
pub struct LineCache {
    calibration: Option<Calibration>,
    /// `10/Oct/2000:13:55:36 +0000`, the `%t` of Common Log Format without its brackets.
    clf: [u8; CLF_TIME_LEN],
    /// `2000-10-10T13:55:36+00:00`, like nginx's `$time_iso8601`.
    iso: [u8; ISO_TIME_LEN],
    /// The line's start up to the method (peer and time), as last written: pipelined and keep-alive
    /// requests repeat it, and one copy replaces formatting an address and four more copies.
    prefix: Vec<u8>,
    /// Whose line `prefix` starts and in which format; `None` once the second changed.
    prefix_for: Option<(IpAddr, Format)>,
}

/// A precise and a coarse reading of the monotonic clock taken together, and when the wall-clock second
/// they fell in ends.
#[derive(Clone, Copy)]
struct Calibration {
    precise: Instant,
    coarse: Duration,
    second_ends: Instant,
}

const CLF_TIME_LEN: usize = 26;
const ISO_TIME_LEN: usize = 25;
const MONTHS: [&[u8; 3]; 12] = [
    b"Jan", b"Feb", b"Mar", b"Apr", b"May", b"Jun", b"Jul", b"Aug", b"Sep", b"Oct", b"Nov", b"Dec",
];

impl LineCache {
    pub const fn new() -> LineCache {
        LineCache {
            calibration: None,
            clf: [b'0'; CLF_TIME_LEN],
            iso: [b'0'; ISO_TIME_LEN],
            prefix: Vec::new(),
            prefix_for: None,
        }
    }

    /// The time now, within a kernel tick; reads the precise clocks and reformats the second only when a
    /// second has passed. A wall clock stepped by the administrator shows from the next second on.
    #[inline]
    pub fn now(&mut self) -> Instant {
        if let (Some(calibration), Some(coarse)) = (self.calibration, sys::coarse_monotonic()) {
            let now = calibration.precise + coarse.saturating_sub(calibration.coarse);
            if now < calibration.second_ends {
                return now;
            }
        }
        self.calibrate()
    }

    /// The time from `started` to now, within a kernel tick. A request answered within the tick it started
    /// in (the usual one) costs a comparison, not a subtraction.
    pub fn since(&mut self, started: Instant) -> Duration {
        let now = self.now();
        if now <= started {
            Duration::ZERO
        } else {
            now.duration_since(started)
        }
    }

    #[cold]
    fn calibrate(&mut self) -> Instant {
        let coarse = sys::coarse_monotonic();
        let precise = Instant::now();
        let wall = SystemTime::now();
        let into_second = wall
            .duration_since(UNIX_EPOCH)
            .map_or(Duration::ZERO, |since| {
                Duration::from_nanos(u64::from(since.subsec_nanos()))
            });
        // Without a coarse clock every line calibrates: slower, still right.
        self.calibration = coarse.map(|coarse| Calibration {
            precise,
            coarse,
            second_ends: precise + (Duration::from_secs(1) - into_second),
        });
        self.set_second(wall);
        precise
    }

    /// Formats `wall` (truncated to the second) into both notations.
    fn set_second(&mut self, wall: SystemTime) {
        self.prefix_for = None;
        // `Sun, 06 Nov 1994 08:49:37 GMT`: rearranged, not recomputed, so the calendar lives in one place.
        let mut http = [0u8; HTTP_DATE_LEN];
        write_http_date(&mut http, wall);
        let (day, month, year, time) = (&http[5..7], &http[8..11], &http[12..16], &http[17..25]);
        let month_number = MONTHS.iter().position(|m| m[..] == *month).unwrap_or(0) + 1;
        let month_digits = [
            b'0' + (month_number / 10) as u8,
            b'0' + (month_number % 10) as u8,
        ];
        let mut at = 0;
        for part in [day, b"/", month, b"/", year, b":", time, b" +0000"] {
            self.clf[at..at + part.len()].copy_from_slice(part);
            at += part.len();
        }
        at = 0;
        for part in [year, b"-", &month_digits, b"-", day, b"T", time, b"+00:00"] {
            self.iso[at..at + part.len()].copy_from_slice(part);
            at += part.len();
        }
    }

    /// Appends the start of a line for a request from `ip`: up to the opening quote of the request line
    /// (combined) or of the method (JSON). Formatted again only when the peer or the second changes.
    #[inline]
    fn write_prefix(&mut self, out: &mut Vec<u8>, format: Format, ip: IpAddr) {
        if self.prefix_for != Some((ip, format)) {
            self.format_prefix(format, ip);
        }
        out.extend_from_slice(&self.prefix);
    }

    #[cold]
    fn format_prefix(&mut self, format: Format, ip: IpAddr) {
        let prefix = &mut self.prefix;
        prefix.clear();
        match format {
            Format::Combined => {
                write_ip(prefix, ip);
                prefix.extend_from_slice(b" - - [");
                prefix.extend_from_slice(&self.clf);
                prefix.extend_from_slice(b"] \"");
            }
            Format::Json => {
                prefix.extend_from_slice(b"{\"time\":\"");
                prefix.extend_from_slice(&self.iso);
                prefix.extend_from_slice(b"\",\"remote_addr\":\"");
                write_ip(prefix, ip);
                prefix.extend_from_slice(b"\",\"method\":\"");
            }
        }
        self.prefix_for = Some((ip, format));
    }

    #[cfg(test)]
    pub fn fixed(wall: SystemTime) -> LineCache {
        let mut cache = LineCache::new();
        cache.set_second(wall);
        cache
    }
}

/// The first `Referer` and `User-Agent` fields, found in one pass over the header section.
fn referer_and_agent<'b>(head: &RequestHead<'b>) -> (&'b [u8], &'b [u8]) {
    let (mut referer, mut agent) = (None, None);
    for field in head.headers.iter() {
        if referer.is_none() && field.name.eq_ignore_ascii_case("referer") {
            referer = Some(field.value);
        } else if agent.is_none() && field.name.eq_ignore_ascii_case("user-agent") {
            agent = Some(field.value);
        }
    }
    (referer.unwrap_or_default(), agent.unwrap_or_default())
}

fn protocol(head: &RequestHead<'_>) -> &'static [u8] {
    match head.version {
        Version::Http10 => b"HTTP/1.0",
        Version::Http11 => b"HTTP/1.1",
    }
}

/// The protocol and the end of a combined line's request field, in one append.
fn protocol_closing_quote(head: &RequestHead<'_>) -> &'static [u8] {
    match head.version {
        Version::Http10 => b"HTTP/1.0\" ",
        Version::Http11 => b"HTTP/1.1\" ",
    }
}

/// `127.0.0.1 - - [10/Oct/2000:13:55:36 +0000] "GET /a HTTP/1.1" 200 13 "-" "curl/8" 0.042 "hello"`
///
/// At a few hundred instructions a line, each append counts: constant runs of bytes are appended whole
/// (`HTTP/1.1" `, a status and its space, `"-" "-"` for a request with neither field).
fn write_combined(out: &mut Vec<u8>, entry: &Entry<'_>, cache: &mut LineCache) {
    cache.write_prefix(out, Format::Combined, entry.peer);
    let (referer, agent) = match entry.request {
        Request::Parsed(head) => {
            escape_clf(out, head.method.as_bytes());
            out.push(b' ');
            escape_clf(out, head.target.as_bytes());
            out.push(b' ');
            out.extend_from_slice(protocol_closing_quote(head));
            referer_and_agent(head)
        }
        Request::Refused(line) => {
            write_dash_if_empty(out, line, escape_clf);
            out.extend_from_slice(b"\" ");
            (&b""[..], &b""[..])
        }
    };
    write_status_and_space(out, entry.status);
    // `%b`: a dash, not 0, when no body bytes were sent.
    if entry.body_bytes == 0 {
        out.push(b'-');
    } else {
        write_decimal(out, entry.body_bytes);
    }
    if referer.is_empty() && agent.is_empty() {
        out.extend_from_slice(b" \"-\" \"-\" ");
    } else {
        write_quoted_clf(out, referer);
        write_quoted_clf(out, agent);
        out.push(b' ');
    }
    write_seconds(out, entry.duration);
    out.extend_from_slice(b" \"");
    write_dash_if_empty(out, entry.handler.as_bytes(), escape_clf);
    match entry.request_id {
        None => out.extend_from_slice(b"\"\n"),
        Some(id) => {
            out.push(b'"');
            write_quoted_clf(out, id.as_bytes());
            out.push(b'\n');
        }
    }
}

/// `value` escaped by `escape`, or `-` for an empty value.
fn write_dash_if_empty(out: &mut Vec<u8>, value: &[u8], escape: fn(&mut Vec<u8>, &[u8])) {
    if value.is_empty() {
        out.push(b'-');
    } else {
        escape(out, value);
    }
}

/// ` "value"`, or ` "-"` for an empty or absent value.
#[inline]
fn write_quoted_clf(out: &mut Vec<u8>, value: &[u8]) {
    out.extend_from_slice(b" \"");
    write_dash_if_empty(out, value, escape_clf);
    out.push(b'"');
}

/// `{"time":"2000-10-10T13:55:36+00:00","remote_addr":"127.0.0.1",...,"handler":"hello"}`
fn write_json(out: &mut Vec<u8>, entry: &Entry<'_>, cache: &mut LineCache) {
    cache.write_prefix(out, Format::Json, entry.peer);
    let (method, target, protocol, referer, agent) = match entry.request {
        Request::Parsed(head) => {
            let (referer, agent) = referer_and_agent(head);
            let (method, target) = (head.method.as_bytes(), head.target.as_bytes());
            (method, target, protocol(head), referer, agent)
        }
        Request::Refused(line) => (&b""[..], line, &b""[..], &b""[..], &b""[..]),
    };
    escape_json(out, method);
    out.extend_from_slice(b"\",\"target\":\"");
    escape_json(out, target);
    out.extend_from_slice(b"\",\"protocol\":\"");
    out.extend_from_slice(protocol);
    out.extend_from_slice(b"\",\"status\":");
    write_status(out, entry.status);
    out.extend_from_slice(b",\"body_bytes\":");
    write_decimal(out, entry.body_bytes);
    out.extend_from_slice(b",\"referer\":\"");
    escape_json(out, referer);
    out.extend_from_slice(b"\",\"user_agent\":\"");
    escape_json(out, agent);
    out.extend_from_slice(b"\",\"request_time\":");
    write_seconds(out, entry.duration);
    out.extend_from_slice(b",\"handler\":\"");
    escape_json(out, entry.handler.as_bytes());
    if let Some(id) = entry.request_id {
        out.extend_from_slice(b"\",\"request_id\":\"");
        escape_json(out, id.as_bytes());
    }
    out.extend_from_slice(b"\"}\n");
}

/// The peer's address; an IPv4-mapped IPv6 address (a dual-stack listener) as the IPv4 address it is.
fn write_ip(out: &mut Vec<u8>, ip: IpAddr) {
    match ip.to_canonical() {
        IpAddr::V4(v4) => {
            let [a, b, c, d] = v4.octets();
            write_decimal(out, u64::from(a));
            for octet in [b, c, d] {
                out.push(b'.');
                write_decimal(out, u64::from(octet));
            }
        }
        // Rare enough for `core::fmt`; writing into a Vec cannot fail.
        IpAddr::V6(v6) => {
            let _ = std::io::Write::write_fmt(out, format_args!("{v6}"));
        }
    }
}

/// Seconds with millisecond resolution, as nginx's `$request_time` (`0.004`) and GoAccess's `%T` read them.
fn write_seconds(out: &mut Vec<u8>, duration: Duration) {
    let (seconds, millis) = (duration.as_secs(), duration.subsec_millis());
    let fraction = [
        b'.',
        b'0' + (millis / 100) as u8,
        b'0' + (millis / 10 % 10) as u8,
        b'0' + (millis % 10) as u8,
    ];
    if seconds < 10 {
        // The usual case, in one fixed-size copy.
        let [dot, a, b, c] = fraction;
        out.extend_from_slice(&[b'0' + seconds as u8, dot, a, b, c]);
    } else {
        write_decimal(out, seconds);
        out.extend_from_slice(&fraction);
    }
}

/// A status and the space after it, as one fixed-size copy when it has three digits.
fn write_status_and_space(out: &mut Vec<u8>, status: u16) {
    match status {
        100..=999 => out.extend_from_slice(&[
            b'0' + (status / 100) as u8,
            b'0' + (status / 10 % 10) as u8,
            b'0' + (status % 10) as u8,
            b' ',
        ]),
        _ => {
            write_decimal(out, u64::from(status));
            out.push(b' ');
        }
    }
}

/// A status: three digits (RFC 9110 §15), as one fixed-size copy.
fn write_status(out: &mut Vec<u8>, status: u16) {
    match status {
        100..=999 => out.extend_from_slice(&[
            b'0' + (status / 100) as u8,
            b'0' + (status / 10 % 10) as u8,
            b'0' + (status % 10) as u8,
        ]),
        _ => write_decimal(out, u64::from(status)),
    }
}

/// Two decimal digits for each number below 100: half the divisions of one digit at a time.
const DIGIT_PAIRS: [u8; 200] = digit_pairs();

const fn digit_pairs() -> [u8; 200] {
    let mut pairs = [0u8; 200];
    let mut n = 0;
    while n < 100 {
        pairs[2 * n] = b'0' + (n / 10) as u8;
        pairs[2 * n + 1] = b'0' + (n % 10) as u8;
        n += 1;
    }
    pairs
}

/// The decimal digits of `value`, composed at the start of a fixed-size array appended as one inline copy
/// and then cut to their length (no call to memcpy for a few bytes).
fn write_decimal(out: &mut Vec<u8>, value: u64) {
    // Most numbers in a line are small: a status-sized body, a duration's whole seconds.
    match value {
        0..10 => return out.push(b'0' + value as u8),
        10..100 => return out.extend_from_slice(&DIGIT_PAIRS[2 * value as usize..][..2]),
        _ => {}
    }
    /// Digits in `u64::MAX`.
    const MAX_DIGITS: usize = 20;
    let len = value.checked_ilog10().map_or(1, |log| log as usize + 1);
    let mut digits = [b'0'; MAX_DIGITS];
    let mut at = len;
    let mut rest = value;
    while rest >= 100 {
        let pair = (rest % 100) as usize * 2;
        rest /= 100;
        at -= 2;
        digits[at..at + 2].copy_from_slice(&DIGIT_PAIRS[pair..pair + 2]);
    }
    if rest >= 10 {
        let pair = rest as usize * 2;
        digits[..2].copy_from_slice(&DIGIT_PAIRS[pair..pair + 2]);
    } else {
        digits[0] = b'0' + rest as u8;
    }
    let end = out.len() + len;
    out.extend_from_slice(&digits);
    out.truncate(end);
}

const HEX: &[u8; 16] = b"0123456789ABCDEF";

/// A byte neither format copies as it is: the combined format writes it as `\xHH` (nginx
/// `escape=default`); JSON escapes it, or, above 0x7F, keeps it only inside valid UTF-8.
fn needs_escape(byte: u8) -> bool {
    !(0x20..0x7f).contains(&byte) || byte == b'"' || byte == b'\\'
}

/// Whether some byte of `value` [`needs_escape`]: eight bytes at a time, so the usual value (a path, a
/// user agent) is checked in about two instructions a byte and then copied in one go.
#[inline]
fn any_needs_escape(value: &[u8]) -> bool {
    let (words, rest) = words::words(value);
    let mut any = false;
    for word in words {
        any |= words::has_below(word, 0x20)
            | words::has_above(word, 0x7e)
            | words::has_byte(word, b'"')
            | words::has_byte(word, b'\\');
    }
    any || rest.iter().any(|&b| needs_escape(b))
}

/// Appends `value` with nginx's `escape=default` rules. Inline: the usual value is one check and one copy.
#[inline]
fn escape_clf(out: &mut Vec<u8>, value: &[u8]) {
    if any_needs_escape(value) {
        escape_clf_each(out, value);
    } else {
        out.extend_from_slice(value);
    }
}

/// [`escape_clf`] of a value that needs it, byte by byte.
#[cold]
fn escape_clf_each(out: &mut Vec<u8>, value: &[u8]) {
    for &byte in value {
        if needs_escape(byte) {
            out.extend_from_slice(&[
                b'\\',
                b'x',
                HEX[usize::from(byte >> 4)],
                HEX[usize::from(byte & 15)],
            ]);
        } else {
            out.push(byte);
        }
    }
}

/// Appends `value` as the inside of a JSON string: valid UTF-8 is kept, every other byte is `\u00HH`.
#[inline]
fn escape_json(out: &mut Vec<u8>, value: &[u8]) {
    if any_needs_escape(value) {
        escape_json_each(out, value);
    } else {
        out.extend_from_slice(value);
    }
}

/// [`escape_json`] of a value that needs it, character by character.
#[cold]
fn escape_json_each(out: &mut Vec<u8>, value: &[u8]) {
    for chunk in value.utf8_chunks() {
        for &byte in chunk.valid().as_bytes() {
            match byte {
                b'"' => out.extend_from_slice(b"\\\""),
                b'\\' => out.extend_from_slice(b"\\\\"),
                b'\n' => out.extend_from_slice(b"\\n"),
                b'\r' => out.extend_from_slice(b"\\r"),
                b'\t' => out.extend_from_slice(b"\\t"),
                0x08 => out.extend_from_slice(b"\\b"),
                0x0c => out.extend_from_slice(b"\\f"),
                0..0x20 | 0x7f => write_json_byte(out, byte),
                // Part of a valid multi-byte character, or plain ASCII.
                _ => out.push(byte),
            }
        }
        for &byte in chunk.invalid() {
            write_json_byte(out, byte);
        }
    }
}

fn write_json_byte(out: &mut Vec<u8>, byte: u8) {
    out.extend_from_slice(&[
        b'\\',
        b'u',
        b'0',
        b'0',
        HEX[usize::from(byte >> 4)],
        HEX[usize::from(byte & 15)],
    ]);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::{BodyFraming, Header, Headers};

    /// 2000-10-10 13:55:36 UTC, the example of Apache's documentation.
    fn apache_example_time() -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(971_186_136)
    }

    fn head<'b>(
        method: &'b str,
        target: &'b str,
        fields: &[(&'b str, &'b [u8])],
    ) -> RequestHead<'b> {
        let mut headers = Headers::new();
        for &(name, value) in fields {
            headers.push(Header { name, value });
        }
        RequestHead {
            method,
            target,
            path: target,
            query: None,
            version: Version::Http11,
            headers,
            body: BodyFraming::None,
            keep_alive: true,
            expect_continue: false,
        }
    }

    fn line(format: Format, head: &RequestHead<'_>, handler: &str) -> String {
        let entry = Entry {
            peer: "192.0.2.7".parse().unwrap(),
            request: Request::Parsed(head),
            status: 200,
            body_bytes: 13,
            duration: Duration::from_micros(1_042_999),
            handler,
            request_id: None,
        };
        let mut out = Vec::new();
        format.write(
            &mut out,
            &entry,
            &mut LineCache::fixed(apache_example_time()),
        );
        String::from_utf8(out).expect("every line is UTF-8")
    }

    #[test]
    fn combined_line_has_every_field_in_order() {
        let head = head(
            "GET",
            "/a?b=c",
            &[
                ("Host", b"x"),
                ("User-Agent", b"curl/8.0"),
                ("Referer", b"http://r/"),
            ],
        );
        assert_eq!(
            line(Format::Combined, &head, "hello"),
            "192.0.2.7 - - [10/Oct/2000:13:55:36 +0000] \"GET /a?b=c HTTP/1.1\" 200 13 \
             \"http://r/\" \"curl/8.0\" 1.042 \"hello\"\n"
        );
    }

    #[test]
    fn combined_line_shows_absent_values_and_empty_bodies_as_dashes() {
        let head = head("HEAD", "/", &[("User-Agent", b"")]);
        let entry = Entry {
            peer: "::ffff:10.0.0.1".parse().unwrap(),
            request: Request::Parsed(&head),
            status: 304,
            body_bytes: 0,
            duration: Duration::ZERO,
            handler: "static",
            request_id: None,
        };
        let mut out = Vec::new();
        Format::Combined.write(
            &mut out,
            &entry,
            &mut LineCache::fixed(apache_example_time()),
        );
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "10.0.0.1 - - [10/Oct/2000:13:55:36 +0000] \"HEAD / HTTP/1.1\" 304 - \"-\" \"-\" 0.000 \"static\"\n"
        );
    }

    #[test]
    fn a_request_id_is_the_last_field_of_either_format() {
        let head = head("GET", "/", &[]);
        for (format, ending) in [
            (Format::Combined, " \"static\" \"ab\\x22c\"\n"),
            (
                Format::Json,
                ",\"handler\":\"static\",\"request_id\":\"ab\\\"c\"}\n",
            ),
        ] {
            let entry = Entry {
                peer: "10.0.0.1".parse().unwrap(),
                request: Request::Parsed(&head),
                status: 200,
                body_bytes: 0,
                duration: Duration::ZERO,
                handler: "static",
                request_id: Some("ab\"c"),
            };
            let mut out = Vec::new();
            format.write(
                &mut out,
                &entry,
                &mut LineCache::fixed(apache_example_time()),
            );
            let line = String::from_utf8(out).unwrap();
            assert!(line.ends_with(ending), "{line}");
        }
    }

    #[test]
    fn a_refused_request_is_logged_with_the_line_it_sent() {
        let mut cache = LineCache::fixed(apache_example_time());
        let mut line = |format: Format, sent: &[u8]| {
            let entry = Entry {
                peer: "192.0.2.7".parse().unwrap(),
                request: Request::Refused(sent),
                status: 400,
                body_bytes: 20,
                duration: Duration::ZERO,
                handler: "builtin",
                request_id: None,
            };
            let mut out = Vec::new();
            format.write(&mut out, &entry, &mut cache);
            String::from_utf8(out).unwrap()
        };
        assert_eq!(
            line(Format::Combined, b"\x16\x03\x01 GET\""),
            "192.0.2.7 - - [10/Oct/2000:13:55:36 +0000] \"\\x16\\x03\\x01 GET\\x22\" 400 20 \"-\" \"-\" \
             0.000 \"builtin\"\n"
        );
        assert!(line(Format::Combined, b"").contains("] \"-\" 400 20 \"-\" \"-\" "));
        let json: serde_json::Value =
            serde_json::from_str(&line(Format::Json, b"GET /\r")).unwrap();
        assert_eq!(
            (
                &json["method"],
                &json["target"],
                &json["protocol"],
                &json["status"]
            ),
            (&"".into(), &"GET /\r".into(), &"".into(), &400.into())
        );
    }

    #[test]
    fn json_line_has_every_field() {
        let head = head("POST", "/echo", &[("user-agent", b"ua")]);
        let text = line(Format::Json, &head, "echo");
        assert_eq!(
            text,
            "{\"time\":\"2000-10-10T13:55:36+00:00\",\"remote_addr\":\"192.0.2.7\",\"method\":\"POST\",\
             \"target\":\"/echo\",\"protocol\":\"HTTP/1.1\",\"status\":200,\"body_bytes\":13,\"referer\":\"\",\
             \"user_agent\":\"ua\",\"request_time\":1.042,\"handler\":\"echo\"}\n"
        );
    }

    #[test]
    fn the_cached_peer_changes_with_the_peer() {
        let head = head("GET", "/", &[]);
        let mut cache = LineCache::fixed(apache_example_time());
        let mut out = Vec::new();
        for peer in ["192.0.2.7", "2001:db8::1", "192.0.2.7", "192.0.2.70"] {
            let entry = Entry {
                peer: peer.parse().unwrap(),
                request: Request::Parsed(&head),
                status: 200,
                body_bytes: 1,
                duration: Duration::ZERO,
                handler: "h",
                request_id: None,
            };
            out.clear();
            Format::Combined.write(&mut out, &entry, &mut cache);
            assert!(
                out.starts_with(format!("{peer} - - [10/Oct/2000").as_bytes()),
                "{peer}: {out:?}"
            );
        }
        cache.set_second(apache_example_time() + Duration::from_secs(86_400));
        out.clear();
        let entry = Entry {
            peer: "192.0.2.70".parse().unwrap(),
            request: Request::Parsed(&head),
            status: 200,
            body_bytes: 1,
            duration: Duration::ZERO,
            handler: "h",
            request_id: None,
        };
        Format::Combined.write(&mut out, &entry, &mut cache);
        assert!(out.starts_with(b"192.0.2.70 - - [11/Oct/2000"), "{out:?}");
    }

    #[test]
    fn ipv6_peers_are_written_in_their_usual_notation() {
        let head = head("GET", "/", &[]);
        let entry = Entry {
            peer: "2001:db8::1".parse().unwrap(),
            request: Request::Parsed(&head),
            status: 200,
            body_bytes: 1,
            duration: Duration::ZERO,
            handler: "h",
            request_id: None,
        };
        let mut out = Vec::new();
        Format::Combined.write(
            &mut out,
            &entry,
            &mut LineCache::fixed(apache_example_time()),
        );
        assert!(out.starts_with(b"2001:db8::1 - - ["), "{out:?}");
    }

    /// Values a client controls, each with what the combined and the JSON format must make of it.
    const HOSTILE: &[(&[u8], &str, &str)] = &[
        (b"a\"b", r"a\x22b", r#"a\"b"#),
        (b"a\\b", r"a\x5Cb", r"a\\b"),
        (b"a\nb", r"a\x0Ab", r"a\nb"),
        (b"a\r\nb", r"a\x0D\x0Ab", r"a\r\nb"),
        (b"a\tb", r"a\x09b", r"a\tb"),
        (b"\x00\x1b[31m", r"\x00\x1B[31m", r"\u0000\u001B[31m"),
        (b"\x7f", r"\x7F", r"\u007F"),
        // A valid two-byte character, then bytes that are no UTF-8 at all.
        ("é".as_bytes(), r"\xC3\xA9", "é"),
        (b"\xff\xfe", r"\xFF\xFE", r"\u00FF\u00FE"),
        (b"\xc3(", r"\xC3(", r"\u00C3("),
        // A forged second line, as a log-injection attempt would send it.
        (
            b"x\" 200 1\n1.2.3.4 - - [x] \"GET /admin",
            r"x\x22 200 1\x0A1.2.3.4 - - [x] \x22GET /admin",
            r#"x\" 200 1\n1.2.3.4 - - [x] \"GET /admin"#,
        ),
    ];

    #[test]
    fn hostile_header_values_are_escaped_in_both_formats() {
        for &(value, combined, json) in HOSTILE {
            let head = head("GET", "/", &[("User-Agent", value), ("Referer", value)]);
            let text = line(Format::Combined, &head, "h");
            assert_eq!(text.matches('\n').count(), 1, "{text:?}");
            assert!(
                text.ends_with(&format!(" \"{combined}\" \"{combined}\" 1.042 \"h\"\n")),
                "{text:?}"
            );
            assert!(text.is_ascii(), "{text:?}");
            let text = line(Format::Json, &head, "h");
            assert_eq!(text.matches('\n').count(), 1, "{text:?}");
            assert!(
                text.contains(&format!(
                    "\"referer\":\"{json}\",\"user_agent\":\"{json}\","
                )),
                "{text:?}"
            );
        }
    }

    #[test]
    fn hostile_targets_methods_and_handlers_are_escaped() {
        // The parser refuses most of these in a target; the log must not rely on it.
        for &(value, combined, json) in HOSTILE {
            let Ok(value) = std::str::from_utf8(value) else {
                continue;
            };
            let head = head(value, value, &[]);
            let text = line(Format::Combined, &head, value);
            assert_eq!(
                text,
                format!(
                    "192.0.2.7 - - [10/Oct/2000:13:55:36 +0000] \"{combined} {combined} HTTP/1.1\" 200 13 \
                     \"-\" \"-\" 1.042 \"{combined}\"\n"
                )
            );
            let text = line(Format::Json, &head, value);
            assert!(
                text.contains(&format!("\"method\":\"{json}\",\"target\":\"{json}\",")),
                "{text:?}"
            );
            assert!(
                text.ends_with(&format!("\"handler\":\"{json}\"}}\n")),
                "{text:?}"
            );
        }
    }

    /// Undoes `\xHH` escapes (the combined format escapes the backslash itself, so this is unambiguous).
    fn unescape_clf(field: &str) -> Vec<u8> {
        let bytes = field.as_bytes();
        let mut out = Vec::new();
        let mut at = 0;
        while at < bytes.len() {
            if bytes[at] == b'\\' {
                let hex = std::str::from_utf8(&bytes[at + 2..at + 4]).unwrap();
                out.push(u8::from_str_radix(hex, 16).unwrap());
                at += 4;
            } else {
                out.push(bytes[at]);
                at += 1;
            }
        }
        out
    }

    /// What a JSON reader decodes `value` to: its UTF-8 as it is, every other byte as the code point of
    /// the same number.
    fn json_decoded(value: &[u8]) -> String {
        let mut text = String::new();
        for chunk in value.utf8_chunks() {
            text.push_str(chunk.valid());
            text.extend(chunk.invalid().iter().map(|&b| char::from(b)));
        }
        text
    }

    proptest::proptest! {
        /// Whatever bytes a client sends, a line stays one line, its quoted fields stay closed and give back
        /// the bytes sent, and a JSON line is valid JSON that decodes to them.
        #[test]
        fn any_value_stays_inside_its_field(value in proptest::collection::vec(proptest::num::u8::ANY, 0..64)) {
            let head = head("GET", "/", &[("User-Agent", &value)]);
            let text = line(Format::Combined, &head, "h");
            proptest::prop_assert!(text.ends_with('\n'));
            proptest::prop_assert_eq!(text.matches('\n').count(), 1);
            let fields: Vec<&str> = text.split('"').collect();
            proptest::prop_assert_eq!(fields.len(), 9, "{}", text);
            let expected = if value.is_empty() { b"-".to_vec() } else { value.clone() };
            proptest::prop_assert_eq!(unescape_clf(fields[5]), expected);

            let text = line(Format::Json, &head, "h");
            proptest::prop_assert_eq!(text.matches('\n').count(), 1);
            let parsed: serde_json::Value = serde_json::from_str(&text).unwrap();
            let decoded = json_decoded(&value);
            proptest::prop_assert_eq!(parsed["user_agent"].as_str(), Some(decoded.as_str()));
        }
    }

    #[test]
    fn the_second_is_formatted_in_both_notations() {
        let cache = LineCache::fixed(UNIX_EPOCH + Duration::from_secs(1_709_251_199)); // 2024-02-29 23:59:59
        assert_eq!(&cache.clf, b"29/Feb/2024:23:59:59 +0000");
        assert_eq!(&cache.iso, b"2024-02-29T23:59:59+00:00");
    }

    #[test]
    fn the_coarse_clock_stays_within_a_tick_of_the_precise_one() {
        let mut cache = LineCache::new();
        let started = Instant::now();
        for _ in 0..10_000 {
            let coarse = cache.now();
            let precise = Instant::now();
            // A tick is 1-4 ms; far more would be a wrong calibration, not a slow machine.
            let tolerance = Duration::from_millis(50);
            assert!(coarse <= precise + tolerance && precise <= coarse + tolerance);
            assert!(
                coarse + tolerance >= started,
                "never before the first reading"
            );
        }
    }

    #[test]
    fn durations_are_seconds_with_milliseconds() {
        for (duration, text) in [
            (Duration::ZERO, "0.000"),
            (Duration::from_micros(999), "0.000"),
            (Duration::from_millis(4), "0.004"),
            (Duration::from_millis(61_250), "61.250"),
        ] {
            let mut out = Vec::new();
            write_seconds(&mut out, duration);
            assert_eq!(out, text.as_bytes());
        }
    }
}
