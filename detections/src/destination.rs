//! Destination patterns for `domain_match`: a host-name pattern matches only names,
//! an address pattern only IP addresses. `10.*` as text would approve
//! `10.attacker.example`; here it is read as an address pattern and a name never
//! matches it. Address patterns are CIDR blocks (`10.0.0.0/8`, `fc00::/7`), single
//! addresses, or IPv4 wildcards (`192.168.*`, kept for tables written before CIDR).

use std::net::IpAddr;

use crate::udf::Glob;

pub enum DestinationPattern {
    Name(Glob),
    /// An IPv4 pattern with `*` (`10.*`), matched against an address's dotted form.
    AddressGlob(Glob),
    Block {
        network: IpAddr,
        prefix: u8,
    },
    /// A pattern that can never match (an address pattern that does not parse).
    Never,
}

/// `text` as an IP address: plain, or IPv6 in brackets.
pub fn parse_address(text: &str) -> Option<IpAddr> {
    let text = text.trim();
    let text = text
        .strip_prefix('[')
        .and_then(|rest| rest.strip_suffix(']'))
        .unwrap_or(text);
    text.parse().ok()
}

fn looks_like_address_glob(pattern: &str) -> bool {
    pattern.contains('*')
        && pattern.contains('.')
        && pattern
            .bytes()
            .all(|byte| byte.is_ascii_digit() || byte == b'.' || byte == b'*')
        && pattern.bytes().any(|byte| byte.is_ascii_digit())
}

impl DestinationPattern {
    pub fn new(pattern: &str) -> DestinationPattern {
        let pattern = pattern.trim();
        if let Some((address, prefix)) = pattern.split_once('/') {
            let (Some(network), Ok(prefix)) = (parse_address(address), prefix.trim().parse::<u8>()) else {
                return DestinationPattern::Never;
            };
            let longest = if network.is_ipv4() { 32 } else { 128 };
            if prefix > longest {
                return DestinationPattern::Never;
            }
            return DestinationPattern::Block { network, prefix };
        }
        if let Some(address) = parse_address(pattern) {
            let prefix = if address.is_ipv4() { 32 } else { 128 };
            return DestinationPattern::Block {
                network: address,
                prefix,
            };
        }
        if looks_like_address_glob(pattern) {
            return DestinationPattern::AddressGlob(Glob::new(pattern, false));
        }
        DestinationPattern::Name(Glob::new(pattern, false))
    }

    pub fn matches(&self, destination: &str, scratch: &mut Vec<bool>) -> bool {
        let address = parse_address(destination);
        match (self, address) {
            (DestinationPattern::Name(glob), None) => glob.matches(destination.trim().trim_end_matches('.'), scratch),
            (DestinationPattern::AddressGlob(glob), Some(IpAddr::V4(address))) => {
                glob.matches(&address.to_string(), scratch)
            }
            (DestinationPattern::Block { network, prefix }, Some(address)) => in_block(address, *network, *prefix),
            _ => false,
        }
    }
}

fn in_block(address: IpAddr, network: IpAddr, prefix: u8) -> bool {
    // An IPv4 address written as IPv6 (::ffff:10.0.0.1) is the IPv4 address.
    let address = match address {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(address, IpAddr::V4),
        v4 => v4,
    };
    match (address, network) {
        (IpAddr::V4(address), IpAddr::V4(network)) => {
            let mask = if prefix == 0 {
                0
            } else {
                u32::MAX << (32 - u32::from(prefix))
            };
            u32::from(address) & mask == u32::from(network) & mask
        }
        (IpAddr::V6(address), IpAddr::V6(network)) => {
            let mask = if prefix == 0 {
                0
            } else {
                u128::MAX << (128 - u32::from(prefix))
            };
            u128::from(address) & mask == u128::from(network) & mask
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn matches(destination: &str, pattern: &str) -> bool {
        DestinationPattern::new(pattern).matches(destination, &mut Vec::new())
    }

    #[test]
    fn address_patterns_match_addresses_only() {
        assert!(matches("10.20.0.15", "10.*"));
        assert!(!matches("10.attacker.example", "10.*"), "a name is not an address");
        assert!(!matches("110.20.0.15", "10.*"));
        assert!(matches("10.20.0.15", "10.0.0.0/8"));
        assert!(!matches("11.0.0.1", "10.0.0.0/8"));
        assert!(matches("172.31.255.1", "172.16.0.0/12"));
        assert!(!matches("172.32.0.1", "172.16.0.0/12"));
        assert!(matches("::ffff:10.1.2.3", "10.0.0.0/8"), "IPv4-mapped IPv6");
        assert!(matches("[fd12::1]", "fc00::/7"));
        assert!(matches("::1", "::1"));
        assert!(!matches("10.0.0.1", "10.0.0.0/40"), "a bad prefix matches nothing");
        assert!(!matches("10.1.2.3", "*"), "a name pattern does not match an address");
    }

    #[test]
    fn name_patterns_match_names_only() {
        assert!(matches("corp.SharePoint.com.", "*.sharepoint.com"));
        assert!(!matches("sharepoint.com", "*.sharepoint.com"));
        assert!(matches("localhost", "localhost"));
        assert!(!matches("127.0.0.1", "localhost"));
    }
}
