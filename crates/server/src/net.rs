//! Facts about this machine's network: its name and its addresses.

use std::net::IpAddr;

/// The machine's host name, or "" when it has none.
pub fn hostname() -> String {
    gethostname::gethostname().to_string_lossy().into_owned()
}

/// The machine's IPv4 addresses other than loopback: what LAN browsers can reach.
pub fn local_ipv4s() -> Vec<IpAddr> {
    let mut ips: Vec<IpAddr> = if_addrs::get_if_addrs()
        .unwrap_or_default()
        .into_iter()
        .map(|i| i.ip())
        .filter(|ip| ip.is_ipv4() && !ip.is_loopback())
        .collect();
    ips.sort();
    ips.dedup();
    ips
}

/// Addresses to offer as media candidates: `--public-ip` if given; else the address
/// the media sockets are bound to (`bind`), when it is a specific one, since no other
/// address reaches them; else the LAN addresses and loopback (so a browser on the
/// server machine itself connects too).
pub fn candidate_ips(public_ips: &[IpAddr], bind: IpAddr) -> Vec<IpAddr> {
    if !public_ips.is_empty() {
        return public_ips.to_vec();
    }
    if !bind.is_unspecified() {
        return vec![bind];
    }
    let mut ips = local_ipv4s();
    ips.push(IpAddr::from([127, 0, 0, 1]));
    ips
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn candidates_follow_the_bound_address_unless_given() {
        let loopback = IpAddr::from([127, 0, 0, 1]);
        let lan = IpAddr::from([192, 168, 1, 20]);
        let any = IpAddr::from([0, 0, 0, 0]);
        assert_eq!(candidate_ips(&[], loopback), vec![loopback]);
        assert_eq!(candidate_ips(&[lan], loopback), vec![lan]);
        let all = candidate_ips(&[], any);
        assert_eq!(all.last(), Some(&loopback));
        assert_eq!(all[..all.len() - 1], local_ipv4s()[..]);
    }
}
