//! Wake-ups to serve before waiting for new events: the rest of an `epoll_wait` batch, events that reached
//! a connection while it was busy, work no event will announce, expired connections, and streams whose
//! producer has more. Every worker empties this queue before it waits again, so one system call serves many
//! requests under load.
//!
//! A stream's producer may wake its connection from a thread of its own while every worker waits in
//! `epoll_wait`: [`Schedule::schedule`] then also signals an eventfd in the readiness set, so one worker
//! wakes and takes the queue at once instead of at its next timeout. A worker about to serve a connection
//! while handlers block does the same when wake-ups wait in the queue ([`Ready::wake_one`]): it may block in
//! that connection's handler, and the queue must not wait for it.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard};

use crate::poller::Event;
use crate::streaming::Schedule;
use crate::sys::EventFd;

#[derive(Default)]
pub(crate) struct Ready {
    events: Mutex<VecDeque<Event>>,
    /// The queue's length, readable without the lock.
    len: AtomicUsize,
    /// Wakes a worker waiting for events, when registered in its readiness set.
    signal: Option<EventFd>,
    /// The signal was sent and no worker has taken it yet: one pending signal wakes a worker, more would
    /// only cost system calls.
    signalled: AtomicBool,
}

impl Schedule for Ready {
    fn schedule(&self, token: u64) {
        self.push([Event::internal(token)]);
        self.wake_one();
    }
}

impl Ready {
    /// A queue whose [`Schedule::schedule`] signals `signal` (registered in the workers' readiness set).
    pub(crate) fn with_signal(signal: EventFd) -> Ready {
        Ready {
            signal: Some(signal),
            ..Ready::default()
        }
    }

    /// Wakes one worker waiting for events (unless a signal is already pending), so that it takes the
    /// queue.
    pub(crate) fn wake_one(&self) {
        if let Some(signal) = &self.signal {
            if !self.signalled.swap(true, Ordering::AcqRel) {
                signal.signal();
            }
        }
    }

    /// The signal was reported: clear it, so the next one is a new edge. Cleared before it counts as taken:
    /// a wake-up skipped in between is for a queue this worker takes next anyway.
    pub(crate) fn clear_signal(&self) {
        if let Some(signal) = &self.signal {
            signal.clear();
            self.signalled.store(false, Ordering::Release);
        }
    }

    pub(crate) fn push(&self, events: impl IntoIterator<Item = Event>) {
        let mut queue = self.lock();
        queue.extend(events);
        self.len.store(queue.len(), Ordering::Relaxed);
    }

    pub(crate) fn pop(&self) -> Option<Event> {
        if self.len.load(Ordering::Relaxed) == 0 {
            return None;
        }
        let mut queue = self.lock();
        let event = queue.pop_front();
        self.len.store(queue.len(), Ordering::Relaxed);
        event
    }

    /// Wake-ups waiting, read without the lock (so possibly a moment old).
    pub(crate) fn len(&self) -> usize {
        self.len.load(Ordering::Relaxed)
    }

    fn lock(&self) -> MutexGuard<'_, VecDeque<Event>> {
        // Each operation is one step, so a poisoned lock still holds a consistent queue.
        self.events
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wake_ups_come_out_in_the_order_they_went_in() {
        let ready = Ready::default();
        assert_eq!(ready.pop(), None);
        ready.push([Event::internal(1), Event::internal(2)]);
        ready.push([Event::internal(3)]);
        assert_eq!(ready.len(), 3);
        let order: Vec<u64> = std::iter::from_fn(|| ready.pop())
            .map(|e| e.token)
            .collect();
        assert_eq!(order, [1, 2, 3]);
        assert_eq!(ready.len(), 0);
    }

    /// The eventfd's counter, read (and so reset): how many signals were written since the last read.
    fn signals_written(fd: std::os::fd::RawFd) -> u64 {
        let mut count = [0u8; 8];
        // SAFETY: reads at most 8 bytes into a valid buffer; the eventfd is non-blocking.
        let n = unsafe { libc::read(fd, count.as_mut_ptr().cast(), count.len()) };
        if n == 8 { u64::from_ne_bytes(count) } else { 0 }
    }

    #[test]
    fn one_signal_is_pending_at_a_time_and_taking_it_allows_the_next() {
        let ready = Ready::with_signal(EventFd::new().unwrap());
        let fd = ready.signal.as_ref().unwrap().as_raw_fd();
        ready.schedule(1);
        ready.wake_one();
        ready.schedule(2);
        assert_eq!(signals_written(fd), 1, "one pending signal wakes a worker");
        ready.clear_signal();
        ready.wake_one();
        assert_eq!(
            signals_written(fd),
            1,
            "taken, the next wake-up signals again"
        );
        assert_eq!(ready.len(), 2);
    }
}
