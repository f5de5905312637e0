//! HTTP-date (RFC 9110 §5.6.7): formatting the preferred IMF-fixdate, parsing all three forms.
//!
//! Used for `Date` (RFC 9110 §6.6.1), `Last-Modified`, `If-Modified-Since`, `If-Unmodified-Since` and
//! `If-Range`. Calendar arithmetic is done by hand (Howard Hinnant's `days_from_civil` / `civil_from_days`),
//! in the proleptic Gregorian calendar, which is what HTTP-date means. A once-per-second cache of the `Date`
//! value can sit on top of [`write_http_date`], which formats into a fixed-size buffer without allocating.

use std::cell::Cell;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Length of an IMF-fixdate, e.g. `Sun, 06 Nov 1994 08:49:37 GMT`.
pub const HTTP_DATE_LEN: usize = 29;

const DAY_NAMES: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
const LONG_DAY_NAMES: [&str; 7] = [
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
    "Sunday",
];
const MONTH_NAMES: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

const SECONDS_PER_DAY: i64 = 86_400;

/// The current time as an IMF-fixdate for the `Date` field, formatted at most once per second per worker:
/// each worker keeps the last value it wrote, so no lock is shared and formatting leaves the hot path.
///
/// The cache holds the second it was written in as a `SystemTime` range: comparing the clock with it costs
/// a few instructions, where converting every reading to Unix seconds cost about 60.
pub fn now() -> [u8; HTTP_DATE_LEN] {
    thread_local! {
        static CACHED: Cell<CachedDate> = const {
            Cell::new(CachedDate { from: UNIX_EPOCH, until: UNIX_EPOCH, value: [0; HTTP_DATE_LEN] })
        };
    }
    let time = SystemTime::now();
    CACHED.with(|cached| {
        let mut date = cached.get();
        // A clock stepped back leaves the range too, so the value is always the clock's current second.
        if !(date.from <= time && time < date.until) {
            let from = from_unix_seconds(unix_seconds(time));
            date = CachedDate {
                from,
                // No second after it (a clock at the end of time): an empty range, formatted every time.
                until: from.checked_add(Duration::from_secs(1)).unwrap_or(from),
                value: [0; HTTP_DATE_LEN],
            };
            write_http_date(&mut date.value, time);
            cached.set(date);
        }
        date.value
    })
}

/// One worker's `Date` value and the second `[from, until)` it is valid for.
#[derive(Clone, Copy)]
struct CachedDate {
    from: SystemTime,
    until: SystemTime,
    value: [u8; HTTP_DATE_LEN],
}

/// Formats `time` as an IMF-fixdate, e.g. `Sun, 06 Nov 1994 08:49:37 GMT`.
///
/// Sub-second precision is dropped (truncated), as the format has none.
pub fn format_http_date(time: SystemTime) -> String {
    let mut buf = [0u8; HTTP_DATE_LEN];
    write_http_date(&mut buf, time);
    // Every byte written is ASCII.
    String::from_utf8_lossy(&buf).into_owned()
}

