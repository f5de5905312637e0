//! The few system calls std does not offer: `sendfile` and the open-files limit.

use std::fs::File;
use std::io;
use std::net::TcpStream;
use std::os::fd::AsRawFd;

/// Sends up to `len` bytes of `file` from `offset` straight from the page cache to the socket.
/// Returns the bytes sent (0 only at end of file); `WouldBlock` when the socket buffer is full.
pub fn sendfile(socket: &TcpStream, file: &File, offset: u64, len: u64) -> io::Result<u64> {
    let mut off =
        libc::off_t::try_from(offset).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    let count = usize::try_from(len).unwrap_or(usize::MAX);
    // SAFETY: both descriptors are open for the duration of the call; `off` is a valid, writable off_t.
    let sent = unsafe { libc::sendfile(socket.as_raw_fd(), file.as_raw_fd(), &mut off, count) };
    if sent < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(sent as u64)
    }
}

/// `send` without SIGPIPE, as std's `write` on a socket; `more` adds `MSG_MORE`: the caller sends the rest
/// of the response (a file, by [`sendfile`]) right after, and the kernel may put both in one segment.
pub fn send(socket: &TcpStream, data: &[u8], more: bool) -> io::Result<usize> {
    let flags = libc::MSG_NOSIGNAL | if more { libc::MSG_MORE } else { 0 };
    // SAFETY: `data` is a valid, initialised buffer of `data.len()` bytes for the duration of the call.
    let sent = unsafe { libc::send(socket.as_raw_fd(), data.as_ptr().cast(), data.len(), flags) };
    if sent < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(sent as usize)
    }
}

/// Raises the soft open-files limit to the hard limit, as nginx's `worker_rlimit_nofile` does: every
/// connection is a descriptor, and the usual soft limit of 1024 would cap plugd far below its
/// `--max-connections`. Returns the limit now in force.
pub fn raise_open_files_limit() -> io::Result<u64> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `limit` is a valid, writable rlimit.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        return Err(io::Error::last_os_error());
    }
    if limit.rlim_cur < limit.rlim_max {
        let raised = libc::rlimit {
            rlim_cur: limit.rlim_max,
            rlim_max: limit.rlim_max,
        };
        // SAFETY: `raised` is a valid rlimit that only lifts the soft limit up to the hard one.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } == 0 {
            return Ok(raised.rlim_cur);
        }
    }
    Ok(limit.rlim_cur)
}

/// Reads once from `socket`, appending at most `max` bytes to `buf` without zero-filling its spare capacity
/// first (that memset would cost more than the read on a 64 KiB buffer). Returns the bytes read; 0 is EOF.
pub fn read_append(socket: &TcpStream, buf: &mut Vec<u8>, max: usize) -> io::Result<usize> {
    buf.reserve(max);
    let spare = buf.capacity() - buf.len();
    let want = spare.min(max);
    // SAFETY: the pointer is `want` bytes of `buf`'s allocated, unused capacity, which recv may write.
    let n = unsafe {
        libc::recv(
            socket.as_raw_fd(),
            buf.as_mut_ptr().add(buf.len()).cast(),
            want,
            0,
        )
    };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    let n = n as usize;
    // SAFETY: recv initialised exactly `n <= want` bytes right after the old length.
    unsafe { buf.set_len(buf.len() + n) };
    Ok(n)
}

/// Lengthens the listen queue (std binds with 128): bursts of new connections then wait in the kernel
/// instead of being dropped and retried a second later. Linux accepts `listen` again on a listening socket.
pub fn set_listen_backlog(listener: &std::net::TcpListener, backlog: i32) -> io::Result<()> {
    // SAFETY: the descriptor is a bound, listening socket owned by `listener`.
    if unsafe { libc::listen(listener.as_raw_fd(), backlog) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}
