//! Who the client is: the peer's address, or, when the peer is a trusted reverse proxy, the address the
//! proxies recorded in `X-Forwarded-For` or `Forwarded` (RFC 7239).
//!
//! Those fields are whatever the client wrote plus what each proxy appended, so only the right-hand end is
//! trustworthy: the list is read from the right, skipping the trusted proxies, and the first address that is
//! not one of them is the client. A peer that is not a trusted proxy is the client, whatever it sent: a
//! spoofed `X-Forwarded-For` from an untrusted peer changes nothing. An entry that is not an address
//! (`unknown`, an obfuscated `_hidden`, garbage) stops the walk at the hop that appended it.

use std::net::{IpAddr, Ipv6Addr};

use crate::http::RequestHead;

/// An address block, e.g. `10.0.0.0/8` or `fd00::/8`; IPv4 blocks are kept as IPv4-mapped IPv6.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cidr {
    network: u128,
    prefix_len: u8,
}

impl Cidr {
    /// `ADDRESS/PREFIX` or a bare address (a block of one).
    pub fn parse(text: &str) -> Result<Cidr, String> {
        let (address, prefix) = match text.split_once('/') {
            Some((address, prefix)) => (address, Some(prefix)),
            None => (text, None),
        };
        let address: IpAddr = address
            .parse()
            .map_err(|_| format!("`{text}` is not an address block such as 10.0.0.0/8"))?;
        let (max, offset) = match address {
            IpAddr::V4(_) => (32, 96),
            IpAddr::V6(_) => (128, 0),
        };
        let prefix_len = match prefix {
            None => max,
            Some(prefix) => prefix
                .parse::<u8>()
                .ok()
                .filter(|&len| len <= max)
                .ok_or_else(|| format!("`{text}`: the prefix length must be 0 to {max}"))?,
        };
        let prefix_len = prefix_len + offset;
        Ok(Cidr {
            network: bits(address) & mask(prefix_len),
            prefix_len,
        })
    }

    pub fn contains(&self, address: IpAddr) -> bool {
        bits(address) & mask(self.prefix_len) == self.network
    }
}

/// An address as 128 bits, IPv4 mapped into IPv6 (`::ffff:a.b.c.d`), so one block type covers both.
pub fn bits(address: IpAddr) -> u128 {
    let v6 = match address {
        IpAddr::V4(v4) => v4.to_ipv6_mapped(),
        IpAddr::V6(v6) => v6,
    };
    u128::from(v6)
}

fn mask(prefix_len: u8) -> u128 {
    match prefix_len {
        0 => 0,
        len => u128::MAX << (128 - u32::from(len)),
    }
}

/// The reverse proxies whose forwarding fields are believed.
#[derive(Clone, Debug, Default)]
pub struct TrustedProxies(Vec<Cidr>);

impl TrustedProxies {
    pub fn new(blocks: Vec<Cidr>) -> TrustedProxies {
        TrustedProxies(blocks)
    }

    fn trusts(&self, address: IpAddr) -> bool {
        self.0.iter().any(|block| block.contains(address))
    }

    /// The client's address for a request `head` that came from `peer`.
    pub fn client(&self, peer: IpAddr, head: &RequestHead<'_>) -> IpAddr {
        if !self.trusts(peer) {
            return peer;
        }
        let forwarded_for = head.field_values("X-Forwarded-For").collect::<Vec<_>>();
        if !forwarded_for.is_empty() {
            return self.walk(peer, list_items(&forwarded_for).map(parse_node));
        }
        let forwarded = head.field_values("Forwarded").collect::<Vec<_>>();
        self.walk(peer, list_items(&forwarded).map(forwarded_for_node))
    }

    /// Walks the hops from the right (nearest) end: the first that is no trusted proxy is the client.
    fn walk(&self, peer: IpAddr, hops: impl DoubleEndedIterator<Item = Option<IpAddr>>) -> IpAddr {
        let mut client = peer;
        for hop in hops.rev() {
            let Some(address) = hop else {
                break;
            };
            client = address;
            if !self.trusts(address) {
                break;
            }
        }
        client
    }
}

/// The comma-separated items of every line of a list field, in order (RFC 9110 §5.6.1).
fn list_items<'v>(values: &'v [&'v [u8]]) -> impl DoubleEndedIterator<Item = &'v str> + 'v {
    values
        .iter()
        .flat_map(|value| value.split(|&b| b == b','))
        .map(|item| std::str::from_utf8(item).unwrap_or("").trim())
}