/// Writes `time` as an IMF-fixdate into `buf`, without allocating.
///
/// Years outside 0..=9999 cannot be written in four digits and are clamped to that range's ends.
pub fn write_http_date(buf: &mut [u8; HTTP_DATE_LEN], time: SystemTime) {
    let secs = unix_seconds(time);
    let days = secs.div_euclid(SECONDS_PER_DAY);
    let second_of_day = secs.rem_euclid(SECONDS_PER_DAY);
    let (mut year, mut month, mut day) = civil_from_days(days);
    let (mut hour, mut minute, mut second) = (
        second_of_day / 3600,
        second_of_day / 60 % 60,
        second_of_day % 60,
    );
    let mut weekday = weekday_from_days(days);
    if !(0..=9999).contains(&year) {
        // Far outside any file time or clock this server will see; keep the output well-formed.
        let edge = if year < 0 {
            days_from_civil(0, 1, 1) * SECONDS_PER_DAY
        } else {
            days_from_civil(9999, 12, 31) * SECONDS_PER_DAY + SECONDS_PER_DAY - 1
        };
        let edge_days = edge.div_euclid(SECONDS_PER_DAY);
        (year, month, day) = civil_from_days(edge_days);
        let edge_second = edge.rem_euclid(SECONDS_PER_DAY);
        (hour, minute, second) = (edge_second / 3600, edge_second / 60 % 60, edge_second % 60);
        weekday = weekday_from_days(edge_days);
    }

    buf[..3].copy_from_slice(DAY_NAMES[weekday].as_bytes());
    buf[3..5].copy_from_slice(b", ");
    write_digits(&mut buf[5..7], day);
    buf[7] = b' ';
    buf[8..11].copy_from_slice(MONTH_NAMES[(month - 1) as usize].as_bytes());
    buf[11] = b' ';
    write_digits(&mut buf[12..16], year);
    buf[16] = b' ';
    write_digits(&mut buf[17..19], hour);
    buf[19] = b':';
    write_digits(&mut buf[20..22], minute);
    buf[22] = b':';
    write_digits(&mut buf[23..25], second);
    buf[25..].copy_from_slice(b" GMT");
}

/// Parses an HTTP-date in any of the three forms RFC 9110 §5.6.7 obliges recipients to accept:
///
/// - IMF-fixdate: `Sun, 06 Nov 1994 08:49:37 GMT`
/// - obsolete RFC 850: `Sunday, 06-Nov-94 08:49:37 GMT` (a two-digit year more than 50 years in the future
///   is taken as the most recent past year with those digits)
/// - obsolete asctime: `Sun Nov  6 08:49:37 1994`
///
/// `None` for anything else, including impossible dates (`31 Feb`) and times (`24:00:00`). The day name
/// must be a day name but is not checked against the date: the date is what the sender meant.
pub fn parse_http_date(input: &[u8]) -> Option<SystemTime> {
    parse_http_date_at(input, SystemTime::now())
}

/// [`parse_http_date`] with the clock RFC 850 two-digit years are read against.
fn parse_http_date_at(input: &[u8], now: SystemTime) -> Option<SystemTime> {
    // ASCII only, which also makes every fixed-offset slice below land on a char boundary.
    if !input.is_ascii() {
        return None;
    }
    let input = std::str::from_utf8(input).ok()?;
    let (year, month, day, time) = if let Some(rest) = strip_day_name(input, &DAY_NAMES, ", ") {
        parse_imf_fixdate(rest)?
    } else if let Some(rest) = strip_day_name(input, &LONG_DAY_NAMES, ", ") {
        parse_rfc850(rest, now)?
    } else if let Some(rest) = strip_day_name(input, &DAY_NAMES, " ") {
        parse_asctime(rest)?
    } else {
        return None;
    };
    if day < 1 || day > days_in_month(year, month) {
        return None;
    }
    let days = days_from_civil(year, month, day);
    Some(from_unix_seconds(days * SECONDS_PER_DAY + time))
}

/// `06 Nov 1994 08:49:37 GMT`
fn parse_imf_fixdate(s: &str) -> Option<(i64, i64, i64, i64)> {
    if !has_shape(s, 24, &[(2, b' '), (6, b' '), (11, b' ')]) || &s[20..] != " GMT" {
        return None;
    }
    let day = digits(&s[0..2])?;
    let month = month_number(&s[3..6])?;
    let year = digits(&s[7..11])?;
    let time = parse_time_of_day(&s[12..20])?;
    Some((year, month, day, time))
}

