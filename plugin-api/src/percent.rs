//! Percent-decoding (RFC 3986 §2.1): the one decoder plugd uses for paths and path parameters, and plugins use
//! (through [`crate::Request::query_params`] and [`crate::Request::form`]) for queries and form bodies. Sharing it
//! means a plugin's unit tests and plugd refuse the same input: `%+1`, `%4`, `%zz` are malformed everywhere.
//!
//! Decoding is strict: a `%` must be followed by two hex digits, and text must be UTF-8 once decoded. A lenient
//! decoder (the URL Standard keeps a bad escape as written) would let one request mean two things to two
//! readers; plugd answers such input with 400 instead.

use std::borrow::Cow;
use std::fmt;

/// Decodes every `%XX` in `input`. `None` if a `%` is not followed by two hex digits. Borrows when there is
/// nothing to decode.
///
/// ```
/// use plugin_api::percent::decode;
/// assert_eq!(decode(b"a%20b%2Fc").as_deref(), Some(&b"a b/c"[..]));
/// assert_eq!(decode(b"%+1"), None);
/// ```
pub fn decode(input: &[u8]) -> Option<Cow<'_, [u8]>> {
    if !input.contains(&b'%') {
        return Some(Cow::Borrowed(input));
    }
    let mut out = Vec::with_capacity(input.len());
    let mut rest = input;
    while let Some((&byte, tail)) = rest.split_first() {
        if byte == b'%' {
            let (&hi, &lo) = (tail.first()?, tail.get(1)?);
            out.push(hex_value(hi)? << 4 | hex_value(lo)?);
            rest = &tail[2..];
        } else {
            out.push(byte);
            rest = tail;
        }
    }
    Some(Cow::Owned(out))
}

/// `0-9`, `a-f`, `A-F` only: `u8::from_str_radix` would also take a sign (`%+1`).
fn hex_value(digit: u8) -> Option<u8> {
    char::from(digit).to_digit(16).map(|v| v as u8)
}

/// Decodes `raw` into text: percent-decoding, then UTF-8. `None` if either fails.
pub fn decode_str(raw: &str) -> Option<Cow<'_, str>> {
    match decode(raw.as_bytes())? {
        Cow::Borrowed(_) => Some(Cow::Borrowed(raw)),
        Cow::Owned(bytes) => String::from_utf8(bytes).ok().map(Cow::Owned),
    }
}

/// Decodes one `application/x-www-form-urlencoded` name or value (a query's too): `+` is a space, then
/// [`decode_str`].
pub fn decode_form_component(raw: &str) -> Option<Cow<'_, str>> {
    if !raw.contains('+') {
        return decode_str(raw);
    }
    let spaced = raw.replace('+', " ");
    decode_str(&spaced).map(|text| Cow::Owned(text.into_owned()))
}

/// A captured path parameter that is not valid percent-encoded UTF-8: plugd answers 400 without calling the
/// plugin, and so does [`crate::testing`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadParam {
    /// The parameter's name in the route pattern.
    pub name: String,
}

impl fmt::Display for BadParam {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Bad Request: path parameter `{}` is not valid percent-encoded UTF-8",
            self.name
        )
    }
}

/// Decodes every captured `(name, raw value)`, in order, or names the first that cannot be decoded.
///
/// Inline, so a route without parameters (the common, benchmarked case) pays one comparison in plugd.
#[inline]
pub fn decode_params<'n, 'v>(
    raw: &[(&'n str, &'v str)],
) -> Result<Vec<(&'n str, Cow<'v, str>)>, BadParam> {
    if raw.is_empty() {
        return Ok(Vec::new());
    }
    decode_each(raw)
}

fn decode_each<'n, 'v>(
    raw: &[(&'n str, &'v str)],
) -> Result<Vec<(&'n str, Cow<'v, str>)>, BadParam> {
    raw.iter()
        .map(|&(name, value)| {
            decode_str(value)
                .map(|value| (name, value))
                .ok_or_else(|| BadParam {
                    name: name.to_owned(),
                })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_escapes_and_borrows_plain_input() {
        assert_eq!(decode(b"a%20b%2Fc").as_deref(), Some(&b"a b/c"[..]));
        assert!(matches!(decode(b"plain"), Some(Cow::Borrowed(_))));
        assert_eq!(decode(b"%e2%82%ac").as_deref(), Some("€".as_bytes()));
        assert_eq!(decode_str("%2541").as_deref(), Some("%41"), "decoded once");
    }

    #[test]
    fn refuses_truncated_signed_or_non_hex_escapes() {
        for bad in [
            &b"%"[..],
            b"%2",
            b"%zz",
            b"a%g1",
            b"%%41",
            b"%+1",
            b"%-1",
            b"% 1",
        ] {
            assert_eq!(decode(bad), None, "{:?}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn text_must_be_utf8_once_decoded() {
        assert_eq!(decode_str("J%C3%BCrgen").as_deref(), Some("Jürgen"));
        assert_eq!(decode_str("%ff"), None);
        assert_eq!(
            decode_params(&[("a", "x%20y"), ("b", "%FF")]),
            Err(BadParam { name: "b".into() })
        );
    }

    #[test]
    fn form_components_take_plus_as_space() {
        assert_eq!(decode_form_component("a+b%2B").as_deref(), Some("a b+"));
        assert_eq!(decode_form_component("plain").as_deref(), Some("plain"));
        assert_eq!(decode_form_component("x+%zz"), None);
    }
}
