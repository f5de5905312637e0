//! Fields appended to a response after its handler built it, mostly by filters (docs/ARCHITECTURE.md §15),
//! kept in one text buffer per response, with the length of each name and value beside it.
//!
//! Copying a filter's name and value into two owned strings per field cost two allocations and two frees
//! per edit; here a field is one copy into the buffer, and the buffers themselves are recycled by each
//! worker thread (one spare per thread: a worker answers one request at a time), so a response with
//! appended fields allocates nothing once the worker has served one. Lengths beside the text make reading
//! the fields back (for the head, for a later filter's edit) a walk, not a search. The buffers sit behind
//! one pointer: a response larger than it was before them is moved with a `memcpy` call at every step
//! between the handler and the socket, chain or not (+223 instructions per request, measured).

use std::cell::Cell;

/// Bytes reserved for a fresh text buffer: a request id, a few security fields and CORS fit.
const INITIAL_TEXT: usize = 256;
/// Fields reserved for a fresh buffer.
const INITIAL_FIELDS: usize = 8;
/// A text buffer grown beyond this is freed instead of kept as the thread's spare.
const MAX_SPARE_TEXT: usize = 4096;

thread_local! {
    /// The buffers of the last response this thread dropped, kept for the next one.
    static SPARE: Cell<Option<Box<Buffers>>> = const { Cell::new(None) };
}

/// Fields in the order appended, every one already valid on the wire (the caller checks). No allocation
/// until the first.
#[derive(Debug, Default)]
pub struct AppendedFields(Option<Box<Buffers>>);

#[derive(Debug)]
struct Buffers {
    /// Every name and value, back to back.
    text: String,
    lengths: Vec<Lengths>,
}

/// The byte lengths of one field's name and value, which lie back to back in the text.
#[derive(Clone, Copy, Debug)]
struct Lengths {
    name: u32,
    value: u32,
}

impl AppendedFields {
    /// Appends `name: value`; both must be valid on the wire (a token, a value without CR, LF or NUL).
    pub fn push(&mut self, name: &str, value: &str) {
        let buffers = self.0.get_or_insert_with(|| {
            SPARE.take().unwrap_or_else(|| {
                Box::new(Buffers {
                    text: String::with_capacity(INITIAL_TEXT),
                    lengths: Vec::with_capacity(INITIAL_FIELDS),
                })
            })
        });
        buffers.text.push_str(name);
        buffers.text.push_str(value);
        buffers.lengths.push(Lengths {
            name: name.len() as u32,
            value: value.len() as u32,
        });
    }

    /// Removes every field named `name` (ASCII case-insensitive), keeping the others in order.
    pub fn remove(&mut self, name: &str) {
        let Some(buffers) = self.0.as_deref_mut() else {
            return;
        };
        if !buffers.names().any(|n| n.eq_ignore_ascii_case(name)) {
            return;
        }
        let old = std::mem::take(&mut buffers.text);
        let mut text = String::with_capacity(old.capacity());
        let mut start = 0;
        buffers.lengths.retain(|lengths| {
            let (field, value) = split(&old, start, *lengths);
            start += (lengths.name + lengths.value) as usize;
            let keep = !field.eq_ignore_ascii_case(name);
            if keep {
                text.push_str(field);
                text.push_str(value);
            }
            keep
        });
        buffers.text = text;
    }

    /// The fields in order, as `(name, value)`.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        let (text, lengths) = match self.0.as_deref() {
            Some(buffers) => (buffers.text.as_str(), buffers.lengths.as_slice()),
            None => ("", &[][..]),
        };
        let mut start = 0;
        lengths.iter().map(move |lengths| {
            let field = split(text, start, *lengths);
            start += (lengths.name + lengths.value) as usize;
            field
        })
    }

    /// How many fields there are.
    pub fn len(&self) -> usize {
        self.0.as_ref().map_or(0, |buffers| buffers.lengths.len())
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Buffers {
    /// The names in order (a search for one, without slicing the values).
    fn names(&self) -> impl Iterator<Item = &str> {
        let mut start = 0;
        self.lengths.iter().map(move |lengths| {
            let name_end = start + lengths.name as usize;
            let name = self.text.get(start..name_end).unwrap_or_default();
            start = name_end + lengths.value as usize;
            name
        })
    }
}

/// The name and value that start at byte `start` of `text`.
fn split(text: &str, start: usize, lengths: Lengths) -> (&str, &str) {
    let value_start = start + lengths.name as usize;
    let end = value_start + lengths.value as usize;
    // Pushed whole from `&str`s: every boundary is a char boundary, every range in bounds.
    (
        text.get(start..value_start).unwrap_or_default(),
        text.get(value_start..end).unwrap_or_default(),
    )
}

impl Drop for AppendedFields {
    fn drop(&mut self) {
        let Some(mut buffers) = self.0.take() else {
            return;
        };
        if buffers.text.capacity() > MAX_SPARE_TEXT {
            return;
        }
        buffers.text.clear();
        buffers.lengths.clear();
        // `try_with`: a response dropped while its thread exits finds no spare to refill.
        let _ = SPARE.try_with(|slot| slot.set(Some(buffers)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(appended: &AppendedFields) -> Vec<(&str, &str)> {
        appended.iter().collect()
    }

    #[test]
    fn fields_come_back_in_order_and_removal_keeps_the_others() {
        let mut appended = AppendedFields::default();
        appended.push("X-A", "1");
        appended.push("Vary", "Origin");
        appended.push("x-a", " two: words ");
        assert_eq!(appended.len(), 3);
        assert_eq!(
            fields(&appended),
            [("X-A", "1"), ("Vary", "Origin"), ("x-a", " two: words ")]
        );
        appended.remove("X-a");
        assert_eq!(fields(&appended), [("Vary", "Origin")]);
        appended.remove("Nothing");
        appended.remove("vary");
        assert!(appended.is_empty());
    }

    #[test]
    fn a_dropped_buffer_is_the_next_ones() {
        let mut first = AppendedFields::default();
        first.push("X-Request-Id", "0123456789abcdef0123456789abcdef");
        let address = first.0.as_ref().unwrap().text.as_ptr();
        drop(first);
        let mut second = AppendedFields::default();
        second.push("X-Other", "v");
        let reused = second.0.as_ref().unwrap().text.as_ptr();
        assert_eq!(reused, address, "the spare was reused");
        assert_eq!(fields(&second), [("X-Other", "v")]);
    }
}
