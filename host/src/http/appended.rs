//! Fields appended to a response after its handler built it, mostly by filters (docs/ARCHITECTURE.md §15),
//! kept in one text buffer per response as the lines the head will carry (`Name: value\r\n`), with the
//! length of each name and value beside it.
//!
//! Copying a filter's name and value into two owned strings per field cost two allocations and two frees
//! per edit; here a field is one copy into the buffer, and the buffers themselves are recycled by each
//! worker thread (one spare per thread: a worker answers one request at a time), so a response with
//! appended fields allocates nothing once the worker has served one. Kept as wire lines, all the appended
//! fields go into the head with one copy, and a block of lines prepared once (a filter's fixed fields) comes
//! in with one copy too. Lengths beside the text make reading the fields back (for a later filter's edit,
//! the access log) a walk, not a search, and a one-word summary of the names held lets a `Set` of a name
//! the response does not carry skip the walk. The buffers sit behind one pointer: a response larger than
//! it was before them is moved with a `memcpy` call at every step between the handler and the socket,
//! chain or not (+223 instructions per request, measured).

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
    /// Every field as its line in the head: `Name: value\r\n`.
    text: String,
    lengths: Vec<Lengths>,
    /// [`name_bit`] of every name pushed since the buffers were last empty (removals leave theirs).
    names: u64,
}

/// The byte lengths of one field's name and value, as they lie in a line of the text.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Lengths {
    name: u32,
    value: u32,
}

/// `": "` and `"\r\n"` around a value.
const FRAMING: usize = 4;

/// Field lines prepared once (a filter's fixed fields), to be appended with one copy each time.
#[derive(Debug, Default)]
pub struct Lines {
    text: String,
    lengths: Vec<Lengths>,
    names: u64,
}

impl Lines {
    /// Adds `name: value`; both must be valid on the wire and the name not one the host owns.
    pub fn push(&mut self, name: &str, value: &str) {
        push_line(&mut self.text, name, value);
        self.lengths.push(Lengths::of(name, value));
        self.names |= name_bit(name);
    }

    pub fn is_empty(&self) -> bool {
        self.lengths.is_empty()
    }
}

impl Lengths {
    fn of(name: &str, value: &str) -> Lengths {
        Lengths {
            name: name.len() as u32,
            value: value.len() as u32,
        }
    }

    /// The bytes of its line.
    fn line(self) -> usize {
        (self.name + self.value) as usize + FRAMING
    }
}

/// One bit of a word standing for `name` (ASCII case-insensitive) by its length and last byte: two names
/// with different bits differ, so a name whose bit is not in a word of names is not among them.
#[inline]
pub fn name_bit(name: &str) -> u64 {
    let last = name.as_bytes().last().map_or(0, u8::to_ascii_lowercase);
    1 << ((name.len() + usize::from(last) * 7) % 64)
}

fn push_line(text: &mut String, name: &str, value: &str) {
    text.push_str(name);
    text.push_str(": ");
    text.push_str(value);
    text.push_str("\r\n");
}

impl AppendedFields {
    /// The buffers, taken from the thread's spare (or made) at the first field. Inlined: once they are
    /// here, a push costs one check to find them.
    #[inline]
    fn buffers(&mut self) -> &mut Buffers {
        self.0.get_or_insert_with(spare_or_new)
    }

    /// Appends `name: value`; both must be valid on the wire (a token, a value without CR, LF or NUL).
    pub fn push(&mut self, name: &str, value: &str) {
        let buffers = self.buffers();
        push_line(&mut buffers.text, name, value);
        buffers.lengths.push(Lengths::of(name, value));
        buffers.names |= name_bit(name);
    }

    /// Appends every line of `lines`, with one copy.
    pub fn push_lines(&mut self, lines: &Lines) {
        let buffers = self.buffers();
        buffers.text.push_str(&lines.text);
        buffers.lengths.extend_from_slice(&lines.lengths);
        buffers.names |= lines.names;
    }

