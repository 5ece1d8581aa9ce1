//! The ceiling: a minimal UDP relay with no crypto, no RTP and no congestion control.
//! A participant registers with a datagram `J<room>`; every other datagram it sends goes
//! to everyone else registered in its room. One thread, one socket, one `recvfrom` and
//! one `sendto` per copy, default socket buffers: what forwarding costs on this machine before any WebRTC work.

use std::collections::HashMap;
use std::net::{SocketAddr, UdpSocket};

use anyhow::Context;

use crate::engine::RELAY_JOIN;

/// Room membership of the relay.
#[derive(Debug, Default)]
pub struct Relay {
    room_of: HashMap<SocketAddr, usize>,
    rooms: Vec<Vec<SocketAddr>>,
    room_ids: HashMap<Vec<u8>, usize>,
}

impl Relay {
    /// Handles one datagram from `from`; returns where copies go.
    pub fn route(&mut self, from: SocketAddr, datagram: &[u8]) -> &[SocketAddr] {
        if datagram.first() == Some(&RELAY_JOIN) {
            let name = datagram[1..].to_vec();
            let next = self.rooms.len();
            let room = *self.room_ids.entry(name).or_insert(next);
            if room == next {
                self.rooms.push(Vec::new());
            }
            if self.room_of.insert(from, room).is_none() {
                self.rooms[room].push(from);
            }
            return &[];
        }
        match self.room_of.get(&from) {
            Some(&room) => &self.rooms[room],
            None => &[],
        }
    }
}

/// Serves on `addr` until the process ends.
pub fn serve(addr: SocketAddr) -> anyhow::Result<()> {
    let socket = UdpSocket::bind(addr).with_context(|| format!("binding {addr}"))?;
    // Default socket buffers, as lanmeet's media sockets have: a deep buffer would turn
    // overload into seconds of queueing instead of loss.
    println!("lanmeet-relay ready on {}", socket.local_addr()?);
    let mut relay = Relay::default();
    let mut buf = vec![0u8; 2048];
    loop {
        let (n, from) = match socket.recv_from(&mut buf) {
            Ok(r) => r,
            Err(_) => continue,
        };
        for &to in relay.route(from, &buf[..n]) {
            if to != from {
                let _ = socket.send_to(&buf[..n], to);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_within_rooms() {
        let a: SocketAddr = "10.0.0.2:1".parse().expect("addr");
        let b: SocketAddr = "10.0.0.2:2".parse().expect("addr");
        let c: SocketAddr = "10.0.0.2:3".parse().expect("addr");
        let mut relay = Relay::default();
        assert!(relay.route(a, b"Jx").is_empty());
        assert!(relay.route(b, b"Jx").is_empty());
        assert!(relay.route(c, b"Jy").is_empty());
        assert!(relay.route(a, b"Jx").is_empty());
        assert_eq!(relay.route(a, &[0x10, 1]), &[a, b]);
        assert_eq!(relay.route(c, &[0x10, 1]), &[c]);
        assert!(relay
            .route("10.0.0.9:9".parse().expect("addr"), &[0])
            .is_empty());
    }
}
