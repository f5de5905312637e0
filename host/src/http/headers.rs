//! The header fields of a parsed request, kept in place for the usual few and in a `Vec` beyond that.
//!
//! A request head is parsed for every request; a fresh `Vec` per head was one allocation and one free per
//! request (about 150 instructions of the 1,913 a two-field head took). [`Headers`] holds up to
//! [`INLINE_HEADERS`] fields inside the head itself and moves them all to the heap only when a request has
//! more, so the slice view stays contiguous either way.

use std::fmt;
use std::ops::Deref;

/// One header field, borrowed from the connection's buffer. The value has its surrounding OWS trimmed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header<'b> {
    pub name: &'b str,
    pub value: &'b [u8],
}

impl Header<'_> {
    const EMPTY: Header<'static> = Header {
        name: "",
        value: b"",
    };
}

/// Fields held without allocating: wrk and curl send 1-3, API clients a handful, browsers 8-15.
pub const INLINE_HEADERS: usize = 8;

/// A request's header fields in the order received; dereferences to a slice.
#[derive(Clone)]
pub struct Headers<'b> {
    inline: [Header<'b>; INLINE_HEADERS],
    /// Fields in `inline`; the rest of `inline` is unused.
    inline_len: usize,
    /// Every field, once there are more than fit inline (then `inline` is no longer read).
    spilled: Vec<Header<'b>>,
}

impl<'b> Headers<'b> {
    pub fn new() -> Headers<'b> {
        Headers {
            inline: [Header::EMPTY; INLINE_HEADERS],
            inline_len: 0,
            spilled: Vec::new(),
        }
    }

    /// Appends a field.
    pub fn push(&mut self, field: Header<'b>) {
        if !self.spilled.is_empty() {
            self.spilled.push(field);
        } else if let Some(slot) = self.inline.get_mut(self.inline_len) {
            *slot = field;
            self.inline_len += 1;
        } else {
            self.spilled.reserve(2 * INLINE_HEADERS);
            self.spilled.extend_from_slice(&self.inline);
            self.spilled.push(field);
        }
    }
}

impl Default for Headers<'_> {
    fn default() -> Self {
        Headers::new()
    }
}

impl<'b> Deref for Headers<'b> {
    type Target = [Header<'b>];

    fn deref(&self) -> &[Header<'b>] {
        if self.spilled.is_empty() {
            self.inline.get(..self.inline_len).unwrap_or_default()
        } else {
            &self.spilled
        }
    }
}

impl<'b> FromIterator<Header<'b>> for Headers<'b> {
    fn from_iter<I: IntoIterator<Item = Header<'b>>>(fields: I) -> Headers<'b> {
        let mut headers = Headers::new();
        for field in fields {
            headers.push(field);
        }
        headers
    }
}

impl PartialEq for Headers<'_> {
    fn eq(&self, other: &Self) -> bool {
        **self == **other
    }
}

impl Eq for Headers<'_> {}

impl fmt::Debug for Headers<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_stay_in_order_in_place_and_after_spilling() {
        let names: Vec<String> = (0..3 * INLINE_HEADERS).map(|i| format!("x-{i}")).collect();
        let mut headers = Headers::new();
        for (i, name) in names.iter().enumerate() {
            headers.push(Header { name, value: b"v" });
            assert_eq!(headers.len(), i + 1);
            assert_eq!(headers[i].name, name.as_str());
            assert_eq!(headers.first().map(|h| h.name), Some("x-0"));
        }
        let collected: Headers<'_> = headers.iter().copied().collect();
        assert_eq!(collected, headers);
        assert!(Headers::new().is_empty());
    }
}
