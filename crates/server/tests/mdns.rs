//! The server announces itself over mDNS/DNS-SD, and `--no-mdns` keeps it quiet. The
//! server runs in a network namespace joined to this one by a veth pair (loopback has no
//! multicast), and `mdns-sd`'s browser here looks for it on the veth. Needs root and
//! `ip` (iproute2), like the bandwidth browser test; removes what it made.

use std::io::{BufRead, BufReader};
use std::net::IpAddr;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use mdns_sd::{ServiceDaemon, ServiceEvent};

/// A namespace `ns` with a veth pair: the host side here at 10.203.<n>.1, the other
/// inside at 10.203.<n>.2. Deleting the namespace deletes the pair.
struct Netns {
    name: String,
    inside: IpAddr,
}

fn ip(args: &[&str]) {
    let status = Command::new("ip")
        .args(args)
        .status()
        .expect("running ip (iproute2, as root)");
    assert!(status.success(), "ip {}", args.join(" "));
}

impl Netns {
    fn new(tag: &str) -> Netns {
        let n = std::process::id() % 200 + u32::from(tag == "off");
        let name = format!("lmdns-{tag}-{}", std::process::id());
        let (host, peer) = (format!("lmh{tag}{n}"), format!("lmn{tag}{n}"));
        ip(&["netns", "add", &name]);
        let ns = Netns {
            name: name.clone(),
            inside: format!("10.203.{n}.2").parse().expect("an IPv4 address"),
        };
        ip(&["link", "add", &host, "type", "veth", "peer", "name", &peer]);
        ip(&["link", "set", &peer, "netns", &name]);
        ip(&["addr", "add", &format!("10.203.{n}.1/24"), "dev", &host]);
        ip(&["link", "set", &host, "up"]);
        ip(&[
            "-n",
            &name,
            "addr",
            "add",
            &format!("10.203.{n}.2/24"),
            "dev",
            &peer,
        ]);
        ip(&["-n", &name, "link", "set", &peer, "up"]);
        ip(&["-n", &name, "link", "set", "lo", "up"]);
        ns
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .status();
    }
}

/// `lanmeet serve` inside the namespace, killed when dropped; with its HTTP port.
struct Server {
    child: Child,
    port: u16,
    _data: tempdir::Dir,
}

mod tempdir {
    /// A fresh directory under the system's temporary one, removed when dropped.
    pub struct Dir(pub std::path::PathBuf);
    impl Dir {
        pub fn new(tag: &str) -> Dir {
            let path =
                std::env::temp_dir().join(format!("lanmeet-mdns-{tag}-{}", std::process::id()));
            std::fs::create_dir_all(&path).expect("a temporary directory");
            Dir(path)
        }
    }
    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

impl Server {
    fn start(ns: &Netns, extra: &[&str]) -> Server {
        let data = tempdir::Dir::new(&ns.name);
        let mut child = Command::new("ip")
            .args([
                "netns",
                "exec",
                &ns.name,
                env!("CARGO_BIN_EXE_lanmeet"),
                "serve",
                "--http",
            ])
            .args(["--listen", "0.0.0.0:0", "--udp-port", "0", "--data-dir"])
            .arg(&data.0)
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting lanmeet in the namespace");
        let stdout = child.stdout.take().expect("piped");
        let mut port = 0;
        for line in BufReader::new(stdout).lines() {
            let line = line.expect("reading the banner");
            if let Some(rest) = line.strip_prefix("lanmeet ready at http://localhost:") {
                port = rest.trim_end_matches('/').parse().expect("a port");
                break;
            }
        }
        assert_ne!(port, 0, "lanmeet printed its ready line");
        Server {
            child,
            port,
            _data: data,
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Browses `_http._tcp` for `within`; returns the lanmeet service seen at `addr`:`port`
/// (its full name and host name), if any.
fn browse(addr: IpAddr, port: u16, within: Duration) -> Option<(String, String)> {
    let daemon = ServiceDaemon::new().expect("an mDNS browser");
    let events = daemon.browse("_http._tcp.local.").expect("browsing");
    let deadline = Instant::now() + within;
    let mut found = None;
    while let Some(left) = deadline.checked_duration_since(Instant::now()) {
        let Ok(event) = events.recv_timeout(left) else {
            break;
        };
        if let ServiceEvent::ServiceResolved(info) = event {
            if info.get_port() == port
                && info.get_addresses().iter().any(|a| a.to_ip_addr() == addr)
            {
                found = Some((
                    info.get_fullname().to_string(),
                    info.get_hostname().to_string(),
                ));
                break;
            }
        }
    }
    let _ = daemon.shutdown();
    found
}

#[test]
fn the_server_is_announced_over_mdns_unless_told_not_to() {
    let ns = Netns::new("on");
    let server = Server::start(&ns, &[]);
    let (name, host) = browse(ns.inside, server.port, Duration::from_secs(20))
        .expect("the server is announced on the network");
    let hostname = gethostname::gethostname().to_string_lossy().into_owned();
    assert!(name.starts_with("lanmeet on "), "{name}");
    assert_eq!(
        host,
        format!("{}.local.", hostname.trim_end_matches(".local"))
    );
    drop(server);

    let quiet = Netns::new("off");
    let server = Server::start(&quiet, &["--no-mdns"]);
    assert_eq!(
        browse(quiet.inside, server.port, Duration::from_secs(4)),
        None,
        "--no-mdns announces nothing"
    );
}
