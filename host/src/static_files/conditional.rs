//! Validators (`ETag`, `Last-Modified`) and the conditional requests built on them (RFC 9110 §8.8, §13).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::http::RequestHead;
use crate::http::date::{format_http_date, parse_http_date};

/// The validators of one representation of a file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Validators {
    /// A strong entity-tag, quotes included: `"<size hex>-<mtime ns hex>"`, plus `-<coding>` for a
    /// precompressed sidecar so every representation has its own tag (RFC 9110 §8.8.3).
    etag: String,
    /// The modification time in whole seconds (HTTP-dates have no finer resolution), never in the future.
    last_modified: SystemTime,
}

impl Validators {
    /// Validators for a representation of `size` bytes modified at `modified`, read at `now`.
    /// `coding` names the content coding of a precompressed representation (`gzip`, `br`).
    pub fn new(
        size: u64,
        modified: SystemTime,
        now: SystemTime,
        coding: Option<&str>,
    ) -> Validators {
        let nanos = modified
            .duration_since(UNIX_EPOCH)
            .map_or(0, |since| since.as_nanos());
        let etag = match coding {
            Some(coding) => format!("\"{size:x}-{nanos:x}-{coding}\""),
            None => format!("\"{size:x}-{nanos:x}\""),
        };
        // RFC 9110 §8.8.2.1: a modification time in the future is replaced by the time of the response.
        Validators {
            etag,
            last_modified: whole_seconds(modified.min(now)),
        }
    }

    /// The `ETag` field value.
    pub fn etag(&self) -> &str {
        &self.etag
    }

    /// The `Last-Modified` field value.
    pub fn last_modified(&self) -> String {
        format_http_date(self.last_modified)
    }
}

/// The result of evaluating a request's preconditions (RFC 9110 §13.2.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Precondition {
    /// Answer normally (Range may still apply).
    Proceed,
    /// 304: the client's copy is current.
    NotModified,
    /// 412: an `If-Match` or `If-Unmodified-Since` condition is false.
    Failed,
}

/// Evaluates `If-Match`, `If-Unmodified-Since`, `If-None-Match` and `If-Modified-Since` in the order and
/// with the precedence RFC 9110 §13.2.2 prescribes. A field that does not parse is ignored, as RFC 9110
/// §13.1.3 requires of invalid dates.
pub fn evaluate(head: &RequestHead<'_>, validators: &Validators) -> Precondition {
    let safe_method = head.method == "GET" || head.method == "HEAD";
    // Step 1, and step 2 only without If-Match.
    if let Some(list) = parse_list(head.field_values("If-Match")) {
        if !list.matches(&validators.etag, Comparison::Strong) {
            return Precondition::Failed;
        }
    } else if let Some(date) = single_date(head, "If-Unmodified-Since") {
        if validators.last_modified > date {
            return Precondition::Failed;
        }
    }
    // Step 3, and step 4 only without If-None-Match.
    if let Some(list) = parse_list(head.field_values("If-None-Match")) {
        // RFC 9110 §13.1.2: If-None-Match uses the weak comparison.
        if list.matches(&validators.etag, Comparison::Weak) {
            return if safe_method {
                Precondition::NotModified
            } else {
                Precondition::Failed
            };
        }
    } else if safe_method {
        if let Some(date) = single_date(head, "If-Modified-Since") {
            if validators.last_modified <= date {
                return Precondition::NotModified;
            }
        }
    }
    Precondition::Proceed
}

/// Whether an `If-Range` value (RFC 9110 §13.1.5) still matches, so the Range applies; otherwise the whole
/// representation is sent. An entity-tag must match strongly (a weak tag never does); a date must equal
/// `Last-Modified` exactly. Anything unparsable does not match.
pub fn if_range_matches(value: &[u8], validators: &Validators) -> bool {
    // "A valid entity-tag can be distinguished from a valid HTTP-date by examining the first three
    // characters for a DQUOTE."
    if value.iter().take(3).any(|&b| b == b'"') {
        let mut rest = value;
        match parse_entity_tag(&mut rest) {
            Some(tag) if rest.is_empty() => {
                EtagList::Tags(vec![tag]).matches(&validators.etag, Comparison::Strong)
            }
            _ => false,
        }
    } else {
        parse_http_date(value) == Some(validators.last_modified)
    }
}

