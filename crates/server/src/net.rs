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

/// Addresses to offer as media candidates: `--public-ip` if given, else the LAN
/// addresses and loopback (so a browser on the server machine itself connects too).
pub fn candidate_ips(public_ips: &[IpAddr]) -> Vec<IpAddr> {
    if !public_ips.is_empty() {
        return public_ips.to_vec();
    }
    let mut ips = local_ipv4s();
    ips.push(IpAddr::from([127, 0, 0, 1]));
    ips
}
