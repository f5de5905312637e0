//! The readiness set every worker waits on: a thin, safe wrapper over Linux `epoll`.
//!
//! Why epoll directly: the leader/followers pool needs several threads waiting on ONE set at once, and
//! `mio::Poll` waits through `&mut self`. Every registration is `EPOLLONESHOT`, so an event hands its
//! connection to exactly one worker, which owns it until it re-arms it (DESIGN.md, "The path of one request").

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::time::Duration;

/// What a registration waits for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Interest {
    /// Bytes to read (or the peer closed).
    Read,
    /// Room in the send buffer for pending output.
    Write,
}

impl Interest {
    fn bits(self) -> u32 {
        let ready = match self {
            Interest::Read => libc::EPOLLIN,
            Interest::Write => libc::EPOLLOUT,
        };
        (ready | libc::EPOLLONESHOT) as u32
    }
}

/// One readiness notification: the token the registration was made with.
#[derive(Clone, Copy, Debug)]
pub struct Event {
    pub token: u64,
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

    /// Starts watching `fd`; the first event disarms it until [`Poller::rearm`].
    pub fn add(&self, fd: RawFd, token: u64, interest: Interest) -> io::Result<()> {
        self.ctl(libc::EPOLL_CTL_ADD, fd, token, interest)
    }

    /// Watches `fd` again after an event was taken (re-checks readiness, so nothing is lost meanwhile).
    pub fn rearm(&self, fd: RawFd, token: u64, interest: Interest) -> io::Result<()> {
        self.ctl(libc::EPOLL_CTL_MOD, fd, token, interest)
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

    /// Waits up to `timeout` for one event. One event per call: a worker serves one connection per wake-up,
    /// so a handler that blocks never holds other ready connections hostage.
    pub fn wait(&self, timeout: Duration) -> io::Result<Option<Event>> {
        let mut event = libc::epoll_event { events: 0, u64: 0 };
        let millis = i32::try_from(timeout.as_millis()).unwrap_or(i32::MAX);
        // SAFETY: `event` is a valid buffer for exactly the one event we ask for.
        match unsafe { libc::epoll_wait(self.epoll.as_raw_fd(), &mut event, 1, millis) } {
            -1 if io::Error::last_os_error().kind() == io::ErrorKind::Interrupted => Ok(None),
            -1 => Err(io::Error::last_os_error()),
            0 => Ok(None),
            _ => Ok(Some(Event { token: event.u64 })),
        }
    }

    fn ctl(&self, op: i32, fd: RawFd, token: u64, interest: Interest) -> io::Result<()> {
        let mut event = libc::epoll_event {
            events: interest.bits(),
            u64: token,
        };
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
