//! One access-log line, formatted straight into a worker's buffer: Combined Log Format (what GoAccess,
//! AWStats and Loki's parsers read) or a JSON object per line.
//!
//! Every value a client controls is escaped so that no input can end a line, close a quoted field or
//! smuggle terminal control sequences into whoever reads the log. The rules are nginx's: `escape=default`
//! for the combined format (`"`, `\`, bytes below 0x20 and above 0x7E become `\xHH`) and `escape=json` for
//! JSON (`\"`, `\\`, `\n` ..., `\u00HH`), except that JSON lines stay valid UTF-8: a byte that is not part of
//! a valid UTF-8 sequence is written as `\u00HH` (the byte's value; nginx would copy it raw).
//!
//! A line is a few hundred instructions of a pipelined request's few thousand, so it is written in one pass
//! with no per-piece capacity check and no call to `memcpy` for the usual line:
//! - **Room first**: the line's longest possible form (every value escaped) is reserved once ([`room`]);
//!   every piece after that is a plain store into that room.
//! - **Values copied eight bytes at a time** and checked for bytes to escape in the same pass
//!   ([`copy_if_plain`], with the word tests of `words.rs`); only a value that holds such a byte is then
//!   rewritten byte by byte.
//! - **Cached text**: the line's start (peer and time) is formatted when the peer or the second changes,
//!   the status comes from a table, numbers are written two digits at a time, and nothing goes through
//!   `core::fmt` or allocates.

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
    /// Writes `entry` as one line, newline included, at `at` in `out`, with the second and the peer's text
    /// `cache` holds; returns where the line ends. Bytes of `out` past `at` are scratch: `out` grows when
    /// the line's longest form would not fit, and what lies past the line's end is left as it was.
    #[inline]
    pub fn write_at(
        self,
        out: &mut Vec<u8>,
        at: usize,
        entry: &Entry<'_>,
        cache: &mut LineCache,
    ) -> usize {
        let headers = match entry.request {
            Request::Parsed(head) => referer_and_agent(head),
            Request::Refused(_) => (&b""[..], &b""[..]),
        };
        let end = at.saturating_add(room(entry, headers));
        if out.len() < end {
            grow(out, end);
        }
        let mut line = Line {
            out: &mut out[at..end],
            at: 0,
        };
        match self {
            Format::Combined => line.combined(entry, headers, cache),
            Format::Json => line.json(entry, headers, cache),
        }
        at + line.at
    }

    /// Appends `entry` as one line to `out`.
    #[cfg(test)]
    pub fn write(self, out: &mut Vec<u8>, entry: &Entry<'_>, cache: &mut LineCache) {
        let end = self.write_at(out, out.len(), entry, cache);
        out.truncate(end);
    }
}

#[cold]
fn grow(out: &mut Vec<u8>, len: usize) {
    out.resize(len, 0);
}

/// Most bytes a value takes once escaped, per byte: JSON's `\u00HH`.
const MAX_ESCAPED: usize = 6;
/// Most bytes of a line that are not values: separators, JSON member names, protocol, numbers.
const MAX_FIXED: usize = 256;
/// Room for a line's cached start: the JSON one with an IPv6 peer is 102 bytes.
const PREFIX_MAX: usize = 128;

/// The longest `entry`'s line can be, every value escaped at its longest.
fn room(entry: &Entry<'_>, (referer, agent): (&[u8], &[u8])) -> usize {
    let request = match entry.request {
        Request::Parsed(head) => head.method.len() + head.target.len(),
        Request::Refused(line) => line.len(),
    };
    let values = request
        + referer.len()
        + agent.len()
        + entry.handler.len()
        + entry.request_id.map_or(0, str::len);
    PREFIX_MAX + MAX_FIXED + MAX_ESCAPED * values
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
    /// The line's start up to the method (peer and time), as last written, in its first `prefix_len`
    /// bytes: pipelined and keep-alive requests repeat it, and one fixed-size copy replaces formatting an
    /// address and four more copies.
    prefix: [u8; PREFIX_MAX],
    prefix_len: usize,
    /// Whose line `prefix` starts and in which format; `None` once the second changed.
    prefix_for: Option<(IpAddr, Format)>,
}

