//! The ceiling: a minimal UDP relay with no crypto, no RTP and no congestion control.
//! A participant registers with a datagram `J<room>`; every other datagram it sends goes
//! to everyone else registered in its room.
//!
//! It moves datagrams the way lanmeet's media worker does, so that the difference between
//! the two is the WebRTC work and nothing else: one thread, one socket with 4 MiB kernel
//! buffers each way, reads in batches (`recvmmsg` through quinn-udp), and the copies of a
//! batch grouped by destination and sent as UDP GSO messages (runs of equal-sized
//! datagrams to one destination in one system call).

use std::collections::HashMap;
use std::io::{self, IoSliceMut};
use std::net::{SocketAddr, UdpSocket};

use anyhow::Context;
use quinn_udp::{RecvMeta, Transmit, UdpSockRef, UdpSocketState};

/// First byte of a registration datagram (never the first byte of a payload).
pub const RELAY_JOIN: u8 = b'J';
/// Kernel buffer each way, as lanmeet's media sockets ask for.
const SOCKET_BUFFER: usize = 4 * 1024 * 1024;
/// Datagrams read per system call.
const BATCH: usize = 32;
/// Receive buffer per datagram slot; room for GRO-coalesced segments.
const SLOT: usize = 64 * 1024;
/// Largest UDP GSO message.
const GSO_BYTES: usize = 65_000;

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

/// One copy to send: destination, and where the datagram is in the receive buffer.
struct Copy {
    to: SocketAddr,
    slot: usize,
    start: usize,
    len: usize,
}

/// Serves on `addr` until the process ends.
pub fn serve(addr: SocketAddr) -> anyhow::Result<()> {
    let std_socket = UdpSocket::bind(addr).with_context(|| format!("binding {addr}"))?;
    let sock = socket2::SockRef::from(&std_socket);
    let _ = sock.set_recv_buffer_size(SOCKET_BUFFER);
    let _ = sock.set_send_buffer_size(SOCKET_BUFFER);
    let state = UdpSocketState::new(UdpSockRef::from(&std_socket))?;
    std_socket.set_nonblocking(true)?;
    let mut socket = mio::net::UdpSocket::from_std(std_socket);
    let mut poll = mio::Poll::new()?;
    poll.registry()
        .register(&mut socket, mio::Token(0), mio::Interest::READABLE)?;
    let mut events = mio::Events::with_capacity(4);
    println!("lanmeet-relay ready on {}", socket.local_addr()?);
    let mut relay = Relay::default();
    let mut buf = vec![0u8; BATCH * SLOT];
    let mut meta = vec![RecvMeta::default(); BATCH];
    let mut slices: Vec<IoSliceMut> = buf.chunks_mut(SLOT).map(IoSliceMut::new).collect();
    let mut copies: Vec<Copy> = Vec::new();
    let mut gso = Vec::with_capacity(GSO_BYTES);
    loop {
        if let Err(e) = poll.poll(&mut events, None) {
            if e.kind() != io::ErrorKind::Interrupted {
                return Err(e.into());
            }
        }
        // Edge-triggered: read until the socket is empty, sending after each batch.
        loop {
            let n = match state.recv(UdpSockRef::from(&socket), &mut slices, &mut meta) {
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(_) => continue,
            };
            copies.clear();
            for (slot, m) in meta.iter().enumerate().take(n) {
                let stride = m.stride.max(1);
                let mut start = 0;
                while start < m.len {
                    let len = stride.min(m.len - start);
                    let datagram = &slices[slot][start..start + len];
                    for &to in relay.route(m.addr, datagram) {
                        if to != m.addr {
                            copies.push(Copy {
                                to,
                                slot,
                                start,
                                len,
                            });
                        }
                    }
                    start += len;
                }
            }
            send_copies(&state, &socket, &slices, &mut copies, &mut gso);
        }
    }
}

/// Sends a batch's copies, grouped by destination (each destination's order kept), runs
/// of equal-sized datagrams (the last may be shorter) as one GSO message.
fn send_copies(
    state: &UdpSocketState,
    socket: &mio::net::UdpSocket,
    slices: &[IoSliceMut],
    copies: &mut [Copy],
    gso: &mut Vec<u8>,
) {
    copies.sort_by_key(|c| c.to);
    let bytes = |c: &Copy| &slices[c.slot][c.start..c.start + c.len];
    let max_segments = state.max_gso_segments();
    let mut i = 0;
    while i < copies.len() {
        let first = &copies[i];
        let size = first.len;
        let limit = max_segments.min(GSO_BYTES / size.max(1)).max(1);
        let mut j = i + 1;
        while j < copies.len() && j - i < limit {
            let c = &copies[j];
            if c.to != first.to || c.len > size {
                break;
            }
            j += 1;
            if c.len < size {
                break;
            }
        }
        let (contents, segment_size) = if j - i == 1 {
            (bytes(first), None)
        } else {
            gso.clear();
            for c in &copies[i..j] {
                gso.extend_from_slice(bytes(c));
            }
            (&gso[..], Some(size))
        };
        let transmit = Transmit {
            destination: first.to,
            ecn: None,
            contents,
            segment_size,
            src_ip: None,
        };
        // Errors (a full buffer) drop the datagrams, as a congested link would.
        let _ = state.try_send(UdpSockRef::from(socket), &transmit);
        i = j;
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
