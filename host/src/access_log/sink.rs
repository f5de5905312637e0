//! Where access-log batches are written: stderr, or a file opened for appending and reopened on demand
//! (after logrotate moved it away).
//!
//! A batch is whole lines, and no two batches interleave:
//! - Within plugd, each write holds a lock (the file's, or stderr's own lock, which `env_logger` takes too),
//!   so one batch is complete before the next starts, whatever its size.
//! - A file is opened with `O_APPEND`: each `write()` lands at the end as a unit, also when another process
//!   appends to the same file. A batch is one `write()` unless the kernel takes only part of it (a full
//!   disk), when the rest follows in the next one.
//! - A pipe (stderr into a log collector, or a FIFO as the path) is shared with other writers: POSIX keeps
//!   a `write()` of at most `PIPE_BUF` (4,096) bytes in one piece. To a pipe, batches are therefore cut at
//!   line ends into writes of at most `PIPE_BUF` bytes; only a single line longer than that can be split
//!   by another writer.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::fd::AsFd;
use std::os::unix::fs::FileTypeExt;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

/// Where the access log goes: `--access-log PATH|stderr|off`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Destination {
    Off,
    Stderr,
    /// Appended to; created if missing. `./off` or `./stderr` name files called so.
    File(PathBuf),
}

impl Destination {
    /// Parses the `--access-log` value.
    pub fn parse(value: &str) -> Result<Destination, String> {
        match value {
            "" => Err("expected a file path, `stderr` or `off`".into()),
            "off" => Ok(Destination::Off),
            "stderr" => Ok(Destination::Stderr),
            path => Ok(Destination::File(path.into())),
        }
    }
}

/// An open destination.
pub enum Sink {
    Stderr {
        pipe: bool,
    },
    File {
        path: PathBuf,
        open: Mutex<OpenFile>,
    },
}

pub struct OpenFile {
    file: File,
    pipe: bool,
}

impl Sink {
    /// Opens `destination`; `None` for [`Destination::Off`].
    pub fn open(destination: &Destination) -> io::Result<Option<Sink>> {
        Ok(match destination {
            Destination::Off => None,
            Destination::Stderr => Some(Sink::Stderr {
                pipe: stderr_is_pipe(),
            }),
            Destination::File(path) => Some(Sink::File {
                path: path.clone(),
                open: Mutex::new(OpenFile::open(path)?),
            }),
        })
    }

    /// Writes `batch`, whole lines, without interleaving with any other batch (see the module docs).
    pub fn write(&self, batch: &[u8]) -> io::Result<()> {
        match self {
            Sink::Stderr { pipe } => write_lines(&mut io::stderr().lock(), batch, *pipe),
            Sink::File { open, .. } => {
                let open = lock(open);
                write_lines(&mut &open.file, batch, open.pipe)
            }
        }
    }

    /// Opens the file again by its path, so new lines go to the file now there; the old descriptor is
    /// closed. Returns the path, or `None` when the destination is stderr (nothing to reopen). On failure
    /// the old file stays in use.
    pub fn reopen(&self) -> io::Result<Option<&Path>> {
        match self {
            Sink::Stderr { .. } => Ok(None),
            Sink::File { path, open } => {
                let reopened = OpenFile::open(path)?;
                *lock(open) = reopened;
                Ok(Some(path))
            }
        }
    }
}

impl OpenFile {
    fn open(path: &Path) -> io::Result<OpenFile> {
        let file = OpenOptions::new().append(true).create(true).open(path)?;
        let pipe = file.metadata()?.file_type().is_fifo();
        Ok(OpenFile { file, pipe })
    }
}

fn lock(open: &Mutex<OpenFile>) -> MutexGuard<'_, OpenFile> {
    // Swapping or writing the file leaves it consistent even if a panic interrupted either.
    open.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn stderr_is_pipe() -> bool {
    io::stderr()
        .as_fd()
        .try_clone_to_owned()
        .map(File::from)
        .and_then(|stderr| stderr.metadata())
        .is_ok_and(|meta| meta.file_type().is_fifo())
}

/// Most bytes a `write()` to a pipe keeps in one piece when others write to it (POSIX `PIPE_BUF`, Linux).
const PIPE_BUF: usize = 4096;

fn write_lines(out: &mut impl Write, batch: &[u8], pipe: bool) -> io::Result<()> {
    if !pipe {
        return out.write_all(batch);
    }
    pipe_pieces(batch).try_for_each(|piece| out.write_all(piece))
}

/// `batch` cut at line ends into pieces of at most [`PIPE_BUF`] bytes; a longer line is a piece alone.
fn pipe_pieces(mut batch: &[u8]) -> impl Iterator<Item = &[u8]> {
    std::iter::from_fn(move || {
        if batch.is_empty() {
            return None;
        }
        let end = if batch.len() <= PIPE_BUF {
            batch.len()
        } else {
            match batch[..PIPE_BUF].iter().rposition(|&b| b == b'\n') {
                Some(newline) => newline + 1,
                None => batch
                    .iter()
                    .position(|&b| b == b'\n')
                    .map_or(batch.len(), |newline| newline + 1),
            }
        };
        let (piece, rest) = batch.split_at(end);
        batch = rest;
        Some(piece)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn destinations_parse() {
        assert_eq!(Destination::parse("off"), Ok(Destination::Off));
        assert_eq!(Destination::parse("stderr"), Ok(Destination::Stderr));
        assert_eq!(
            Destination::parse("/var/log/plugd/access.log"),
            Ok(Destination::File("/var/log/plugd/access.log".into()))
        );
        assert_eq!(
            Destination::parse("./off"),
            Ok(Destination::File("./off".into()))
        );
        assert!(Destination::parse("").is_err());
    }

    #[test]
    fn pipe_pieces_are_whole_lines_within_pipe_buf() {
        let line = [b'a'; 99].iter().chain(b"\n").copied().collect::<Vec<u8>>();
        let batch: Vec<u8> = line.iter().copied().cycle().take(100 * 100).collect();
        let pieces: Vec<&[u8]> = pipe_pieces(&batch).collect();
        assert_eq!(pieces.concat(), batch);
        for piece in &pieces {
            assert!(piece.len() <= PIPE_BUF && piece.ends_with(b"\n"));
            assert_eq!(piece.len() % 100, 0);
        }
        assert_eq!(pieces.len(), 3);
    }

    #[test]
    fn a_line_longer_than_pipe_buf_is_a_piece_alone() {
        let long = vec![b'x'; PIPE_BUF + 10];
        let batch = [&b"short\n"[..], &long, b"\n", b"tail\n"].concat();
        let pieces: Vec<&[u8]> = pipe_pieces(&batch).collect();
        assert_eq!(
            pieces,
            [&b"short\n"[..], &[&long[..], b"\n"].concat(), b"tail\n"]
        );
    }

    #[test]
    fn a_file_is_appended_to_and_reopened_by_path() {
        let dir = std::env::temp_dir().join(format!("plugd-sink-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("access.log");
        std::fs::write(&path, "old\n").unwrap();
        let sink = Sink::open(&Destination::File(path.clone()))
            .unwrap()
            .unwrap();
        sink.write(b"one\n").unwrap();
        let rotated = dir.join("access.log.1");
        std::fs::rename(&path, &rotated).unwrap();
        sink.write(b"two\n").unwrap();
        assert_eq!(sink.reopen().unwrap(), Some(path.as_path()));
        sink.write(b"three\n").unwrap();
        assert_eq!(
            std::fs::read_to_string(&rotated).unwrap(),
            "old\none\ntwo\n"
        );
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "three\n");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