/// An `X-Forwarded-For` item: an address, possibly bracketed or with a port.
fn parse_node(item: &str) -> Option<IpAddr> {
    if let Ok(address) = item.parse() {
        return Some(address);
    }
    if let Some(rest) = item.strip_prefix('[') {
        return rest
            .split_once(']')?
            .0
            .parse::<Ipv6Addr>()
            .ok()
            .map(IpAddr::V6);
    }
    let (address, port) = item.rsplit_once(':')?;
    port.parse::<u16>().ok()?;
    address.parse().ok()
}

/// The `for=` node of one `Forwarded` element (RFC 7239 §4, §6): `for=192.0.2.1`, `for="[2001:db8::1]:80"`.
fn forwarded_for_node(element: &str) -> Option<IpAddr> {
    element
        .split(';')
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| name.eq_ignore_ascii_case("for"))
        .and_then(|(_, value)| parse_node(value.trim_matches('"')))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::{HeadLimits, parse_head};

    fn client(trusted: &[&str], peer: &str, fields: &str) -> IpAddr {
        let proxies =
            TrustedProxies::new(trusted.iter().map(|t| Cidr::parse(t).unwrap()).collect());
        let raw = format!("GET / HTTP/1.1\r\nHost: x\r\n{fields}\r\n");
        let limits = HeadLimits {
            max_request_line: 8192,
            max_header_bytes: 16384,
            max_headers: 100,
        };
        let (head, _) = parse_head(raw.as_bytes(), &limits).unwrap().unwrap();
        proxies.client(peer.parse().unwrap(), &head)
    }

    #[test]
    fn blocks_parse_and_match_both_families() {
        let block = Cidr::parse("10.1.0.0/16").unwrap();
        assert!(block.contains("10.1.200.3".parse().unwrap()));
        assert!(!block.contains("10.2.0.1".parse().unwrap()));
        assert!(
            !block.contains("::a01:1".parse().unwrap()),
            "not the IPv4-compatible form"
        );
        assert!(
            Cidr::parse("fd00::/8")
                .unwrap()
                .contains("fd12::1".parse().unwrap())
        );
        assert!(
            Cidr::parse("0.0.0.0/0")
                .unwrap()
                .contains("8.8.8.8".parse().unwrap())
        );
        assert!(
            Cidr::parse("127.0.0.1")
                .unwrap()
                .contains("127.0.0.1".parse().unwrap())
        );
        for bad in ["10.0.0.0/33", "10.0.0/8", "x", "::/129", "10.0.0.0/-1"] {
            assert!(Cidr::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn an_untrusted_peer_is_the_client_whatever_it_sends() {
        let spoofed = "X-Forwarded-For: 1.2.3.4\r\nForwarded: for=5.6.7.8\r\n";
        assert_eq!(
            client(&[], "9.9.9.9", spoofed),
            "9.9.9.9".parse::<IpAddr>().unwrap()
        );
        assert_eq!(
            client(&["10.0.0.0/8"], "9.9.9.9", spoofed),
            "9.9.9.9".parse::<IpAddr>().unwrap()
        );
    }

    #[test]
    fn behind_trusted_proxies_the_rightmost_untrusted_hop_is_the_client() {
        let trusted = &["10.0.0.0/8"];
        let cases = [
            ("X-Forwarded-For: 1.2.3.4", "1.2.3.4"),
            // The client wrote 6.6.6.6 itself; 1.2.3.4 is what our proxy saw.
            ("X-Forwarded-For: 6.6.6.6, 1.2.3.4, 10.0.0.7", "1.2.3.4"),
            (
                "X-Forwarded-For: 6.6.6.6\r\nX-Forwarded-For: 1.2.3.4",
                "1.2.3.4",
            ),
            ("X-Forwarded-For: [2001:db8::1]:443", "2001:db8::1"),
            ("X-Forwarded-For: 1.2.3.4:5678", "1.2.3.4"),
            ("X-Forwarded-For: 10.0.0.8, 10.0.0.7", "10.0.0.8"),
            ("X-Forwarded-For: 1.2.3.4, garbage", "10.0.0.1"),
            (
                "Forwarded: for=1.2.3.4;proto=https, for=10.0.0.9",
                "1.2.3.4",
            ),
            ("Forwarded: for=\"[2001:db8::2]:80\"", "2001:db8::2"),
            ("Forwarded: for=unknown", "10.0.0.1"),
            ("", "10.0.0.1"),
        ];
        for (fields, expected) in cases {
            let fields = if fields.is_empty() {
                String::new()
            } else {
                format!("{fields}\r\n")
            };
            assert_eq!(
                client(trusted, "10.0.0.1", &fields),
                expected.parse::<IpAddr>().unwrap(),
                "{fields:?}"
            );
        }
    }
}