/// A precise and a coarse reading of the monotonic clock taken together, and when the wall-clock second
/// they fell in ends; and the last coarse reading with the time it stands for (the coarse clock moves once
/// a tick, so the lines of a tick share one conversion).
#[derive(Clone, Copy)]
struct Calibration {
    precise: Instant,
    coarse: Duration,
    second_ends: Instant,
    tick: Duration,
    tick_now: Instant,
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
            prefix: [0; PREFIX_MAX],
            prefix_len: 0,
            prefix_for: None,
        }
    }

    /// The time now, within a kernel tick; reads the precise clocks and reformats the second only when a
    /// second has passed. A wall clock stepped by the administrator shows from the next second on.
    #[inline]
    pub fn now(&mut self) -> Instant {
        if let Some(calibration) = &mut self.calibration
            && let Some(coarse) = sys::coarse_monotonic()
        {
            if coarse == calibration.tick {
                return calibration.tick_now;
            }
            let now = calibration.precise + coarse.saturating_sub(calibration.coarse);
            if now < calibration.second_ends {
                calibration.tick = coarse;
                calibration.tick_now = now;
                return now;
            }
        }
        self.calibrate()
    }

    /// The time from `started` to now, within a kernel tick. A request answered within the tick it started
    /// in (the usual one) costs a comparison, not a subtraction.
    #[inline]
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
            tick: coarse,
            tick_now: precise,
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

    /// The start of a line for a request from `ip` (up to the opening quote of the request line, combined,
    /// or of the method, JSON), and its length. Formatted again only when the peer or the second changes.
    #[inline]
    fn prefix(&mut self, format: Format, ip: IpAddr) -> (&[u8; PREFIX_MAX], usize) {
        if self.prefix_for != Some((ip, format)) {
            self.format_prefix(format, ip);
        }
        (&self.prefix, self.prefix_len)
    }

    #[cold]
    fn format_prefix(&mut self, format: Format, ip: IpAddr) {
        let mut prefix = Line {
            out: &mut self.prefix,
            at: 0,
        };
        match format {
            Format::Combined => {
                prefix.ip(ip);
                prefix.put(b" - - [");
                prefix.put(&self.clf);
                prefix.put(b"] \"");
            }
            Format::Json => {
                prefix.put(b"{\"time\":\"");
                prefix.put(&self.iso);
                prefix.put(b"\",\"remote_addr\":\"");
                prefix.ip(ip);
                prefix.put(b"\",\"method\":\"");
            }
        }
        self.prefix_len = prefix.at;
        self.prefix_for = Some((ip, format));
    }

    #[cfg(test)]
    pub fn fixed(wall: SystemTime) -> LineCache {
        let mut cache = LineCache::new();
        cache.set_second(wall);
        cache
    }
}

/// The first `Referer` and `User-Agent` fields, found in one pass over the header section; a name of
/// another length costs one comparison.
fn referer_and_agent<'b>(head: &RequestHead<'b>) -> (&'b [u8], &'b [u8]) {
    let (mut referer, mut agent) = (None, None);
    for field in head.headers.iter() {
        match field.name.len() {
            7 if referer.is_none() && field.name.eq_ignore_ascii_case("referer") => {
                referer = Some(field.value);
            }
            10 if agent.is_none() && field.name.eq_ignore_ascii_case("user-agent") => {
                agent = Some(field.value);
            }
            _ => {}
        }
    }
    (referer.unwrap_or_default(), agent.unwrap_or_default())
}

