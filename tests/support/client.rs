//! A raw HTTP/1.1 client over `std::net::TcpStream`: write any bytes, including malformed ones, and read the
//! answers byte-exact. Every read is bounded by [`IO_TIMEOUT`].

use std::io::{self, ErrorKind, Read, Write};
use std::net::{Ipv4Addr, Shutdown, SocketAddr, TcpStream};
use std::os::fd::FromRawFd;
use std::time::{Duration, Instant};

use crate::{Response, ResponseReader};

/// Default bound on any single read from the server in the raw helpers.
pub const IO_TIMEOUT: Duration = Duration::from_secs(10);

/// Connects with [`IO_TIMEOUT`] on reads and writes and `TCP_NODELAY`.
pub fn connect(addr: SocketAddr) -> TcpStream {
    let stream = TcpStream::connect_timeout(&addr, IO_TIMEOUT)
        .unwrap_or_else(|e| panic!("connect {addr}: {e}"));
    stream.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    stream.set_write_timeout(Some(IO_TIMEOUT)).unwrap();
    stream.set_nodelay(true).unwrap();
    stream
}

/// Like [`connect`], from the local address `local` (another loopback address such as 127.0.0.2 is another
/// client to the server). IPv4 only.
pub fn connect_from(local: Ipv4Addr, addr: SocketAddr) -> TcpStream {
    let SocketAddr::V4(remote) = addr else {
        panic!("connect_from: {addr} is not IPv4");
    };
    let sockaddr = |ip: Ipv4Addr, port: u16| libc::sockaddr_in {
        sin_family: libc::AF_INET as libc::sa_family_t,
        sin_port: port.to_be(),
        sin_addr: libc::in_addr {
            s_addr: u32::from_ne_bytes(ip.octets()),
        },
        sin_zero: [0; 8],
    };
    let len = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
    // SAFETY: plain socket calls on a descriptor this function owns (the TcpStream closes it on drop), with
    // pointers to live, correctly sized sockaddr_in values.
    let stream = unsafe {
        let fd = libc::socket(libc::AF_INET, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0);
        assert!(fd >= 0, "socket: {}", io::Error::last_os_error());
        let stream = TcpStream::from_raw_fd(fd);
        let from = sockaddr(local, 0);
        let bound = libc::bind(fd, (&raw const from).cast(), len);
        assert_eq!(bound, 0, "bind {local}: {}", io::Error::last_os_error());
        let to = sockaddr(*remote.ip(), remote.port());
        let connected = libc::connect(fd, (&raw const to).cast(), len);
        assert_eq!(
            connected,
            0,
            "connect {addr}: {}",
            io::Error::last_os_error()
        );
        stream
    };
    stream.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    stream.set_write_timeout(Some(IO_TIMEOUT)).unwrap();
    stream.set_nodelay(true).unwrap();
    stream
}

/// Writes `bytes` on a fresh connection and reads until the server closes it. Panics if the server has not
/// closed within [`IO_TIMEOUT`] (so send `Connection: close`, or a request the server must close on).
pub fn send_raw(addr: SocketAddr, bytes: &[u8]) -> Vec<u8> {
    let mut stream = connect(addr);
    // The server may answer and close before reading everything (e.g. 413): a failed write is not the test's
    // concern, what comes back is.
    let _ = stream.write_all(bytes);
    match read_until_close(&mut stream, IO_TIMEOUT) {
        Ok(bytes) => bytes,
        Err(got) => panic!(
            "server did not close the connection within {IO_TIMEOUT:?}; received so far:\n{}",
            String::from_utf8_lossy(&got)
        ),
    }
}

/// Reads until EOF (or a reset, which also ends the connection). `Err(bytes so far)` if `timeout` passes first.
pub fn read_until_close(stream: &mut TcpStream, timeout: Duration) -> Result<Vec<u8>, Vec<u8>> {
    let deadline = Instant::now() + timeout;
    let mut got = Vec::new();
    let mut buf = [0u8; 8192];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(got);
        }
        stream.set_read_timeout(Some(left)).unwrap();
        match stream.read(&mut buf) {
            Ok(0) => return Ok(got),
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                return Err(got);
            }
            // Reset or aborted: the server closed.
            Err(_) => return Ok(got),
        }
    }
}

/// `GET path` on a fresh connection with `Connection: close`, parsed.
pub fn get(addr: SocketAddr, path: &str) -> Response {
    let mut conn = Conn::open(addr);
    conn.send(format!("GET {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n").as_bytes());
    conn.read_response()
        .unwrap_or_else(|e| panic!("GET {path}: {e}"))
}

/// A raw client connection: write any bytes, read parsed responses one at a time.
pub struct Conn {
    reader: ResponseReader<TcpStream>,
}

impl Conn {
    pub fn open(addr: SocketAddr) -> Conn {
        Conn {
            reader: ResponseReader::new(connect(addr)),
        }
    }

    /// The underlying socket (to change timeouts, write without method tracking, ...).
    pub fn stream(&mut self) -> &mut TcpStream {
        self.reader.source()
    }

    /// Writes `bytes` as they are, noting the methods of the request lines in them so HEAD responses are read
    /// without a body.
    pub fn send(&mut self, bytes: &[u8]) {
        self.try_send(bytes)
            .unwrap_or_else(|e| panic!("write to server: {e}"));
    }

    /// Like [`Conn::send`], returning the write error instead of panicking (the server may have closed).
    pub fn try_send(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.reader.note_methods(bytes);
        self.reader.source().write_all(bytes)
    }

    /// Half-closes the write side: the server sees EOF after what was sent.
    pub fn shutdown_write(&mut self) {
        self.reader.source().shutdown(Shutdown::Write).unwrap();
    }

    /// See [`ResponseReader::read_response`]; each read waits at most [`IO_TIMEOUT`].
    pub fn read_response(&mut self) -> io::Result<Response> {
        self.reader.read_response()
    }

    /// See [`ResponseReader::read_final_response`].
    pub fn read_final_response(&mut self) -> io::Result<Response> {
        self.reader.read_final_response()
    }

    /// `Ok(())` if the server closes the connection (EOF or reset) within `timeout` without sending anything
    /// more; otherwise what happened instead (bytes arrived, or it stayed open).
    pub fn expect_closed(&mut self, timeout: Duration) -> Result<(), String> {
        match self.read_rest(timeout) {
            Ok(bytes) if bytes.is_empty() => Ok(()),
            Ok(bytes) => Err(format!(
                "got more bytes before close: {:?}",
                String::from_utf8_lossy(&bytes)
            )),
            Err(bytes) => Err(format!(
                "still open after {timeout:?} (received {:?})",
                String::from_utf8_lossy(&bytes)
            )),
        }
    }

    /// Everything the server sends until it closes, after any buffered bytes; `Err(bytes so far)` if it is
    /// still open after `timeout`.
    pub fn read_rest(&mut self, timeout: Duration) -> Result<Vec<u8>, Vec<u8>> {
        let mut got = self.reader.take_buffered();
        let result = read_until_close(self.reader.source(), timeout);
        self.reader
            .source()
            .set_read_timeout(Some(IO_TIMEOUT))
            .unwrap();
        match result {
            Ok(more) => {
                got.extend(more);
                Ok(got)
            }
            Err(more) => {
                got.extend(more);
                Err(got)
            }
        }
    }
}
