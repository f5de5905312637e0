//! Wake-ups to serve before waiting for new events: the rest of an `epoll_wait` batch, events that reached
//! a connection while it was busy, work no event will announce, expired connections, and streams whose
//! producer has more. Every worker empties this queue before it waits again, so one system call serves many
//! requests under load.
//!
//! A stream's producer may wake its connection from a thread of its own while every worker waits in
//! `epoll_wait`: [`Schedule::schedule`] then also signals an eventfd in the readiness set, so one worker
//! wakes and takes the queue at once instead of at its next timeout.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
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
}

impl Schedule for Ready {
    fn schedule(&self, token: u64) {
        self.push([Event::internal(token)]);
        if let Some(signal) = &self.signal {
            signal.signal();
        }
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

    /// The signal was reported: clear it, so the next one is a new edge.
    pub(crate) fn clear_signal(&self) {
        if let Some(signal) = &self.signal {
            signal.clear();
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
}
