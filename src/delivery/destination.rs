//! Where a batch may be sent: which networks a receiver's address may be in.
//!
//! A subscription row is data anyone with write access to `apisubscription`
//! can change, so its URL must not become a way to reach what only the
//! office server can reach. By default link-local addresses (169.254.0.0/16,
//! fe80::/10) — where cloud metadata services answer — are refused; the
//! office LAN's private addresses are legitimate receivers and allowed. An
//! operator may deny more networks, or allow only some.
//!
//! Every address a host name resolves to is checked before connecting (a
//! resolver wrapped around the system's), and so is a URL's literal address,
//! which never reaches a resolver.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use ipnet::IpNet;

/// Networks refused unless `--deny-network` says otherwise: link-local,
/// where cloud metadata services live (and AWS's IPv6 one).
pub const DEFAULT_DENY: [&str; 3] = ["169.254.0.0/16", "fe80::/10", "fd00:ec2::254/128"];

/// An address the policy refuses, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{address} is in a refused network ({network}); allow it with --allow-network")]
pub struct Refused {
    pub address: IpAddr,
    pub network: String,
}

/// Which receiver addresses are allowed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetworkPolicy {
    /// When not empty, only these networks (and never `deny`, unless also
    /// listed here: an explicit allow wins).
    pub allow: Vec<IpNet>,
    pub deny: Vec<IpNet>,
}

impl Default for NetworkPolicy {
    fn default() -> Self {
        Self {
            allow: Vec::new(),
            deny: DEFAULT_DENY.iter().filter_map(|n| n.parse().ok()).collect(),
        }
    }
}

impl NetworkPolicy {
    /// Whether a receiver at `address` may be contacted.
    pub fn check(&self, address: IpAddr) -> Result<(), Refused> {
        // An IPv4 address written as IPv6 is judged as IPv4.
        let address = match address {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(address, IpAddr::V4),
            v4 => v4,
        };
        if self.allow.iter().any(|n| n.contains(&address)) {
            return Ok(());
        }
        if let Some(network) = self.deny.iter().find(|n| n.contains(&address)) {
            return Err(Refused {
                address,
                network: network.to_string(),
            });
        }
        if self.allow.is_empty() {
            Ok(())
        } else {
            Err(Refused {
                address,
                network: "not in --allow-network".to_owned(),
            })
        }
    }
}

/// Parses a network for `--allow-network` / `--deny-network`: CIDR, or a
/// single address.
pub fn parse_network(text: &str) -> Result<IpNet, String> {
    let text = text.trim();
    text.parse::<IpNet>()
        .or_else(|_| text.parse::<IpAddr>().map(IpNet::from))
        .map_err(|_| format!("{text:?} is not a network (10.0.0.0/8) or an address"))
}

/// The system resolver, keeping only the addresses the policy allows.
#[derive(Debug)]
pub struct CheckedResolver {
    pub policy: Arc<NetworkPolicy>,
}

impl reqwest::dns::Resolve for CheckedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let policy = Arc::clone(&self.policy);
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let found: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let mut refused = None;
            let allowed: Vec<SocketAddr> = found
                .into_iter()
                .filter(|a| match policy.check(a.ip()) {
                    Ok(()) => true,
                    Err(e) => {
                        refused.get_or_insert(e);
                        false
                    }
                })
                .collect();
            match (allowed.is_empty(), refused) {
                (true, Some(refused)) => {
                    Err(Box::new(refused) as Box<dyn std::error::Error + Send + Sync>)
                }
                _ => Ok(Box::new(allowed.into_iter()) as reqwest::dns::Addrs),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn by_default_link_local_and_metadata_are_refused_and_the_lan_is_not() {
        let policy = NetworkPolicy::default();
        for refused in [
            "169.254.169.254",
            "169.254.0.1",
            "fe80::1",
            "::ffff:169.254.169.254",
            "fd00:ec2::254",
        ] {
            assert!(policy.check(ip(refused)).is_err(), "{refused}");
        }
        for allowed in [
            "192.168.1.20",
            "10.0.0.5",
            "172.16.3.4",
            "127.0.0.1",
            "8.8.8.8",
            "::1",
        ] {
            assert_eq!(policy.check(ip(allowed)), Ok(()), "{allowed}");
        }
    }

    #[test]
    fn an_allow_list_admits_only_its_networks_and_wins_over_deny() {
        let policy = NetworkPolicy {
            allow: vec![
                parse_network("192.168.1.0/24").unwrap(),
                parse_network("169.254.7.7").unwrap(),
            ],
            ..NetworkPolicy::default()
        };
        assert_eq!(policy.check(ip("192.168.1.9")), Ok(()));
        assert_eq!(
            policy.check(ip("169.254.7.7")),
            Ok(()),
            "explicitly allowed"
        );
        assert!(policy.check(ip("169.254.169.254")).is_err());
        assert!(
            policy.check(ip("10.0.0.1")).is_err(),
            "not in the allow list"
        );
    }

    #[test]
    fn networks_parse_as_cidr_or_address() {
        assert_eq!(
            parse_network("10.0.0.0/8").unwrap().to_string(),
            "10.0.0.0/8"
        );
        assert_eq!(
            parse_network("10.1.2.3").unwrap().to_string(),
            "10.1.2.3/32"
        );
        assert!(parse_network("ten").is_err());
    }
}
