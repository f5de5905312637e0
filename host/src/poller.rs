//! The readiness set every worker waits on: a thin, safe wrapper over Linux `epoll`.
//!
//! Why epoll directly: the leader/followers pool needs several threads waiting on ONE set at once, and
//! `mio::Poll` waits through `&mut self`.
//!
//! A connection is registered once, edge-triggered, for reading and writing: no `epoll_ctl` per request
//! (re-arming a one-shot registration after every answer was one of four system calls per request). An
//! edge-triggered event can reach any worker at any moment, also while another serves that connection, so
//! exclusive ownership is kept by the connection table instead (`connections.rs`). The listener is
//! level-triggered: a worker accepts one connection per event, and the next wait reports it again while
//! more are pending.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::time::Duration;

/// A connection's registration: every arrival of bytes or hang-up, reported once.
const CONNECTION: u32 = (libc::EPOLLIN | libc::EPOLLRDHUP | libc::EPOLLET) as u32;
/// The same, and room in the send buffer. Not from the start: a fresh socket is writable, and that first
/// report would wake a worker for nothing on every new connection.
const CONNECTION_WRITES: u32 = CONNECTION | libc::EPOLLOUT as u32;
/// The listener's registration, level-triggered: reported to every wait while connections are pending.
const LISTENER: u32 = libc::EPOLLIN as u32;
/// A wake-up signal: readable, edge-triggered.
const SIGNAL: u32 = (libc::EPOLLIN | libc::EPOLLET) as u32;
const HANGUP: u32 = (libc::EPOLLRDHUP | libc::EPOLLHUP | libc::EPOLLERR) as u32;

/// Room for the events one `epoll_wait` returns.
pub struct Events {
    list: Vec<libc::epoll_event>,
    len: usize,
}

impl Events {
    pub fn with_capacity(capacity: usize) -> Events {
        Events {
            list: vec![libc::epoll_event { events: 0, u64: 0 }; capacity.max(1)],
            len: 0,
        }
    }

    /// The events the last wait returned.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = Event> + '_ {
        self.list[..self.len].iter().map(|event| Event {
            token: event.u64,
            hangup: event.events & HANGUP != 0,
        })
    }
}

/// What woke a connection (or the listener).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Event {
    pub token: u64,
    /// The peer shut down its sending side (or the connection broke). Reported once, edge-triggered, so it
    /// must be remembered: the bytes that came before it may be read before the end of input is seen.
    pub hangup: bool,
}

impl Event {
    /// A wake-up that no readiness event brought (work left over, an expired deadline).
    pub fn internal(token: u64) -> Event {
        Event {
            token,
            hangup: false,
        }
    }
}

pub struct Poller {
    epoll: OwnedFd,
}

impl Poller {
    pub fn new() -> io::Result<Poller> {
        // SAFETY: epoll_create1 takes no pointers; a non-negative result is a new fd that we own.
        let fd = cvt(unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) })?;
        // SAFETY: `fd` was just returned by the kernel and is owned by nobody else.
        Ok(Poller {
            epoll: unsafe { OwnedFd::from_raw_fd(fd) },
        })
    }

    /// Watches a connection for good: until it is closed, every new readiness is reported once. Readiness
    /// it has already is reported at once.
    pub fn add_connection(&self, fd: RawFd, token: u64) -> io::Result<()> {
        self.ctl(libc::EPOLL_CTL_ADD, fd, token, CONNECTION)
    }

    /// Reports room in `fd`'s send buffer too, from now on (once a write found it full). Writability it
    /// has already is reported at once, so room made since that write is not missed.
    pub fn watch_writes(&self, fd: RawFd, token: u64) -> io::Result<()> {
        self.ctl(libc::EPOLL_CTL_MOD, fd, token, CONNECTION_WRITES)
    }

    /// Watches the listener: every wait reports it while connections are pending.
    pub fn add_listener(&self, fd: RawFd, token: u64) -> io::Result<()> {
        self.ctl(libc::EPOLL_CTL_ADD, fd, token, LISTENER)
    }

    /// Watches a wake-up signal (an eventfd): reported once each time it is signalled after being cleared.
    pub fn add_signal(&self, fd: RawFd, token: u64) -> io::Result<()> {
        self.ctl(libc::EPOLL_CTL_ADD, fd, token, SIGNAL)
    }

    /// Stops reporting the listener (while new connections cannot be accepted) until
    /// [`Poller::resume_listener`].
    pub fn pause_listener(&self, fd: RawFd, token: u64) -> io::Result<()> {
        self.ctl(libc::EPOLL_CTL_MOD, fd, token, 0)
    }

    pub fn resume_listener(&self, fd: RawFd, token: u64) -> io::Result<()> {
        self.ctl(libc::EPOLL_CTL_MOD, fd, token, LISTENER)
    }

    /// Stops watching `fd` (closing it does so too; this is for descriptors that stay open).
    pub fn delete(&self, fd: RawFd) -> io::Result<()> {
        // SAFETY: a null event pointer is allowed for EPOLL_CTL_DEL since Linux 2.6.9.
        cvt(unsafe {
            libc::epoll_ctl(
                self.epoll.as_raw_fd(),
                libc::EPOLL_CTL_DEL,
                fd,
                std::ptr::null_mut(),
            )
        })
        .map(drop)
    }

    /// Waits up to `timeout` for events, filling `events`; returns how many came (0 on timeout or signal).
    pub fn wait(&self, events: &mut Events, timeout: Duration) -> io::Result<usize> {
        let millis = i32::try_from(timeout.as_millis()).unwrap_or(i32::MAX);
        let capacity = i32::try_from(events.list.len()).unwrap_or(i32::MAX);
        // SAFETY: `events.list` is a valid buffer for `capacity` events.
        let n = unsafe {
            libc::epoll_wait(
                self.epoll.as_raw_fd(),
                events.list.as_mut_ptr(),
                capacity,
                millis,
            )
        };
        events.len = 0;
        match n {
            -1 if io::Error::last_os_error().kind() == io::ErrorKind::Interrupted => Ok(0),
            -1 => Err(io::Error::last_os_error()),
            n => {
                events.len = n as usize;
                Ok(events.len)
            }
        }
    }

    fn ctl(&self, op: i32, fd: RawFd, token: u64, events: u32) -> io::Result<()> {
        let mut event = libc::epoll_event { events, u64: token };
        // SAFETY: `event` outlives the call; the kernel copies it.
        cvt(unsafe { libc::epoll_ctl(self.epoll.as_raw_fd(), op, fd, &mut event) }).map(drop)
    }
}

fn cvt(ret: i32) -> io::Result<i32> {
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}