/// The one valid HTTP-date in the field `name`, if there is exactly one such field and it parses.
fn single_date(head: &RequestHead<'_>, name: &str) -> Option<SystemTime> {
    let mut values = head.field_values(name);
    match (values.next(), values.next()) {
        (Some(value), None) => parse_http_date(value),
        _ => None,
    }
}

fn whole_seconds(time: SystemTime) -> SystemTime {
    match time.duration_since(UNIX_EPOCH) {
        Ok(since) => UNIX_EPOCH + Duration::from_secs(since.as_secs()),
        Err(_) => time,
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Comparison {
    /// Both tags strong and their opaque parts equal.
    Strong,
    /// Opaque parts equal, either may be weak.
    Weak,
}

/// An `If-Match` / `If-None-Match` field value.
#[derive(Debug, PartialEq, Eq)]
enum EtagList<'a> {
    /// `*`: any current representation.
    Any,
    Tags(Vec<EntityTag<'a>>),
}

#[derive(Debug, PartialEq, Eq)]
struct EntityTag<'a> {
    weak: bool,
    /// The opaque-tag, quotes included.
    opaque: &'a [u8],
}

impl EtagList<'_> {
    /// Whether the list matches `ours`, one of our (always strong) tags.
    fn matches(&self, ours: &str, comparison: Comparison) -> bool {
        match self {
            EtagList::Any => true,
            EtagList::Tags(tags) => tags.iter().any(|tag| {
                tag.opaque == ours.as_bytes() && (comparison == Comparison::Weak || !tag.weak)
            }),
        }
    }
}

/// Parses every field line of an `If-Match` or `If-None-Match` into one list: `*`, or `1#entity-tag`
/// (RFC 9110 §13.1.1), empty elements allowed. `None` when absent or malformed.
fn parse_list<'a>(values: impl Iterator<Item = &'a [u8]>) -> Option<EtagList<'a>> {
    let mut tags = Vec::new();
    let mut any = false;
    for value in values {
        let mut rest = trim_ows(value);
        if rest == b"*" {
            any = true;
            continue;
        }
        loop {
            rest = skip_ows(rest);
            match rest.first() {
                None => break,
                Some(b',') => rest = &rest[1..],
                Some(_) => {
                    tags.push(parse_entity_tag(&mut rest)?);
                    rest = skip_ows(rest);
                    match rest.first() {
                        None | Some(b',') => {}
                        Some(_) => return None,
                    }
                }
            }
        }
    }
    match (any, tags.is_empty()) {
        (true, true) => Some(EtagList::Any),
        (false, false) => Some(EtagList::Tags(tags)),
        // `*` mixed with tags, or nothing at all.
        _ => None,
    }
}

/// `[ "W/" ] DQUOTE *etagc DQUOTE` at the start of `input`, which is advanced past it.
fn parse_entity_tag<'a>(input: &mut &'a [u8]) -> Option<EntityTag<'a>> {
    let (weak, tag) = match input.strip_prefix(b"W/") {
        Some(tag) => (true, tag),
        None => (false, *input),
    };
    if tag.first() != Some(&b'"') {
        return None;
    }
    // etagc = %x21 / %x23-7E / obs-text
    let closing = 1 + tag[1..]
        .iter()
        .position(|&b| b == b'"' || !(b == 0x21 || b >= 0x23) || b == 0x7f)?;
    if tag[closing] != b'"' {
        return None;
    }
    *input = &tag[closing + 1..];
    Some(EntityTag {
        weak,
        opaque: &tag[..=closing],
    })
}

fn skip_ows(input: &[u8]) -> &[u8] {
    let start = input
        .iter()
        .position(|&b| b != b' ' && b != b'\t')
        .unwrap_or(input.len());
    &input[start..]
}

