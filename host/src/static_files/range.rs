//! `Range: bytes=...` (RFC 9110 §14.1.2, §14.2): which part of a file to send.
//!
//! One range is served as 206. A request for several ranges gets the whole file as 200, which RFC 9110
//! §14.2 allows ("a server MAY ignore the Range header field") and which spares us multipart/byteranges.

/// What to send for a request's `Range` field, given the representation's size.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RangeOutcome {
    /// Send everything with 200: no Range, an invalid one, another unit, or several ranges.
    Full,
    /// Send bytes `first..=last` with 206.
    Partial { first: u64, last: u64 },
    /// 416 with `Content-Range: bytes */SIZE` (RFC 9110 §15.5.17).
    Unsatisfiable,
}

/// One `byte-range-spec` or `suffix-range` as written, before the size is known.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum RangeSpec {
    /// `first-last` or `first-` (`last` absent means to the end).
    From { first: u64, last: Option<u64> },
    /// `-length`: the last `length` bytes.
    Suffix { length: u64 },
}

/// Decides what to send for the `Range` field value `value` of a representation of `size` bytes.
pub fn evaluate(value: &[u8], size: u64) -> RangeOutcome {
    let mut specs = match parse(value) {
        Some(specs) => specs,
        // RFC 9110 §14.2: an invalid or unsupported Range is ignored.
        None => return RangeOutcome::Full,
    };
    match (specs.next(), specs.next()) {
        (Some(spec), None) => resolve(spec, size),
        _ => RangeOutcome::Full,
    }
}

/// Parses `bytes=<range-set>` (the unit is case-insensitive, RFC 9110 §14.1). `None` if the field is not
/// a valid byte ranges-specifier; otherwise the non-empty list of specs (empty list elements are skipped,
/// RFC 9110 §5.6.1.2).
fn parse(value: &[u8]) -> Option<impl Iterator<Item = RangeSpec>> {
    let value = std::str::from_utf8(value).ok()?;
    let (unit, set) = value.split_once('=')?;
    if !unit.eq_ignore_ascii_case("bytes") {
        return None;
    }
    let specs = set
        .split(',')
        .map(|element| element.trim_matches([' ', '\t']))
        .filter(|element| !element.is_empty())
        .map(parse_spec)
        .collect::<Option<Vec<_>>>()?;
    if specs.is_empty() {
        return None;
    }
    Some(specs.into_iter())
}

/// `first-last`, `first-` or `-length`.
fn parse_spec(spec: &str) -> Option<RangeSpec> {
    let (first, last) = spec.split_once('-')?;
    if first.is_empty() {
        return Some(RangeSpec::Suffix {
            length: number(last)?,
        });
    }
    let first = number(first)?;
    let last = if last.is_empty() {
        None
    } else {
        Some(number(last)?)
    };
    // RFC 9110 §14.1.1: a last-pos below first-pos makes the spec invalid.
    if last.is_some_and(|last| last < first) {
        return None;
    }
    Some(RangeSpec::From { first, last })
}

/// `1*DIGIT`. Values past u64 saturate: they are beyond any file, which is what they mean.
fn number(digits: &str) -> Option<u64> {
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(digits.bytes().fold(0u64, |n, d| {
        n.saturating_mul(10).saturating_add(u64::from(d - b'0'))
    }))
}

