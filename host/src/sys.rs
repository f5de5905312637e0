//! The few system calls std does not offer: `sendfile`, `accept4`, `recv` into spare capacity, a non-blocking
//! send of what fits, `sendmsg` of several buffers, a bounded wait for input, an eventfd to wake the poller,
//! the open-files limit, a listener shared with other processes (`SO_REUSEPORT`), a thread's id and kernel
//! state (to tell a blocked worker from a preempted one), and the coarse monotonic clock.

use std::fs::File;
use std::io;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV6, TcpListener, TcpStream};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

/// Sends up to `len` bytes of `file` from `offset` straight from the page cache to the socket.
/// Returns the bytes sent (0 only at end of file); `WouldBlock` when the socket buffer is full.
pub(crate) fn sendfile(socket: &TcpStream, file: &File, offset: u64, len: u64) -> io::Result<u64> {
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
pub(crate) fn send(socket: &TcpStream, data: &[u8], more: bool) -> io::Result<usize> {
    let flags = libc::MSG_NOSIGNAL | if more { libc::MSG_MORE } else { 0 };
    // SAFETY: `data` is a valid, initialised buffer of `data.len()` bytes for the duration of the call.
    let sent = unsafe { libc::send(socket.as_raw_fd(), data.as_ptr().cast(), data.len(), flags) };
    if sent < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(sent as usize)
    }
}

/// [`send`] of several buffers in order, in one system call (`sendmsg`: a `writev` without SIGPIPE).
pub(crate) fn send_vectored(socket: &TcpStream, pieces: &[io::IoSlice<'_>]) -> io::Result<usize> {
    // SAFETY: a zeroed msghdr is a valid "no address, no control data" header.
    let mut message: libc::msghdr = unsafe { std::mem::zeroed() };
    // `IoSlice` is guaranteed ABI-compatible with `iovec` on Unix; sendmsg only reads through the pointer.
    message.msg_iov = pieces.as_ptr().cast_mut().cast();
    message.msg_iovlen = pieces.len() as _;
    // SAFETY: `message` points at `pieces.len()` valid iovecs, each a live, initialised buffer, for the
    // duration of the call.
    let sent = unsafe { libc::sendmsg(socket.as_raw_fd(), &message, libc::MSG_NOSIGNAL) };
    if sent < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(sent as usize)
    }
}

/// Writes as much of `data` as the socket takes now (it is non-blocking); `more`: the rest of the response
/// follows at once.
pub(crate) fn send_available(socket: &TcpStream, data: &[u8], more: bool) -> io::Result<usize> {
    let mut sent = 0;
    while sent < data.len() {
        match send(socket, &data[sent..], more) {
            Ok(0) => return Err(io::Error::from(io::ErrorKind::WriteZero)),
            Ok(n) => sent += n,
            Err(err) if err.kind() == io::ErrorKind::WouldBlock => break,
            Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
            Err(err) => return Err(err),
        }
    }
    Ok(sent)
}