/// `06-Nov-94 08:49:37 GMT`
fn parse_rfc850(s: &str, now: SystemTime) -> Option<(i64, i64, i64, i64)> {
    if !has_shape(s, 22, &[(2, b'-'), (6, b'-'), (9, b' ')]) || &s[18..] != " GMT" {
        return None;
    }
    let day = digits(&s[0..2])?;
    let month = month_number(&s[3..6])?;
    let two_digit_year = digits(&s[7..9])?;
    let time = parse_time_of_day(&s[10..18])?;
    // RFC 9110 §5.6.7: a two-digit year more than 50 years in the future means the most recent past year
    // with the same last two digits.
    let this_year = civil_from_days(unix_seconds(now).div_euclid(SECONDS_PER_DAY)).0;
    let mut year = this_year - this_year.rem_euclid(100) + two_digit_year;
    if year > this_year + 50 {
        year -= 100;
    }
    Some((year, month, day, time))
}

/// `Nov  6 08:49:37 1994` (the day is space-padded to two characters)
fn parse_asctime(s: &str) -> Option<(i64, i64, i64, i64)> {
    if !has_shape(s, 20, &[(3, b' '), (6, b' '), (15, b' ')]) {
        return None;
    }
    let b = s.as_bytes();
    let month = month_number(&s[0..3])?;
    let day = match (b[4], b[5]) {
        (b' ', d) if d.is_ascii_digit() => i64::from(d - b'0'),
        _ => digits(&s[4..6])?,
    };
    let time = parse_time_of_day(&s[7..15])?;
    let year = digits(&s[16..20])?;
    Some((year, month, day, time))
}

/// Strips one of `names` followed by `separator` from the start of `s` (names are case-sensitive, §5.6.7).
fn strip_day_name<'s>(s: &'s str, names: &[&str], separator: &str) -> Option<&'s str> {
    names
        .iter()
        .find_map(|name| s.strip_prefix(name)?.strip_prefix(separator))
}

/// `HH:MM:SS` -> seconds since midnight. RFC 9110 allows second 60 (a leap second); it is read as 59, since
/// Unix time has no leap seconds.
fn parse_time_of_day(s: &str) -> Option<i64> {
    if !has_shape(s, 8, &[(2, b':'), (5, b':')]) {
        return None;
    }
    let (hour, minute, second) = (digits(&s[0..2])?, digits(&s[3..5])?, digits(&s[6..8])?);
    if hour > 23 || minute > 59 || second > 60 {
        return None;
    }
    Some(hour * 3600 + minute * 60 + second.min(59))
}

/// `s` is `len` bytes long with each `(index, byte)` separator in place.
fn has_shape(s: &str, len: usize, separators: &[(usize, u8)]) -> bool {
    let b = s.as_bytes();
    b.len() == len && separators.iter().all(|&(i, sep)| b[i] == sep)
}

/// A run of ASCII digits (no sign, no spaces) as a number.
fn digits(s: &str) -> Option<i64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// `Jan` -> 1 ... `Dec` -> 12 (case-sensitive, as the grammar spells them).
fn month_number(s: &str) -> Option<i64> {
    MONTH_NAMES
        .iter()
        .position(|m| *m == s)
        .map(|i| i as i64 + 1)
}

fn write_digits(out: &mut [u8], mut value: i64) {
    for slot in out.iter_mut().rev() {
        *slot = b'0' + (value % 10) as u8;
        value /= 10;
    }
}

