//! Admission of TCP connections: at most so many open connections in total and from one
//! address. A connection over either cap is closed at once, before TLS or HTTP, so
//! that no single client can take every file descriptor (slow requests, idle sockets,
//! WebSockets that never join) and lock everyone else out.
//!
//! Each admitted stream carries a [`Slot`] that gives its place back when the
//! connection ends, also after an upgrade to a WebSocket, which keeps the stream.

use std::collections::HashMap;
use std::io;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use axum_server::accept::Accept;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tracing::debug;

/// Connection caps.
#[derive(Debug, Clone, Copy)]
pub struct ConnectionLimits {
    /// Open connections at most.
    pub total: usize,
    /// Open connections from one address at most.
    pub per_address: usize,
}

#[derive(Default)]
struct Open {
    total: usize,
    by_address: HashMap<IpAddr, usize>,
}

/// Counts open connections and admits new ones under the caps.
pub struct Admission {
    limits: ConnectionLimits,
    open: Mutex<Open>,
}

/// An admitted connection's place; given back on drop.
pub struct Slot {
    admission: Arc<Admission>,
    address: IpAddr,
}

impl Admission {
    /// Admission under `limits`.
    pub fn new(limits: ConnectionLimits) -> Arc<Self> {
        Arc::new(Admission {
            limits,
            open: Mutex::new(Open::default()),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Open> {
        // Counts stay consistent under a panic (each update is one step).
        self.open.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A slot for a connection from `address`, or why not.
    pub fn admit(self: &Arc<Self>, address: IpAddr) -> io::Result<Slot> {
        let mut open = self.lock();
        let from_address = open.by_address.get(&address).copied().unwrap_or(0);
        if open.total >= self.limits.total {
            return Err(refused(format!(
                "{} connections open, the most allowed (--max-connections)",
                open.total
            )));
        }
        if from_address >= self.limits.per_address {
            return Err(refused(format!(
                "{from_address} connections open from {address}, the most allowed (--max-connections-per-ip)"
            )));
        }
        open.total += 1;
        *open.by_address.entry(address).or_default() += 1;
        Ok(Slot {
            admission: self.clone(),
            address,
        })
    }

    /// Open connections in total.
    pub fn open(&self) -> usize {
        self.lock().total
    }
}

fn refused(message: String) -> io::Error {
    io::Error::new(io::ErrorKind::ConnectionRefused, message)
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut open = self.admission.lock();
        open.total = open.total.saturating_sub(1);
        if let Some(n) = open.by_address.get_mut(&self.address) {
            *n -= 1;
            if *n == 0 {
                open.by_address.remove(&self.address);
            }
        }
    }
}

/// The acceptor that admits (or closes) each TCP connection; TLS goes on top of it.
#[derive(Clone)]
pub struct Admit(pub Arc<Admission>);

impl<S> Accept<TcpStream, S> for Admit {
    type Stream = Admitted;
    type Service = S;
    type Future = std::future::Ready<io::Result<(Admitted, S)>>;

    fn accept(&self, stream: TcpStream, service: S) -> Self::Future {
        let admitted = stream
            .peer_addr()
            .and_then(|peer| self.0.admit(normalize(peer.ip())))
            .map(|slot| Admitted {
                stream,
                _slot: slot,
            });
        if let Err(e) = &admitted {
            // Per connection and at debug level: under a flood, this is the flood.
            debug!("connection refused: {e}");
        }
        std::future::ready(admitted.map(|a| (a, service)))
    }
}

/// IPv4-mapped IPv6 addresses count as the IPv4 address they are.
fn normalize(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        IpAddr::V4(_) => ip,
    }
}

/// An admitted TCP stream holding its slot.
pub struct Admitted {
    stream: TcpStream,
    _slot: Slot,
}

impl Admitted {
    /// Reads the first bytes without taking them from the stream.
    pub async fn peek(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.stream.peek(buf).await
    }

    /// The server's end of the connection.
    pub fn local_addr(&self) -> io::Result<std::net::SocketAddr> {
        self.stream.local_addr()
    }
}

impl AsyncRead for Admitted {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for Admitted {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caps_hold_per_address_and_in_total_and_slots_come_back() {
        let admission = Admission::new(ConnectionLimits {
            total: 3,
            per_address: 2,
        });
        let (a, b, c): (IpAddr, IpAddr, IpAddr) = (
            "10.0.0.1".parse().expect("an address"),
            "10.0.0.2".parse().expect("an address"),
            "10.0.0.3".parse().expect("an address"),
        );
        let a1 = admission.admit(a).expect("first");
        let _a2 = admission.admit(a).expect("second");
        assert!(admission.admit(a).is_err(), "per address");
        let _b1 = admission.admit(b).expect("other address");
        assert!(admission.admit(c).is_err(), "in total");
        drop(a1);
        let _c1 = admission.admit(c).expect("a freed place");
        assert_eq!(admission.open(), 3);
    }
}
