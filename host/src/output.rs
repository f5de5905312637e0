//! The answers of one wake-up on their way to the socket: heads and small bodies composed in one buffer,
//! large bodies left where their handler built them, all of it sent by one `sendmsg` (a `writev`)
//! (`docs/ARCHITECTURE.md` §4.6).
//!
//! Copying a plugin's 4 KiB body into the output buffer was one of the two user-space copies an echo made
//! that hyper does not (the other is the plugin's own, when it builds its answer from the request). A body
//! of at least [`HOLD_FROM`] bytes is therefore not copied: the buffer keeps its place, and the write
//! gathers the pieces in order. Smaller bodies are copied: below a kilobyte the copy costs less than the
//! kernel's work on one more piece. Only output the socket does not take at once is copied, into one
//! buffer that waits for room in the connection's queue (rare: a client that reads slowly). File and
//! streamed bodies never come here: the connection queues them behind what this holds.

use std::io::{self, IoSlice};
use std::net::TcpStream;

use crate::handler::Body;
use crate::sys;

/// Bodies at least this large are sent from where their handler left them instead of being copied.
pub const HOLD_FROM: usize = 1024;

/// Pieces one `sendmsg` gathers at most (a head and a body each, for 16 pipelined answers); more go in
/// further calls.
const MAX_PIECES: usize = 32;

/// The output of one wake-up, in order.
#[derive(Default)]
pub struct Output {
    /// Heads and small bodies.
    bytes: Vec<u8>,
    /// Large bodies, each with the length `bytes` had when it was added: it goes out right after that byte.
    held: Vec<(usize, Body)>,
    /// Bytes in `held`.
    held_len: usize,
}

impl Output {
    /// Where heads and small bodies are appended.
    pub fn bytes(&mut self) -> &mut Vec<u8> {
        &mut self.bytes
    }

    /// Appends a body held in memory: kept where it is if it is large, else copied. Returns the body
    /// back if it is not held in memory (a file, a stream).
    #[inline]
    pub fn push_body(&mut self, body: Body) -> Option<Body> {
        let Some(bytes) = in_memory(&body) else {
            return Some(body);
        };
        if bytes.len() < HOLD_FROM {
            self.bytes.extend_from_slice(bytes);
        } else {
            self.held_len += bytes.len();
            self.held.push((self.bytes.len(), body));
        }
        None
    }