fn protocol(head: &RequestHead<'_>) -> &'static [u8; 8] {
    match head.version {
        Version::Http10 => b"HTTP/1.0",
        Version::Http11 => b"HTTP/1.1",
    }
}

/// The protocol between the spaces and the quote that surround it in a combined line's request field.
fn spaced_protocol_closing_quote(head: &RequestHead<'_>) -> &'static [u8; 11] {
    match head.version {
        Version::Http10 => b" HTTP/1.0\" ",
        Version::Http11 => b" HTTP/1.1\" ",
    }
}

/// A line being written into room reserved for its longest form: `out[..at]` is written. Every write
/// fits by construction ([`room`]); slicing keeps a mistake in that sum a panic, never a wrong line.
struct Line<'o> {
    out: &'o mut [u8],
    at: usize,
}

impl Line<'_> {
    /// A constant run of bytes, as inline stores.
    #[inline(always)]
    fn put<const N: usize>(&mut self, bytes: &[u8; N]) {
        self.out[self.at..self.at + N].copy_from_slice(bytes);
        self.at += N;
    }

    /// The first `len` bytes of `bytes`, copied as all `N` (the room allows it) in inline stores.
    #[inline(always)]
    fn put_first<const N: usize>(&mut self, bytes: &[u8; N], len: usize) {
        self.out[self.at..self.at + N].copy_from_slice(bytes);
        self.at += len.min(N);
    }

    #[inline(always)]
    fn push(&mut self, byte: u8) {
        self.out[self.at] = byte;
        self.at += 1;
    }

    /// A value a client or a plugin controls, copied as it is when no byte needs escaping, else rewritten
    /// by `escape` (cold).
    #[inline(always)]
    fn value(&mut self, value: &[u8], escape: fn(&mut Self, &[u8])) {
        if copy_if_plain(&mut self.out[self.at..], value) {
            self.at += value.len();
        } else {
            escape(self, value);
        }
    }

    /// [`Line::value`], or `-` for an empty value.
    #[inline(always)]
    fn value_or_dash(&mut self, value: &[u8], escape: fn(&mut Self, &[u8])) {
        if value.is_empty() {
            self.push(b'-');
        } else {
            self.value(value, escape);
        }
    }

    /// ` "value"`, or ` "-"` for an empty or absent value.
    #[inline(always)]
    fn quoted_clf(&mut self, value: &[u8]) {
        self.put(b" \"");
        self.value_or_dash(value, Line::escape_clf);
        self.push(b'"');
    }

    /// `127.0.0.1 - - [10/Oct/2000:13:55:36 +0000] "GET /a HTTP/1.1" 200 13 "-" "curl/8" 0.042 "hello"`
    fn combined(
        &mut self,
        entry: &Entry<'_>,
        (referer, agent): (&[u8], &[u8]),
        cache: &mut LineCache,
    ) {
        let (prefix, prefix_len) = cache.prefix(Format::Combined, entry.peer);
        self.put_first(prefix, prefix_len);
        match entry.request {
            Request::Parsed(head) => {
                self.value(head.method.as_bytes(), Line::escape_clf);
                self.push(b' ');
                self.value(head.target.as_bytes(), Line::escape_clf);
                self.put(spaced_protocol_closing_quote(head));
            }
            Request::Refused(line) => {
                self.value_or_dash(line, Line::escape_clf);
                self.put(b"\" ");
            }
        }
        self.status(entry.status, b' ');
        // `%b`: a dash, not 0, when no body bytes were sent.
        if entry.body_bytes == 0 {
            self.push(b'-');
        } else {
            self.decimal(entry.body_bytes);
        }
        if referer.is_empty() && agent.is_empty() {
            self.put(b" \"-\" \"-\" ");
        } else {
            self.quoted_clf(referer);
            self.quoted_clf(agent);
            self.push(b' ');
        }
        self.seconds(entry.duration);
        self.put(b" \"");
        self.value_or_dash(entry.handler.as_bytes(), Line::escape_clf);
        match entry.request_id {
            None => self.put(b"\"\n"),
            Some(id) => {
                self.push(b'"');
                self.quoted_clf(id.as_bytes());
                self.push(b'\n');
            }
        }
    }

    /// `{"time":"2000-10-10T13:55:36+00:00","remote_addr":"127.0.0.1",...,"handler":"hello"}`
    fn json(&mut self, entry: &Entry<'_>, (referer, agent): (&[u8], &[u8]), cache: &mut LineCache) {
        let (prefix, prefix_len) = cache.prefix(Format::Json, entry.peer);
        self.put_first(prefix, prefix_len);
        let (method, target) = match entry.request {
            Request::Parsed(head) => (head.method.as_bytes(), head.target.as_bytes()),
            Request::Refused(line) => (&b""[..], line),
        };
        self.value(method, Line::escape_json);
        self.put(b"\",\"target\":\"");
        self.value(target, Line::escape_json);
        self.put(b"\",\"protocol\":\"");
        if let Request::Parsed(head) = entry.request {
            self.put(protocol(head));
        }
        self.put(b"\",\"status\":");
        self.status(entry.status, b',');
        self.put(b"\"body_bytes\":");
        self.decimal(entry.body_bytes);
        self.put(b",\"referer\":\"");
        self.value(referer, Line::escape_json);
        self.put(b"\",\"user_agent\":\"");
        self.value(agent, Line::escape_json);
        self.put(b"\",\"request_time\":");
        self.seconds(entry.duration);
        self.put(b",\"handler\":\"");
        self.value(entry.handler.as_bytes(), Line::escape_json);
        if let Some(id) = entry.request_id {
            self.put(b"\",\"request_id\":\"");
            self.value(id.as_bytes(), Line::escape_json);
        }
        self.put(b"\"}\n");
    }

    /// The peer's address; an IPv4-mapped IPv6 address (a dual-stack listener) as the IPv4 address it is.
    fn ip(&mut self, ip: IpAddr) {
        match ip.to_canonical() {
            IpAddr::V4(v4) => {
                let [a, b, c, d] = v4.octets();
                self.decimal(u64::from(a));
                for octet in [b, c, d] {
                    self.push(b'.');
                    self.decimal(u64::from(octet));
                }
            }
            // Rare enough for `core::fmt`; at most 39 bytes.
            IpAddr::V6(v6) => {
                let text = v6.to_string();
                let end = self.at + text.len();
                self.out[self.at..end].copy_from_slice(text.as_bytes());
                self.at = end;
            }
        }
    }

    /// Seconds with millisecond resolution, as nginx's `$request_time` (`0.004`) and GoAccess's `%T` read
    /// them.
    #[inline(always)]
    fn seconds(&mut self, duration: Duration) {
        if duration < Duration::from_millis(1) {
            // The usual request, answered within the clock's tick.
            return self.put(b"0.000");
        }
        self.seconds_and_millis(duration);
    }

    fn seconds_and_millis(&mut self, duration: Duration) {
        let (seconds, millis) = (duration.as_secs(), duration.subsec_millis() as usize);
        let (tens_units, hundreds) = (millis % 100 * 2, millis / 100);
        let fraction = [
            b'.',
            b'0' + hundreds as u8,
            DIGIT_PAIRS[tens_units],
            DIGIT_PAIRS[tens_units + 1],
        ];
        if seconds < 10 {
            // The usual case, in one fixed-size store.
            let [dot, a, b, c] = fraction;
            self.put(&[b'0' + seconds as u8, dot, a, b, c]);
        } else {
            self.decimal(seconds);
            self.put(&fraction);
        }
    }

    /// A status and the byte after it, as one fixed-size store when it has three digits (RFC 9110 §15).
    #[inline(always)]
    fn status(&mut self, status: u16, then: u8) {
        match STATUS_DIGITS.get(usize::from(status).wrapping_sub(100)) {
            Some(&[a, b, c]) => self.put(&[a, b, c, then]),
            None => {
                self.decimal(u64::from(status));
                self.push(then);
            }
        }
    }

    /// The decimal digits of `value`: composed in a fixed-size array copied as a whole (the room allows
    /// it), two digits at a time.
    fn decimal(&mut self, value: u64) {
        // Most numbers in a line are small: a status-sized body, a duration's whole seconds.
        if value < 10 {
            return self.push(b'0' + value as u8);
        }
        if value < 100 {
            let pair = value as usize * 2;
            return self.put(&[DIGIT_PAIRS[pair], DIGIT_PAIRS[pair + 1]]);
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
        self.put_first(&digits, len);
    }

    /// `value` with nginx's `escape=default` rules, byte by byte: for a value that needs it.
    #[cold]
    fn escape_clf(&mut self, value: &[u8]) {
        for &byte in value {
            if needs_escape(byte) {
                self.put(&[
                    b'\\',
                    b'x',
                    HEX[usize::from(byte >> 4)],
                    HEX[usize::from(byte & 15)],
                ]);
            } else {
                self.push(byte);
            }
        }
    }

    /// `value` as the inside of a JSON string, character by character: valid UTF-8 is kept, every other
    /// byte is `\u00HH`. For a value that needs it.
    #[cold]
    fn escape_json(&mut self, value: &[u8]) {
        for chunk in value.utf8_chunks() {
            for &byte in chunk.valid().as_bytes() {
                match byte {
                    b'"' => self.put(b"\\\""),
                    b'\\' => self.put(b"\\\\"),
                    b'\n' => self.put(b"\\n"),
                    b'\r' => self.put(b"\\r"),
                    b'\t' => self.put(b"\\t"),
                    0x08 => self.put(b"\\b"),
                    0x0c => self.put(b"\\f"),
                    0..0x20 | 0x7f => self.json_byte(byte),
                    // Part of a valid multi-byte character, or plain ASCII.
                    _ => self.push(byte),
                }
            }
            for &byte in chunk.invalid() {
                self.json_byte(byte);
            }
        }
    }

    fn json_byte(&mut self, byte: u8) {
        self.put(&[
            b'\\',
            b'u',
            b'0',
            b'0',
            HEX[usize::from(byte >> 4)],
            HEX[usize::from(byte & 15)],
        ]);
    }
}

/// The three digits of each status from 100 to 999, by `status - 100`.
const STATUS_DIGITS: [[u8; 3]; 900] = status_digits();

const fn status_digits() -> [[u8; 3]; 900] {
    let mut table = [[0u8; 3]; 900];
    let mut n = 0;
    while n < 900 {
        let status = n + 100;
        table[n] = [
            b'0' + (status / 100) as u8,
            b'0' + (status / 10 % 10) as u8,
            b'0' + (status % 10) as u8,
        ];
        n += 1;
    }
    table
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

const HEX: &[u8; 16] = b"0123456789ABCDEF";

/// A byte neither format copies as it is: the combined format writes it as `\xHH` (nginx
/// `escape=default`); JSON escapes it, or, above 0x7F, keeps it only inside valid UTF-8.
fn needs_escape(byte: u8) -> bool {
    !(0x20..0x7f).contains(&byte) || byte == b'"' || byte == b'\\'
}

/// Whether some byte of `word` [`needs_escape`] (exact: see `words.rs`).
#[inline(always)]
fn word_needs_escape(word: u64) -> bool {
    words::has_outside(word, 0x20, 0x7e)
        | words::has_byte(word, b'"')
        | words::has_byte(word, b'\\')
}

/// Copies `value` to the start of `out` and says whether none of its bytes [`needs_escape`]: eight bytes at
/// a time, a shorter value or the end of a longer one as words that overlap (each byte is looked at, some
/// twice), with no call to `memcpy`. When it returns `false` the copy is to be overwritten.
#[inline(always)]
fn copy_if_plain(out: &mut [u8], value: &[u8]) -> bool {
    let len = value.len();
    let out = &mut out[..len];
    if len >= 8 {
        let mut special = false;
        let mut at = 0;
        while at + 8 < len {
            let word = words::load(value, at);
            special |= word_needs_escape(word);
            words::store(out, at, word);
            at += 8;
        }
        let last = words::load(value, len - 8);
        words::store(out, len - 8, last);
        !(special | word_needs_escape(last))
    } else if len >= 4 {
        let (low, high) = (words::load4(value, 0), words::load4(value, len - 4));
        words::store4(out, 0, low);
        words::store4(out, len - 4, high);
        !word_needs_escape(u64::from(low) | u64::from(high) << 32)
    } else if len > 0 {
        let (first, middle, last) = (value[0], value[len / 2], value[len - 1]);
        out[0] = first;
        out[len / 2] = middle;
        out[len - 1] = last;
        !word_needs_escape(u64::from_le_bytes([
            first, middle, last, b'a', b'a', b'a', b'a', b'a',
        ]))
    } else {
        true
    }
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

    proptest::proptest! {
        /// The word-at-a-time copy agrees with the byte rule at every length, overlapping words included.
        #[test]
        fn copy_if_plain_copies_and_finds_every_byte_to_escape(
            value in proptest::collection::vec(proptest::num::u8::ANY, 0..40),
            plain in proptest::collection::vec(0x20u8..0x7f, 0..40),
        ) {
            for value in [value, plain] {
                let mut out = [0u8; 40];
                let copied = copy_if_plain(&mut out, &value);
                proptest::prop_assert_eq!(copied, !value.iter().any(|&b| needs_escape(b)));
                if copied {
                    proptest::prop_assert_eq!(&out[..value.len()], &value[..]);
                }
            }
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
            let mut out = [0; MAX_FIXED];
            let mut line = Line {
                out: &mut out,
                at: 0,
            };
            line.seconds(duration);
            let end = line.at;
            assert_eq!(&out[..end], text.as_bytes());
        }
    }
}