/// Waits up to `timeout` for `socket` to have bytes to read (or its end, or an error); `false` on timeout.
pub(crate) fn wait_readable(socket: &TcpStream, timeout: std::time::Duration) -> io::Result<bool> {
    let mut fd = libc::pollfd {
        fd: socket.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    // Rounded up, so a wait never ends just short of its deadline and spins.
    let millis = i32::try_from(timeout.as_micros().div_ceil(1000)).unwrap_or(i32::MAX);
    // SAFETY: `fd` is one valid pollfd for the duration of the call.
    match unsafe { libc::poll(&mut fd, 1, millis) } {
        -1 if io::Error::last_os_error().kind() == io::ErrorKind::Interrupted => Ok(false),
        -1 => Err(io::Error::last_os_error()),
        n => Ok(n > 0),
    }
}

/// An eventfd: a counter other threads bump to wake a thread waiting in `epoll_wait`.
pub(crate) struct EventFd(std::os::fd::OwnedFd);

impl EventFd {
    pub(crate) fn new() -> io::Result<EventFd> {
        // SAFETY: no pointers; a non-negative result is a new descriptor we own.
        let fd = unsafe { libc::eventfd(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `fd` was just returned by the kernel and is owned by nobody else.
        Ok(EventFd(unsafe { std::os::fd::OwnedFd::from_raw_fd(fd) }))
    }

    /// Makes the descriptor readable (and so reported by the poller it is registered in).
    pub(crate) fn signal(&self) {
        let one = 1u64.to_ne_bytes();
        // SAFETY: writes 8 bytes from a valid buffer. A full counter (EAGAIN) is already readable: fine.
        let _ = unsafe { libc::write(self.0.as_raw_fd(), one.as_ptr().cast(), one.len()) };
    }

    /// Resets the counter, so the next signal is a new edge.
    pub(crate) fn clear(&self) {
        let mut count = [0u8; 8];
        // SAFETY: reads at most 8 bytes into a valid buffer; EAGAIN (already clear) is fine.
        let _ = unsafe { libc::read(self.0.as_raw_fd(), count.as_mut_ptr().cast(), count.len()) };
    }

    pub(crate) fn as_raw_fd(&self) -> std::os::fd::RawFd {
        self.0.as_raw_fd()
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
pub(crate) fn read_append(socket: &TcpStream, buf: &mut Vec<u8>, max: usize) -> io::Result<usize> {
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

/// The calling thread's kernel id, for [`is_sleeping`].
pub(crate) fn thread_id() -> i32 {
    // SAFETY: gettid takes no arguments and cannot fail.
    unsafe { libc::gettid() }
}

/// Whether thread `tid` of this process sleeps in the kernel (state S or D: waiting for I/O, a lock, a
/// timer), as opposed to running or waiting for a CPU. A thread that has been inside one request for long
/// is either blocked (sleeping) or only preempted, and only this tells them apart.
pub(crate) fn is_sleeping(tid: i32) -> bool {
    let Ok(stat) = std::fs::read(format!("/proc/self/task/{tid}/stat")) else {
        return false;
    };
    // "TID (COMM) STATE ...": the state follows the last ')', as the command name may hold anything.
    stat.iter()
        .rposition(|&b| b == b')')
        .and_then(|at| stat.get(at + 2))
        .is_some_and(|state| matches!(state, b'S' | b'D'))
}

/// Lengthens the listen queue (std binds with 128): bursts of new connections then wait in the kernel
/// instead of being dropped and retried a second later. Linux accepts `listen` again on a listening socket.
pub(crate) fn set_listen_backlog(listener: &std::net::TcpListener, backlog: i32) -> io::Result<()> {
    // SAFETY: the descriptor is a bound, listening socket owned by `listener`.
    if unsafe { libc::listen(listener.as_raw_fd(), backlog) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// A listening socket on `addr` that other processes may bind too (`SO_REUSEPORT`, set before `bind`): every
/// plugd started with `--reuse-port` on the same address and port gets its own queue, and the kernel hashes
/// each new connection to one of them. `SO_REUSEADDR` as std sets it; the descriptor is close-on-exec.
pub(crate) fn listen_reuse_port(addr: SocketAddr, backlog: i32) -> io::Result<TcpListener> {
    let family = match addr {
        SocketAddr::V4(_) => libc::AF_INET,
        SocketAddr::V6(_) => libc::AF_INET6,
    };
    // SAFETY: plain socket(2) call; the result is checked before use.
    let fd = unsafe { libc::socket(family, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` is a new socket that nothing else owns; the OwnedFd closes it on every error below.
    let socket = unsafe { OwnedFd::from_raw_fd(fd) };
    set_socket_flag(&socket, libc::SOL_SOCKET, libc::SO_REUSEADDR)?;
    set_socket_flag(&socket, libc::SOL_SOCKET, libc::SO_REUSEPORT)?;
    let (storage, len) = socket_address(addr);
    // SAFETY: `storage` holds a sockaddr of `len` bytes for `family`, valid for the duration of the call.
    if unsafe { libc::bind(socket.as_raw_fd(), (&raw const storage).cast(), len) } != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the descriptor is a bound stream socket owned by `socket`.
    if unsafe { libc::listen(socket.as_raw_fd(), backlog) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(TcpListener::from(socket))
}

/// `addr` as the C `sockaddr_in` / `sockaddr_in6` the kernel reads, and its length.
fn socket_address(addr: SocketAddr) -> (libc::sockaddr_storage, libc::socklen_t) {
    // SAFETY: an all-zero sockaddr_storage is a valid value of this plain C struct.
    let mut storage: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    let len = match addr {
        SocketAddr::V4(v4) => {
            // SAFETY: sockaddr_storage is large and aligned enough for a sockaddr_in.
            let sin = unsafe { &mut *(&raw mut storage).cast::<libc::sockaddr_in>() };
            sin.sin_family = libc::AF_INET as libc::sa_family_t;
            sin.sin_port = v4.port().to_be();
            sin.sin_addr.s_addr = u32::from(*v4.ip()).to_be();
            std::mem::size_of::<libc::sockaddr_in>()
        }
        SocketAddr::V6(v6) => {
            // SAFETY: sockaddr_storage is large and aligned enough for a sockaddr_in6.
            let sin6 = unsafe { &mut *(&raw mut storage).cast::<libc::sockaddr_in6>() };
            sin6.sin6_family = libc::AF_INET6 as libc::sa_family_t;
            sin6.sin6_port = v6.port().to_be();
            sin6.sin6_addr.s6_addr = v6.ip().octets();
            sin6.sin6_flowinfo = v6.flowinfo();
            sin6.sin6_scope_id = v6.scope_id();
            std::mem::size_of::<libc::sockaddr_in6>()
        }
    };
    (storage, len as libc::socklen_t)
}

/// Accepts one connection whose socket is non-blocking from the start (`accept4` with `SOCK_NONBLOCK`):
/// one system call where std's `accept` and `set_nonblocking` take two. `TCP_NODELAY` comes from the
/// listener ([`set_nodelay`]), which Linux copies to every accepted socket.
pub(crate) fn accept_nonblocking(listener: &TcpListener) -> io::Result<(TcpStream, SocketAddr)> {
    // SAFETY: an all-zero sockaddr_storage is a valid value of this plain C struct.
    let mut storage: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    let mut len = std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
    // SAFETY: `storage` and `len` are valid and writable, `len` is the size of `storage`.
    let fd = unsafe {
        libc::accept4(
            listener.as_raw_fd(),
            (&raw mut storage).cast(),
            &mut len,
            libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` is a new, connected socket that nothing else owns.
    let socket = unsafe { TcpStream::from_raw_fd(fd) };
    let peer = match i32::from(storage.ss_family) {
        libc::AF_INET => {
            // SAFETY: the kernel wrote a sockaddr_in for an AF_INET peer; storage is large and aligned enough.
            let addr = unsafe { &*(&raw const storage).cast::<libc::sockaddr_in>() };
            SocketAddr::from((
                Ipv4Addr::from(u32::from_be(addr.sin_addr.s_addr)),
                u16::from_be(addr.sin_port),
            ))
        }
        libc::AF_INET6 => {
            // SAFETY: the kernel wrote a sockaddr_in6 for an AF_INET6 peer; storage is large and aligned enough.
            let addr = unsafe { &*(&raw const storage).cast::<libc::sockaddr_in6>() };
            SocketAddr::V6(SocketAddrV6::new(
                Ipv6Addr::from(addr.sin6_addr.s6_addr),
                u16::from_be(addr.sin6_port),
                addr.sin6_flowinfo,
                addr.sin6_scope_id,
            ))
        }
        family => {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("accepted a socket of address family {family}"),
            ));
        }
    };
    Ok((socket, peer))
}

/// Sets `TCP_NODELAY` on a listening socket, so that every connection it accepts starts with it.
pub(crate) fn set_nodelay(listener: &TcpListener) -> io::Result<()> {
    set_socket_flag(listener, libc::IPPROTO_TCP, libc::TCP_NODELAY)
}

/// Turns on the boolean socket option `level`/`name`.
fn set_socket_flag(socket: &impl AsRawFd, level: libc::c_int, name: libc::c_int) -> io::Result<()> {
    let on: libc::c_int = 1;
    // SAFETY: `on` is a valid c_int for the duration of the call, and its size is passed.
    let ret = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            level,
            name,
            (&raw const on).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if ret != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// `CLOCK_MONOTONIC_COARSE`: the monotonic clock as of the kernel's last tick (1-4 ms), read without
/// touching the hardware counter. 13 ns against 59 ns for the precise clock on this project's 2-core VM,
/// where one read per request was a third of what an access-log line cost.
pub fn coarse_monotonic() -> Option<std::time::Duration> {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `now` is a valid, writable timespec; this clock id exists on every Linux since 2.6.32.
    let ret = unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC_COARSE, &mut now) };
    (ret == 0).then(|| std::time::Duration::new(now.tv_sec as u64, now.tv_nsec as u32))
}

#[cfg(test)]
mod tests {
    use std::io::Read;

    use super::*;

    #[test]
    fn a_thread_waiting_on_a_lock_is_sleeping_and_a_running_one_is_not() {
        let (tx, rx) = std::sync::mpsc::channel();
        let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
        let waiter = std::thread::spawn(move || {
            tx.send(thread_id()).unwrap();
            done_rx.recv().unwrap();
        });
        let tid = rx.recv().unwrap();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while !is_sleeping(tid) {
            assert!(
                std::time::Instant::now() < deadline,
                "the waiting thread never slept"
            );
            std::thread::yield_now();
        }
        assert!(!is_sleeping(thread_id()), "the thread asking is running");
        done_tx.send(()).unwrap();
        waiter.join().unwrap();
    }

    #[test]
    fn accepted_sockets_are_nonblocking_with_nodelay_and_know_their_peer() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        set_nodelay(&listener).unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (mut socket, peer) = accept_nonblocking(&listener).unwrap();
        assert_eq!(peer, client.local_addr().unwrap());
        assert!(
            socket.nodelay().unwrap(),
            "TCP_NODELAY is inherited from the listener"
        );
        let err = socket.read(&mut [0; 1]).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::WouldBlock);
    }

    #[test]
    fn two_listeners_share_a_port_with_reuse_port_and_a_plain_bind_is_refused() {
        let first = listen_reuse_port("127.0.0.1:0".parse().unwrap(), 16).unwrap();
        let addr = first.local_addr().unwrap();
        let second = listen_reuse_port(addr, 16).unwrap();
        assert_eq!(second.local_addr().unwrap(), addr);
        let err = TcpListener::bind(addr).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::AddrInUse);
        TcpStream::connect(addr).unwrap();
    }

    #[test]
    fn a_reuse_port_listener_on_ipv6_loopback_accepts() {
        // A machine without IPv6 refuses the bind itself; then there is nothing to check.
        let Ok(listener) = listen_reuse_port("[::1]:0".parse().unwrap(), 16) else {
            return;
        };
        let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (_, peer) = accept_nonblocking(&listener).unwrap();
        assert_eq!(peer, client.local_addr().unwrap());
    }
}