    /// Bytes waiting to be written.
    pub fn len(&self) -> usize {
        self.bytes.len() + self.held_len
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The pieces in order, as the socket must receive them.
    fn pieces(&self) -> impl Iterator<Item = &[u8]> {
        let mut from = 0;
        let mut held = self.held.iter();
        let mut next_body = None;
        std::iter::from_fn(move || {
            loop {
                if let Some(body) = next_body.take() {
                    return Some(body);
                }
                let Some((at, body)) = held.next() else {
                    let last = self.bytes.get(from..).filter(|rest| !rest.is_empty());
                    from = self.bytes.len();
                    return last;
                };
                let before = self.bytes.get(from..*at).unwrap_or_default();
                from = *at;
                next_body = in_memory(body);
                if !before.is_empty() {
                    return Some(before);
                }
            }
        })
    }

    /// Writes as much as the socket takes now, gathering the pieces without copying them; returns how many
    /// bytes it took.
    pub fn write_to(&self, socket: &TcpStream) -> io::Result<usize> {
        if self.held.is_empty() {
            return sys::send_available(socket, &self.bytes, false);
        }
        let mut pieces = self.pieces();
        let mut batch = [IoSlice::new(&[]); MAX_PIECES];
        let mut sent = 0;
        loop {
            let mut filled = 0;
            for (slot, piece) in batch.iter_mut().zip(pieces.by_ref()) {
                *slot = IoSlice::new(piece);
                filled += 1;
            }
            if filled == 0 {
                return Ok(sent);
            }
            let mut remaining = &mut batch[..filled];
            while !remaining.is_empty() {
                match sys::send_vectored(socket, remaining) {
                    Ok(0) => return Err(io::Error::from(io::ErrorKind::WriteZero)),
                    Ok(n) => {
                        sent += n;
                        IoSlice::advance_slices(&mut remaining, n);
                    }
                    Err(err) if err.kind() == io::ErrorKind::WouldBlock => return Ok(sent),
                    Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
                    Err(err) => return Err(err),
                }
            }
        }
    }

    /// Everything after the first `sent` bytes, as one buffer (to wait for room in the socket); leaves
    /// this output empty.
    pub fn take_rest(&mut self, sent: usize) -> Vec<u8> {
        let rest = if !self.held.is_empty() {
            let mut rest = Vec::with_capacity(self.len().saturating_sub(sent));
            let mut skip = sent;
            for piece in self.pieces() {
                let from = skip.min(piece.len());
                skip -= from;
                rest.extend_from_slice(&piece[from..]);
            }
            rest
        } else if sent == 0 {
            std::mem::take(&mut self.bytes)
        } else {
            self.bytes.get(sent..).unwrap_or_default().to_vec()
        };
        self.clear();
        rest
    }

    /// Empties the output, keeping the buffer's memory for the next wake-up.
    pub fn clear(&mut self) {
        self.bytes.clear();
        self.held.clear();
        self.held_len = 0;
    }
}

/// The bytes of a body held in memory; `None` for a file or a stream.
fn in_memory(body: &Body) -> Option<&[u8]> {
    match body {
        Body::Empty => Some(&[]),
        Body::Bytes(bytes) => Some(bytes),
        Body::Static(bytes) => Some(bytes),
        Body::Plugin(bytes) => Some(bytes.as_bytes()),
        Body::File { .. } | Body::Stream(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Heads at even places, bodies at odd ones.
    fn output(parts: &[&[u8]]) -> Output {
        let mut output = Output::default();
        for (i, part) in parts.iter().enumerate() {
            if i % 2 == 0 {
                output.bytes().extend_from_slice(part);
            } else {
                assert!(output.push_body(Body::Bytes(part.to_vec())).is_none());
            }
        }
        output
    }

    fn whole(output: &Output) -> Vec<u8> {
        output.pieces().flatten().copied().collect()
    }

    #[test]
    fn large_bodies_are_held_and_come_out_in_order() {
        let big = vec![b'b'; HOLD_FROM];
        let out = output(&[b"head1", &big, b"head2", b"small", b"head3", &big, b""]);
        assert_eq!(out.held.len(), 2, "the small body was copied");
        let expected = [&b"head1"[..], &big, b"head2small", b"head3", &big].concat();
        assert_eq!(whole(&out), expected);
        assert_eq!(out.len(), expected.len());
    }

    #[test]
    fn the_rest_after_any_number_of_bytes_sent_is_what_follows_them() {
        let big = vec![b'x'; HOLD_FROM + 3];
        let parts: [&[u8]; 4] = [b"h1", &big, b"h2", &big];
        let all = whole(&output(&parts));
        for sent in [0, 1, 2, 3, HOLD_FROM, all.len() - 1, all.len()] {
            let mut out = output(&parts);
            assert_eq!(out.take_rest(sent), all[sent..], "{sent}");
            assert!(out.is_empty());
        }
    }

    #[test]
    fn a_file_body_is_handed_back() {
        let file = std::fs::File::open("Cargo.toml").unwrap();
        let body = Body::File {
            file,
            offset: 0,
            len: 1,
        };
        let mut out = Output::default();
        assert!(matches!(out.push_body(body), Some(Body::File { .. })));
        assert!(out.is_empty());
    }

    /// Whatever the socket takes, what it took and what is left make the whole output, in order.
    #[test]
    fn a_socket_that_takes_part_leaves_the_rest_in_order() {
        use std::io::Read;
        use std::os::fd::OwnedFd;
        use std::os::unix::net::UnixStream;

        let (server, mut client) = UnixStream::pair().unwrap();
        server.set_nonblocking(true).unwrap();
        let socket = TcpStream::from(OwnedFd::from(server));
        let big: Vec<u8> = (0..=255u8).cycle().take(1 << 20).collect();
        let parts: [&[u8]; 6] = [b"head1", &big, b"head2", b"tiny", b"head3", &big];
        let mut out = output(&parts);
        let expected = whole(&out);
        let sent = out.write_to(&socket).unwrap();
        assert!(
            sent < expected.len(),
            "a socket buffer holds less than 2 MiB"
        );
        let rest = out.take_rest(sent);
        let mut received = vec![0; sent];
        client.read_exact(&mut received).unwrap();
        received.extend_from_slice(&rest);
        assert_eq!(received, expected);
    }
}
