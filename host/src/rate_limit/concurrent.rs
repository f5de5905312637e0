//! Open connections per client address (`--max-connections-per-client`): one address cannot take the whole
//! `--max-connections` budget. Counted by the peer's own address (a trusted proxy's clients share it, so set
//! the limit above what the proxy opens), when the connection is accepted; over the limit it gets a 503 and is
//! closed.
//!
//! The count lives in a map that only holds addresses with open connections, so its size is bounded by
//! `--max-connections`; a connection gives its place back when it is dropped, whichever way it ends.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, MutexGuard};

/// The open connections of every client address.
pub struct ClientConnections {
    limit: u32,
    open: Mutex<HashMap<IpAddr, u32>>,
}

/// One open connection's place in its client's count, given back on drop.
pub struct ClientSlot {
    owner: Arc<ClientConnections>,
    client: IpAddr,
}

impl ClientConnections {
    /// At most `limit` open connections per address.
    pub fn new(limit: u32) -> Arc<ClientConnections> {
        Arc::new(ClientConnections {
            limit,
            open: Mutex::new(HashMap::new()),
        })
    }

    /// A place for one more connection of `client`, or `None` when it has `limit` open already.
    pub fn acquire(self: &Arc<Self>, client: IpAddr) -> Option<ClientSlot> {
        let mut open = self.lock();
        let count = open.entry(client).or_insert(0);
        if *count >= self.limit {
            return None;
        }
        *count += 1;
        Some(ClientSlot {
            owner: Arc::clone(self),
            client,
        })
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<IpAddr, u32>> {
        self.open
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl Drop for ClientSlot {
    fn drop(&mut self) {
        let mut open = self.owner.lock();
        if let Some(count) = open.get_mut(&self.client) {
            *count -= 1;
            if *count == 0 {
                open.remove(&self.client);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_address_gets_its_own_limit_and_places_come_back() {
        let table = ClientConnections::new(2);
        let a: IpAddr = "127.0.0.1".parse().unwrap();
        let b: IpAddr = "127.0.0.2".parse().unwrap();
        let first = table.acquire(a).unwrap();
        let _second = table.acquire(a).unwrap();
        assert!(table.acquire(a).is_none());
        assert!(
            table.acquire(b).is_some(),
            "another address is not affected"
        );
        drop(first);
        assert!(table.acquire(a).is_some());
        assert!(table.lock().len() <= 2);
    }

    #[test]
    fn an_address_without_connections_holds_no_memory() {
        let table = ClientConnections::new(1);
        let a: IpAddr = "::1".parse().unwrap();
        drop(table.acquire(a));
        assert!(table.lock().is_empty());
    }
}