fn trim_ows(input: &[u8]) -> &[u8] {
    let input = skip_ows(input);
    let end = input
        .iter()
        .rposition(|&b| b != b' ' && b != b'\t')
        .map_or(0, |i| i + 1);
    &input[..end]
}

#[cfg(test)]
mod tests {
    use super::Precondition::{Failed, NotModified, Proceed};
    use super::*;
    use crate::static_files::test_support::head;

    const MODIFIED: u64 = 784_111_777; // Sun, 06 Nov 1994 08:49:37 GMT
    const AT: &str = "Sun, 06 Nov 1994 08:49:37 GMT";
    const BEFORE: &str = "Sun, 06 Nov 1994 08:49:36 GMT";
    const AFTER: &str = "Sun, 06 Nov 1994 08:49:38 GMT";

    fn validators() -> Validators {
        // 500 ms past the second: HTTP-date comparisons must use whole seconds.
        let modified = UNIX_EPOCH + Duration::from_millis(MODIFIED * 1000 + 500);
        Validators::new(0x1234, modified, SystemTime::now(), None)
    }

    fn ours() -> String {
        validators().etag().to_owned()
    }

    #[test]
    fn etag_is_strong_and_derived_from_size_and_mtime_nanoseconds() {
        let v = validators();
        let nanos = u128::from(MODIFIED) * 1_000_000_000 + 500_000_000;
        assert_eq!(v.etag(), format!("\"1234-{nanos:x}\""));
        assert_eq!(v.last_modified(), AT);
        let gz = Validators::new(0x1234, UNIX_EPOCH, UNIX_EPOCH, Some("gzip"));
        assert_eq!(gz.etag(), "\"1234-0-gzip\"");
        // A different size or mtime gives a different tag.
        assert_ne!(
            Validators::new(1, UNIX_EPOCH, UNIX_EPOCH, None).etag(),
            "\"1234-0\""
        );
        let later = UNIX_EPOCH + Duration::from_nanos(1);
        assert_ne!(
            Validators::new(1, later, later, None).etag(),
            Validators::new(1, UNIX_EPOCH, later, None).etag()
        );
    }

    #[test]
    fn future_modification_times_are_reported_as_now() {
        let now = UNIX_EPOCH + Duration::from_secs(MODIFIED);
        let future = now + Duration::from_secs(3600);
        assert_eq!(Validators::new(1, future, now, None).last_modified(), AT);
    }