/// Applies a spec to a representation of `size` bytes (RFC 9110 §14.1.2, §14.1.3).
fn resolve(spec: RangeSpec, size: u64) -> RangeOutcome {
    match spec {
        // A first-pos at or past the end, or any range of an empty file, selects nothing.
        RangeSpec::From { first, .. } if first >= size => RangeOutcome::Unsatisfiable,
        RangeSpec::From { first, last } => RangeOutcome::Partial {
            first,
            // A last-pos past the end means the end.
            last: last.map_or(size - 1, |last| last.min(size - 1)),
        },
        // `-0` selects nothing; so does any suffix of an empty file.
        RangeSpec::Suffix { length } if length == 0 || size == 0 => RangeOutcome::Unsatisfiable,
        // A suffix longer than the file means the whole file (still a 206).
        RangeSpec::Suffix { length } => RangeOutcome::Partial {
            first: size.saturating_sub(length),
            last: size - 1,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::RangeOutcome::{Full, Partial, Unsatisfiable};
    use super::*;

    #[test]
    fn range_table() {
        const SIZE: u64 = 1000;
        let table: &[(&str, RangeOutcome)] = &[
            (
                "bytes=0-499",
                Partial {
                    first: 0,
                    last: 499,
                },
            ),
            (
                "bytes=500-999",
                Partial {
                    first: 500,
                    last: 999,
                },
            ),
            ("bytes=0-0", Partial { first: 0, last: 0 }),
            (
                "bytes=999-999",
                Partial {
                    first: 999,
                    last: 999,
                },
            ),
            (
                "bytes=500-",
                Partial {
                    first: 500,
                    last: 999,
                },
            ),
            (
                "bytes=0-",
                Partial {
                    first: 0,
                    last: 999,
                },
            ),
            (
                "bytes=-1",
                Partial {
                    first: 999,
                    last: 999,
                },
            ),
            (
                "bytes=-500",
                Partial {
                    first: 500,
                    last: 999,
                },
            ),
            // Clamped to the end.
            (
                "bytes=900-5000",
                Partial {
                    first: 900,
                    last: 999,
                },
            ),
            (
                "bytes=0-99999999999999999999999",
                Partial {
                    first: 0,
                    last: 999,
                },
            ),
            (
                "bytes=-5000",
                Partial {
                    first: 0,
                    last: 999,
                },
            ),
            (
                "bytes=-99999999999999999999999",
                Partial {
                    first: 0,
                    last: 999,
                },
            ),
            // Unit case, surrounding whitespace and empty list elements are tolerated.
            ("BYTES=1-2", Partial { first: 1, last: 2 }),
            ("Bytes=1-2", Partial { first: 1, last: 2 }),
            ("bytes= 1-2 ", Partial { first: 1, last: 2 }),
            ("bytes=1-2,", Partial { first: 1, last: 2 }),
            ("bytes=,1-2", Partial { first: 1, last: 2 }),
            ("bytes=,\t,1-2", Partial { first: 1, last: 2 }),
            // Unsatisfiable.
            ("bytes=1000-", Unsatisfiable),
            ("bytes=1000-2000", Unsatisfiable),
            ("bytes=99999999999999999999999-", Unsatisfiable),
            ("bytes=-0", Unsatisfiable),
            // Several ranges: the whole file.
            ("bytes=0-1,5-6", Full),
            ("bytes=0-1, 0-1", Full),
            ("bytes=0-1,-5", Full),
            ("bytes=1000-,2000-", Full),
            // Invalid: ignored.
            ("", Full),
            ("bytes", Full),
            ("bytes=", Full),
            ("bytes=,", Full),
            ("bytes=-", Full),
            ("bytes=5", Full),
            ("bytes=5-4", Full),
            ("bytes=a-b", Full),
            ("bytes=1-2-3", Full),
            ("bytes=+1-2", Full),
            ("bytes=-+1", Full),
            ("bytes=0x10-", Full),
            ("bytes=1 -2", Full),
            ("bytes =1-2", Full),
            ("bytes=0-1,5-4", Full),
            ("bytes=0-1,x", Full),
            ("items=0-1", Full),
            ("bites=0-1", Full),
            ("0-1", Full),
        ];
        for &(value, expected) in table {
            assert_eq!(evaluate(value.as_bytes(), SIZE), expected, "{value:?}");
        }
    }

    proptest::proptest! {
        /// Whatever the numbers, a partial answer lies inside the file and is never empty.
        #[test]
        fn partial_ranges_stay_inside_the_file(
            first in proptest::option::of(0u64..2000),
            last in proptest::option::of(0u64..2000),
            size in 0u64..1500,
        ) {
            let value = format!(
                "bytes={}-{}",
                first.map(|n| n.to_string()).unwrap_or_default(),
                last.map(|n| n.to_string()).unwrap_or_default()
            );
            if let Partial { first, last } = evaluate(value.as_bytes(), size) {
                proptest::prop_assert!(first <= last && last < size, "{value} of {size}");
            }
        }
    }

    #[test]
    fn empty_files_satisfy_no_range() {
        for value in ["bytes=0-", "bytes=0-0", "bytes=-1", "bytes=-0"] {
            assert_eq!(evaluate(value.as_bytes(), 0), Unsatisfiable, "{value:?}");
        }
    }

    #[test]
    fn non_utf8_values_are_ignored() {
        assert_eq!(evaluate(b"bytes=0-1\xff", 10), Full);
    }
}