    /// Whether a field named `name` may be here: `false` is certain, `true` is worth a search.
    #[inline]
    pub fn may_hold(&self, bit: u64) -> bool {
        self.0
            .as_deref()
            .is_some_and(|buffers| buffers.names & bit != 0)
    }

    /// Removes every field named `name` (ASCII case-insensitive), keeping the others in order. Inlined: a
    /// name never pushed costs a few instructions, without a call.
    #[inline]
    pub fn remove(&mut self, name: &str) {
        if self.may_hold(name_bit(name)) {
            self.remove_present(name);
        }
    }

    /// [`AppendedFields::remove`] of a name that may be here.
    #[cold]
    fn remove_present(&mut self, name: &str) {
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
            let line = old.get(start..start + lengths.line()).unwrap_or_default();
            start += lengths.line();
            let keep = !line
                .get(..lengths.name as usize)
                .is_some_and(|field| field.eq_ignore_ascii_case(name));
            if keep {
                text.push_str(line);
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
            start += lengths.line();
            field
        })
    }

    /// The fields as the lines of a head, in order.
    pub fn wire(&self) -> &[u8] {
        self.0
            .as_deref()
            .map_or(&[][..], |buffers| buffers.text.as_bytes())
    }

    /// How many fields there are.
    pub fn len(&self) -> usize {
        self.0.as_ref().map_or(0, |buffers| buffers.lengths.len())
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The thread's spare buffers, or new ones.
#[cold]
fn spare_or_new() -> Box<Buffers> {
    SPARE.take().unwrap_or_else(|| {
        Box::new(Buffers {
            text: String::with_capacity(INITIAL_TEXT),
            lengths: Vec::with_capacity(INITIAL_FIELDS),
            names: 0,
        })
    })
}

impl Buffers {
    /// The names in order (a search for one, without slicing the values).
    fn names(&self) -> impl Iterator<Item = &str> {
        let mut start = 0;
        self.lengths.iter().map(move |lengths| {
            let name = self
                .text
                .get(start..start + lengths.name as usize)
                .unwrap_or_default();
            start += lengths.line();
            name
        })
    }
}

/// The name and value of the line that starts at byte `start` of `text`.
fn split(text: &str, start: usize, lengths: Lengths) -> (&str, &str) {
    let value_start = start + lengths.name as usize + 2;
    let end = value_start + lengths.value as usize;
    // Pushed whole from `&str`s: every boundary is a char boundary, every range in bounds.
    (
        text.get(start..start + lengths.name as usize)
            .unwrap_or_default(),
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
        buffers.names = 0;
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
    fn fields_are_kept_as_head_lines_and_prepared_lines_join_them() {
        let mut lines = Lines::default();
        lines.push("X-Frame-Options", "DENY");
        lines.push("Vary", "Origin");
        let mut appended = AppendedFields::default();
        appended.push("X-Request-Id", "7");
        appended.push_lines(&lines);
        assert_eq!(
            appended.wire(),
            b"X-Request-Id: 7\r\nX-Frame-Options: DENY\r\nVary: Origin\r\n"
        );
        assert_eq!(
            fields(&appended),
            [
                ("X-Request-Id", "7"),
                ("X-Frame-Options", "DENY"),
                ("Vary", "Origin")
            ]
        );
        assert!(appended.may_hold(name_bit("x-frame-options")));
        appended.remove("x-frame-options");
        assert_eq!(appended.wire(), b"X-Request-Id: 7\r\nVary: Origin\r\n");
    }

    #[test]
    fn a_name_never_pushed_is_known_absent_without_a_search() {
        let mut appended = AppendedFields::default();
        assert!(!appended.may_hold(name_bit("X-A")));
        appended.push("X-A", "1");
        assert!(appended.may_hold(name_bit("x-a")));
        assert_ne!(name_bit("Content-Type"), name_bit("X-Request-Id"));
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
