//! Percent-decoding (RFC 3986 §2.1), done exactly once, by whoever interprets a path.

use std::borrow::Cow;

/// Decodes every `%XX` in `input`. `None` if a `%` is not followed by two hex digits.
/// Borrows when there is nothing to decode.
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

fn hex_value(digit: u8) -> Option<u8> {
    char::from(digit).to_digit(16).map(|v| v as u8)
}

#[cfg(test)]
mod tests {
    use super::decode;

    #[test]
    fn decodes_escapes_and_borrows_plain_input() {
        assert_eq!(decode(b"a%20b%2Fc").as_deref(), Some(&b"a b/c"[..]));
        assert!(matches!(
            decode(b"plain"),
            Some(std::borrow::Cow::Borrowed(_))
        ));
        assert_eq!(decode(b"%e2%82%ac").as_deref(), Some("€".as_bytes()));
    }

    #[test]
    fn refuses_truncated_or_non_hex_escapes() {
        for bad in [&b"%"[..], b"%2", b"%zz", b"a%g1", b"%%41"] {
            assert_eq!(decode(bad), None, "{:?}", String::from_utf8_lossy(bad));
        }
    }
}
