//! Every open connection and where it is: parked in the readiness set (with its deadline) or held by the
//! one worker serving it. No thread sits on an idle connection, so its only cost is its entry here.
//!
//! A token names a slot and that slot's generation, so an event that arrives for a connection already
//! closed (and its slot reused) is recognised as stale and ignored.
//!
//! Events are edge-triggered and reach any worker, also while another serves the connection. Such an
//! event is not lost: it marks the busy slot, and the serving worker, when it parks the connection, learns
//! that it must be served again (the bytes may have arrived after its last read).

use std::sync::Mutex;
use std::time::Instant;

use crate::conn::Conn;
use crate::poller::Event;

/// Poller token of the listening socket; connection tokens never reach it (their generation is < 2^32 - 1).
pub const LISTENER: u64 = u64::MAX;

#[derive(Default)]
pub struct Connections {
    table: Mutex<Table>,
}

#[derive(Default)]
struct Table {
    slots: Vec<Slot>,
    free: Vec<u32>,
    open: usize,
}

#[derive(Default)]
struct Slot {
    generation: u32,
    state: State,
}

#[derive(Default)]
enum State {
    #[default]
    Free,
    /// Waiting in the poller; whoever takes it next (event or sweep) owns it.
    Parked(Box<Conn>),
    /// A worker is serving it; `notified`: an event came meanwhile (`hangup`: reporting a hang-up).
    Busy { notified: bool, hangup: bool },
}

fn token(index: u32, generation: u32) -> u64 {
    (u64::from(generation) << 32) | u64::from(index)
}

fn split(token: u64) -> (usize, u32) {
    ((token & 0xffff_ffff) as usize, (token >> 32) as u32)
}

impl Connections {
    /// Parks a new connection unless `max` are already open (then hands it back for a 503).
    pub fn insert(&self, conn: Box<Conn>, max: usize) -> Result<u64, Box<Conn>> {
        let mut table = self.lock();
        if table.open >= max {
            return Err(conn);
        }
        table.open += 1;
        let index = match table.free.pop() {
            Some(index) => index,
            None => {
                table.slots.push(Slot::default());
                (table.slots.len() - 1) as u32
            }
        };
        let slot = &mut table.slots[index as usize];
        slot.state = State::Parked(conn);
        Ok(token(index, slot.generation))
    }

    /// Takes the connection an event was for; `None` if the event is stale, or if a worker is serving the
    /// connection (which then learns of the event when it parks it).
    pub fn take(&self, event: Event) -> Option<Box<Conn>> {
        let (index, generation) = split(event.token);
        let mut table = self.lock();
        let slot = table
            .slots
            .get_mut(index)
            .filter(|slot| slot.generation == generation)?;
        if let State::Busy { notified, hangup } = &mut slot.state {
            *notified = true;
            *hangup |= event.hangup;
            return None;
        }
        let busy = State::Busy {
            notified: false,
            hangup: false,
        };
        match std::mem::replace(&mut slot.state, busy) {
            State::Parked(mut conn) => {
                if event.hangup {
                    conn.note_hangup();
                }
                Some(conn)
            }
            other => {
                slot.state = other;
                None
            }
        }
    }

    /// Returns a connection a worker served to the table, and the event that came while it was being
    /// served, if one did: it must then be served again.
    pub fn park(&self, token: u64, conn: Box<Conn>) -> Option<Event> {
        let (index, _) = split(token);
        let mut table = self.lock();
        let slot = table.slots.get_mut(index)?;
        let missed = match slot.state {
            State::Busy {
                notified: true,
                hangup,
            } => Some(Event { token, hangup }),
            _ => None,
        };
        slot.state = State::Parked(conn);
        missed
    }

    /// Frees the slot of a connection its worker closed.
    pub fn remove(&self, token: u64) {
        let (index, _) = split(token);
        let mut table = self.lock();
        if let Some(slot) = table.slots.get_mut(index) {
            slot.state = State::Free;
            slot.generation = (slot.generation + 1) % (u32::MAX - 1);
            table.free.push(index as u32);
            table.open -= 1;
        }
    }