fn is_leap_year(year: i64) -> bool {
    year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if is_leap_year(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant, "chrono-Compatible Low-Level Date
/// Algorithms"): years are shifted to start in March so the leap day is the last day of the year.
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let year_of_era = y.rem_euclid(400);
    let shifted_month = (month + 9) % 12; // March = 0
    let day_of_year = (153 * shifted_month + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// The inverse of [`days_from_civil`]: `(year, month 1..=12, day 1..=31)`.
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let shifted_month = (5 * day_of_year + 2) / 153; // March = 0
    let day = day_of_year - (153 * shifted_month + 2) / 5 + 1;
    let month = if shifted_month < 10 {
        shifted_month + 3
    } else {
        shifted_month - 9
    };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// Index into [`DAY_NAMES`] (Monday = 0); 1970-01-01 was a Thursday.
fn weekday_from_days(days: i64) -> usize {
    (days + 3).rem_euclid(7) as usize
}

/// Whole seconds since the Unix epoch, negative before it, rounded towards the past.
fn unix_seconds(time: SystemTime) -> i64 {
    match time.duration_since(UNIX_EPOCH) {
        Ok(after) => i64::try_from(after.as_secs()).unwrap_or(i64::MAX / 2),
        Err(before) => {
            let before = before.duration();
            let secs = i64::try_from(before.as_secs()).unwrap_or(i64::MAX / 2);
            if before.subsec_nanos() > 0 {
                -secs - 1
            } else {
                -secs
            }
        }
    }
}

fn from_unix_seconds(secs: i64) -> SystemTime {
    if secs >= 0 {
        UNIX_EPOCH + Duration::from_secs(secs as u64)
    } else {
        UNIX_EPOCH - Duration::from_secs(secs.unsigned_abs())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: i64) -> SystemTime {
        from_unix_seconds(secs)
    }

    /// 2026-06-15T00:00:00Z, the clock the RFC 850 year rule is tested against.
    fn now() -> SystemTime {
        at(days_from_civil(2026, 6, 15) * SECONDS_PER_DAY)
    }

    #[test]
    fn formats_the_rfc_example_and_the_epoch() {
        assert_eq!(
            format_http_date(at(784_111_777)),
            "Sun, 06 Nov 1994 08:49:37 GMT"
        );
        assert_eq!(
            format_http_date(UNIX_EPOCH),
            "Thu, 01 Jan 1970 00:00:00 GMT"
        );
        assert_eq!(format_http_date(at(-1)), "Wed, 31 Dec 1969 23:59:59 GMT");
        assert_eq!(
            format_http_date(at(951_782_400)),
            "Tue, 29 Feb 2000 00:00:00 GMT"
        );
        assert_eq!(
            format_http_date(at(4_102_444_800)),
            "Fri, 01 Jan 2100 00:00:00 GMT"
        );
        // Sub-second precision is truncated, also before the epoch.
        assert_eq!(
            format_http_date(UNIX_EPOCH + Duration::from_millis(1999)),
            "Thu, 01 Jan 1970 00:00:01 GMT"
        );
        assert_eq!(
            format_http_date(UNIX_EPOCH - Duration::from_millis(1)),
            "Wed, 31 Dec 1969 23:59:59 GMT"
        );
    }

    #[test]
    fn parses_all_three_forms_of_the_rfc_example() {
        let expected = Some(at(784_111_777));
        assert_eq!(parse_http_date(b"Sun, 06 Nov 1994 08:49:37 GMT"), expected);
        assert_eq!(
            parse_http_date_at(b"Sunday, 06-Nov-94 08:49:37 GMT", now()),
            expected
        );
        assert_eq!(parse_http_date(b"Sun Nov  6 08:49:37 1994"), expected);
        assert_eq!(parse_http_date(b"Sun Nov 06 08:49:37 1994"), expected);
    }

    #[test]
    fn rfc850_two_digit_years_are_never_more_than_50_years_ahead() {
        let year_of = |input: &[u8]| {
            let t = parse_http_date_at(input, now()).unwrap();
            civil_from_days(unix_seconds(t).div_euclid(SECONDS_PER_DAY)).0
        };
        assert_eq!(year_of(b"Monday, 01-Jan-26 00:00:00 GMT"), 2026);
        assert_eq!(year_of(b"Monday, 01-Jan-76 00:00:00 GMT"), 2076);
        assert_eq!(year_of(b"Monday, 01-Jan-77 00:00:00 GMT"), 1977);
        assert_eq!(year_of(b"Monday, 01-Jan-99 00:00:00 GMT"), 1999);
        assert_eq!(year_of(b"Monday, 01-Jan-00 00:00:00 GMT"), 2000);
    }

    #[test]
    fn format_then_parse_is_identity_on_whole_seconds() {
        // Every day boundary and odd second from 1600 to 2400 in steps that hit leap days and month ends.
        let start = days_from_civil(1600, 1, 1) * SECONDS_PER_DAY;
        let end = days_from_civil(2400, 12, 31) * SECONDS_PER_DAY;
        let mut secs = start;
        while secs < end {
            let formatted = format_http_date(at(secs));
            assert_eq!(
                parse_http_date(formatted.as_bytes()),
                Some(at(secs)),
                "{formatted}"
            );
            secs += 86_399 * 3 + 7;
        }
    }

    #[test]
    fn civil_day_conversions_agree_with_a_day_by_day_walk() {
        let (mut year, mut month, mut day) = (1900, 1, 1);
        for days in days_from_civil(1900, 1, 1)..days_from_civil(2101, 1, 1) {
            assert_eq!(civil_from_days(days), (year, month, day));
            assert_eq!(days_from_civil(year, month, day), days);
            day += 1;
            if day > days_in_month(year, month) {
                (day, month) = (1, month + 1);
                if month > 12 {
                    (month, year) = (1, year + 1);
                }
            }
        }
    }

    #[test]
    fn leap_seconds_read_as_the_last_second_of_the_minute() {
        assert_eq!(
            parse_http_date(b"Sat, 31 Dec 2016 23:59:60 GMT"),
            parse_http_date(b"Sat, 31 Dec 2016 23:59:59 GMT")
        );
    }

    #[test]
    fn refuses_invalid_dates() {
        for bad in [
            &b""[..],
            b"garbage",
            b"Sun, 06 Nov 1994 08:49:37 UTC",
            b"Sun, 06 Nov 1994 08:49:37 GMT ",
            b" Sun, 06 Nov 1994 08:49:37 GMT",
            b"Sun, 6 Nov 1994 08:49:37 GMT",
            b"sun, 06 Nov 1994 08:49:37 GMT",
            b"Sun, 06 nov 1994 08:49:37 GMT",
            b"Sun, 06 Nov 94 08:49:37 GMT",
            b"Sun, 31 Feb 1994 08:49:37 GMT",
            b"Sun, 29 Feb 1900 08:49:37 GMT",
            b"Sun, 00 Nov 1994 08:49:37 GMT",
            b"Sun, 06 Nov 1994 24:00:00 GMT",
            b"Sun, 06 Nov 1994 08:60:00 GMT",
            b"Sun, 06 Nov 1994 08:49:61 GMT",
            b"Sun, 06 Nov 1994 8:49:37 GMT",
            b"Sun, 06 Nov +994 08:49:37 GMT",
            b"Sun, 06 Nov 1994 08:49:3 GMT",
            b"Sun, 06 Nov 1994 08-49-37 GMT",
            b"Xyz, 06 Nov 1994 08:49:37 GMT",
            b"Sunday, 06 Nov 1994 08:49:37 GMT",
            b"Sunday, 06-Nov-1994 08:49:37 GMT",
            b"Sun, 06-Nov-94 08:49:37 GMT",
            b"Sun Nov 6 08:49:37 1994",
            b"Sun Nov  6 08:49:37 94",
            b"Sun Nov  6 08:49:37 1994 GMT",
            b"Sun, 06 Nov 1994 08:49:37 GMT\xff",
            b"Sun, 06 Nov 1994 \xc3\xa908:49 GMT",
            b"1994-11-06T08:49:37Z",
            b"784111777",
        ] {
            assert_eq!(
                parse_http_date_at(bad, now()),
                None,
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn years_beyond_four_digits_are_clamped_when_formatting() {
        let far = at(days_from_civil(12_000, 1, 1) * SECONDS_PER_DAY);
        assert_eq!(format_http_date(far), "Fri, 31 Dec 9999 23:59:59 GMT");
    }
}
