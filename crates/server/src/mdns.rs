//! Announces the server on the local network over mDNS/DNS-SD (crate `mdns-sd`), so
//! `https://<hostname>.local:8443/` reaches it from machines that resolve `.local`
//! names, and service browsers list it: a `_https._tcp` service (`_http._tcp` with
//! `--http`) named "lanmeet on <hostname>", on the host `<hostname>.local` with the
//! machine's addresses, which the generated certificate lists (`tls.rs`). Off with
//! `--no-mdns` (TOML `mdns = false`).

use anyhow::Context;
use mdns_sd::{ServiceDaemon, ServiceInfo};

use crate::net;

/// The announcement; dropping it stops the responder (its thread) and says goodbye.
pub struct Announcement {
    daemon: ServiceDaemon,
}

impl Drop for Announcement {
    fn drop(&mut self) {
        let _ = self.daemon.shutdown();
    }
}

/// The DNS-SD service type for `scheme`.
pub fn service_type(scheme: &str) -> &'static str {
    if scheme == "https" {
        "_https._tcp.local."
    } else {
        "_http._tcp.local."
    }
}

/// Starts answering mDNS queries for the server on `port`.
pub fn announce(scheme: &str, port: u16) -> anyhow::Result<Announcement> {
    let host = net::hostname();
    let host = host.trim_end_matches(".local");
    let daemon = ServiceDaemon::new().context("starting the mDNS responder")?;
    let info = ServiceInfo::new(
        service_type(scheme),
        &format!("lanmeet on {host}"),
        &format!("{host}.local."),
        "",
        port,
        &[("path", "/")][..],
    )
    .context("describing the mDNS service")?
    .enable_addr_auto();
    daemon
        .register(info)
        .context("registering the mDNS service")?;
    Ok(Announcement { daemon })
}