    pub fn open(&self) -> usize {
        self.lock().open
    }

    /// Open connections, and how many of them are parked between requests with nothing to send.
    pub fn open_and_idle(&self) -> (usize, usize) {
        let table = self.lock();
        let idle = table
            .slots
            .iter()
            .filter(|slot| matches!(&slot.state, State::Parked(conn) if conn.is_idle()))
            .count();
        (table.open, idle)
    }

    /// Marks every parked connection whose deadline has passed (or, when `closing_idle`, that is idle) as
    /// expired and returns wake-ups for them: the worker that takes one then answers or closes it as its
    /// state requires. Only the owner ever closes a connection.
    pub fn expire(&self, now: Instant, closing_idle: bool) -> Vec<Event> {
        let mut table = self.lock();
        let mut expired = Vec::new();
        for (index, slot) in table.slots.iter_mut().enumerate() {
            let State::Parked(conn) = &mut slot.state else {
                continue;
            };
            if conn.expire(now, closing_idle) {
                expired.push(Event::internal(token(index as u32, slot.generation)));
            }
        }
        expired
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Table> {
        // A panic while holding this lock cannot leave the table inconsistent (each method is one step),
        // so a poisoned lock is still usable.
        self.table
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use std::net::TcpStream;
    use std::os::fd::OwnedFd;
    use std::os::unix::net::UnixStream;

    use super::*;
    use crate::config::Config;

    /// A connection over a Unix socket pair (no network needed), and its client end.
    fn conn() -> (Box<Conn>, UnixStream) {
        let (server, client) = UnixStream::pair().unwrap();
        let socket = TcpStream::from(OwnedFd::from(server));
        let peer = "192.0.2.1:4000".parse().unwrap();
        (
            Box::new(Conn::new(socket, peer, &Config::for_tests().timeouts)),
            client,
        )
    }

    #[test]
    fn a_stale_token_finds_nothing_after_its_slot_is_reused() {
        let table = Connections::default();
        let (first, _c1) = conn();
        let old = table.insert(first, 10).ok().unwrap();
        assert!(table.take(Event::internal(old)).is_some());
        table.remove(old);
        let (second, _c2) = conn();
        let new = table.insert(second, 10).ok().unwrap();
        assert_ne!(old, new, "a reused slot gets a new generation");
        assert!(
            table.take(Event::internal(old)).is_none(),
            "an event for the closed connection is ignored"
        );
        assert!(table.take(Event::internal(new)).is_some());
    }

    #[test]
    fn a_busy_connection_cannot_be_taken_twice() {
        let table = Connections::default();
        let (c, _client) = conn();
        let token = table.insert(c, 10).ok().unwrap();
        let taken = table.take(Event::internal(token)).unwrap();
        assert!(table.take(Event::internal(token)).is_none());
        table.park(token, taken);
        assert!(table.take(Event::internal(token)).is_some());
    }

    #[test]
    fn an_event_for_a_busy_connection_is_reported_when_it_is_parked() {
        let table = Connections::default();
        let (c, _client) = conn();
        let token = table.insert(c, 10).ok().unwrap();
        let taken = table.take(Event::internal(token)).unwrap();
        let hangup = Event {
            token,
            hangup: true,
        };
        assert!(table.take(hangup).is_none(), "the event finds it busy");
        assert!(table.take(Event::internal(token)).is_none());
        let missed = table.park(token, taken);
        assert_eq!(
            missed,
            Some(hangup),
            "its worker learns of the events, the hang-up included"
        );
        let again = table.take(hangup).unwrap();
        assert!(again.hung_up(), "the connection knows of the hang-up");
        assert_eq!(table.park(token, again), None, "and only once");
    }

    #[test]
    fn refuses_past_the_connection_limit() {
        let table = Connections::default();
        let (a, _ca) = conn();
        let (b, _cb) = conn();
        table.insert(a, 1).ok().unwrap();
        assert!(table.insert(b, 1).is_err());
        assert_eq!(table.open(), 1);
    }
}