    #[test]
    fn precedence_table() {
        let ours = ours();
        let weak_ours = format!("W/{ours}");
        let list_with_ours = format!("\"a\", {ours} ,\"b\"");
        // (method, request fields, expected)
        type Row<'a> = (&'a str, Vec<(&'a str, &'a str)>, Precondition);
        let table: Vec<Row<'_>> = vec![
            ("GET", vec![], Proceed),
            // If-None-Match: weak comparison, lists, `*`.
            ("GET", vec![("If-None-Match", &ours)], NotModified),
            ("HEAD", vec![("If-None-Match", &ours)], NotModified),
            ("GET", vec![("If-None-Match", &weak_ours)], NotModified),
            ("GET", vec![("If-None-Match", &list_with_ours)], NotModified),
            ("GET", vec![("If-None-Match", "*")], NotModified),
            ("GET", vec![("If-None-Match", "\"other\"")], Proceed),
            (
                "GET",
                vec![("If-None-Match", "\"a\""), ("if-none-match", &ours)],
                NotModified,
            ),
            // If-Modified-Since: the file is not newer than the date.
            ("GET", vec![("If-Modified-Since", AT)], NotModified),
            ("GET", vec![("If-Modified-Since", AFTER)], NotModified),
            ("GET", vec![("If-Modified-Since", BEFORE)], Proceed),
            ("GET", vec![("If-Modified-Since", "yesterday")], Proceed),
            (
                "GET",
                vec![("If-Modified-Since", AT), ("If-Modified-Since", AT)],
                Proceed,
            ),
            // If-None-Match takes precedence over If-Modified-Since, both ways.
            (
                "GET",
                vec![("If-None-Match", "\"other\""), ("If-Modified-Since", AFTER)],
                Proceed,
            ),
            (
                "GET",
                vec![("If-None-Match", &ours), ("If-Modified-Since", BEFORE)],
                NotModified,
            ),
            // A malformed If-None-Match is ignored, so If-Modified-Since decides.
            (
                "GET",
                vec![("If-None-Match", "unquoted"), ("If-Modified-Since", AT)],
                NotModified,
            ),
            // If-Match: strong comparison, before everything else.
            ("GET", vec![("If-Match", &ours)], Proceed),
            ("GET", vec![("If-Match", "*")], Proceed),
            ("GET", vec![("If-Match", &weak_ours)], Failed),
            ("GET", vec![("If-Match", "\"other\"")], Failed),
            (
                "GET",
                vec![("If-Match", "\"other\""), ("If-None-Match", &ours)],
                Failed,
            ),
            (
                "GET",
                vec![("If-Match", &ours), ("If-None-Match", &ours)],
                NotModified,
            ),
            // If-Unmodified-Since only without If-Match.
            ("GET", vec![("If-Unmodified-Since", BEFORE)], Failed),
            ("GET", vec![("If-Unmodified-Since", AT)], Proceed),
            ("GET", vec![("If-Unmodified-Since", "garbage")], Proceed),
            (
                "GET",
                vec![("If-Match", &ours), ("If-Unmodified-Since", BEFORE)],
                Proceed,
            ),
            // Unsafe methods: a matching If-None-Match is 412, If-Modified-Since does not apply.
            ("POST", vec![("If-None-Match", &ours)], Failed),
            ("POST", vec![("If-Modified-Since", AT)], Proceed),
        ];
        for (method, headers, expected) in table {
            let head = head(method, &headers);
            assert_eq!(
                evaluate(&head, &validators()),
                expected,
                "{method} {headers:?}"
            );
        }
    }

    #[test]
    fn if_range_needs_a_strong_tag_or_the_exact_date() {
        let v = validators();
        let ours = ours();
        assert!(if_range_matches(ours.as_bytes(), &v));
        assert!(if_range_matches(AT.as_bytes(), &v));
        assert!(!if_range_matches(format!("W/{ours}").as_bytes(), &v));
        assert!(!if_range_matches(b"\"other\"", &v));
        assert!(!if_range_matches(format!("{ours}, {ours}").as_bytes(), &v));
        assert!(!if_range_matches(AFTER.as_bytes(), &v));
        assert!(!if_range_matches(BEFORE.as_bytes(), &v));
        assert!(!if_range_matches(b"", &v));
        assert!(!if_range_matches(b"garbage", &v));
    }

    #[test]
    fn entity_tag_lists_parse_per_rfc_9110() {
        let parse = |values: &[&'static str]| parse_list(values.iter().map(|v| v.as_bytes()));
        let tag = |weak, opaque: &'static str| EntityTag {
            weak,
            opaque: opaque.as_bytes(),
        };
        assert_eq!(parse(&["*"]), Some(EtagList::Any));
        assert_eq!(parse(&[" * "]), Some(EtagList::Any));
        assert_eq!(
            parse(&["\"a\",W/\"b\" , ,\"\""]),
            Some(EtagList::Tags(vec![
                tag(false, "\"a\""),
                tag(true, "\"b\""),
                tag(false, "\"\"")
            ]))
        );
        assert_eq!(
            parse(&["\"a,b\""]),
            Some(EtagList::Tags(vec![tag(false, "\"a,b\"")]))
        );
        for bad in [
            &[][..],
            &[""],
            &["a"],
            &["\"a"],
            &["\"a\"b"],
            &["\"a\" \"b\""],
            &["w/\"a\""],
            &["W/ \"a\""],
            &["\"a b\""],
            &["*, \"a\""],
            &["*", "\"a\""],
            &["**"],
        ] {
            assert_eq!(parse(bad), None, "{bad:?}");
        }
    }
}
