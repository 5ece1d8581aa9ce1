//! One media connection: its own UDP socket (the server tells connections apart by
//! source address) and either a str0m `Rtc` in RTP mode (full ICE, DTLS-SRTP, as a
//! browser would have) or a plain link to the no-crypto relay. Datagrams and timeouts go
//! in; [`Conn::drive`] sends what str0m has to send and acts on its events.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use str0m::change::SdpPendingOffer;
use str0m::config::CryptoProvider;
use str0m::net::{Protocol, Receive};
use str0m::{Event, Input, Output, Rtc, RtcConfig};

use super::handle::{EngineEvent, Leg};
use super::{State, TIMER_SLACK};

/// Socket buffers: deep enough for bursts of a few hundred packets.
const SOCKET_BUFFER: usize = 4 * 1024 * 1024;

pub(super) enum Link {
    Rtc {
        rtc: Box<Rtc>,
        timeout: Instant,
        pending: Option<SdpPendingOffer>,
        connected: bool,
        dead: bool,
    },
    Plain {
        relay: SocketAddr,
    },
}

impl Link {
    /// A new str0m connection in RTP mode offering Opus and VP8 only.
    pub(super) fn rtc(crypto: Arc<CryptoProvider>, now: Instant) -> Link {
        let rtc = RtcConfig::new()
            .set_crypto_provider(crypto)
            .set_rtp_mode(true)
            .clear_codecs()
            .enable_opus(true, false)
            .enable_vp8(true)
            .build(now);
        Link::Rtc {
            rtc: Box::new(rtc),
            timeout: now,
            pending: None,
            connected: false,
            dead: false,
        }
    }
}

pub(super) struct Conn {
    pub(super) participant: u32,
    pub(super) leg: Leg,
    pub(super) socket: mio::net::UdpSocket,
    pub(super) local: SocketAddr,
    pub(super) link: Link,
}

impl Conn {
    /// Handles one datagram from `from`. Returns the connection's next timeout when
    /// str0m took the datagram.
    pub(super) fn receive(
        &mut self,
        state: &mut State,
        data: &[u8],
        from: SocketAddr,
        now: Instant,
    ) -> Option<Instant> {
        let Link::Rtc { rtc, dead, .. } = &mut self.link else {
            state.received(self.participant, data, now);
            return None;
        };
        if *dead {
            return None;
        }
        let contents = data.try_into().ok()?;
        let input = Input::Receive(
            now,
            Receive {
                proto: Protocol::Udp,
                source: from,
                destination: self.local,
                contents,
            },
        );
        // Like a browser, drop what cannot be used.
        let _ = rtc.handle_input(input);
        self.drive(state, now, false)
    }

    /// Wakes str0m if its timer is due (within [`TIMER_SLACK`] of `now`). Returns the
    /// connection's next timeout; `None` for relay links and dead connections.
    pub(super) fn handle_timeout(&mut self, state: &mut State, now: Instant) -> Option<Instant> {
        let Link::Rtc {
            rtc,
            timeout,
            dead: false,
            ..
        } = &mut self.link
        else {
            return None;
        };
        if *timeout > now + TIMER_SLACK {
            return Some(*timeout);
        }
        let _ = rtc.handle_input(Input::Timeout(now));
        self.drive(state, now, true)
    }

    /// Polls str0m until it has nothing more to say, sending its datagrams and acting on
    /// its events. Returns its next timeout; `None` for relay links.
    pub(super) fn drive(
        &mut self,
        state: &mut State,
        now: Instant,
        after_timeout: bool,
    ) -> Option<Instant> {
        let Link::Rtc {
            rtc,
            timeout,
            connected,
            dead,
            ..
        } = &mut self.link
        else {
            return None;
        };
        loop {
            match rtc.poll_output() {
                Ok(Output::Timeout(t)) => {
                    *timeout = if after_timeout && t <= now {
                        now + TIMER_SLACK
                    } else {
                        t
                    };
                    return Some(*timeout);
                }
                Ok(Output::Transmit(t)) => {
                    if self.socket.send_to(&t.contents, t.destination).is_err() {
                        state.stats.send_errors += 1;
                    }
                }
                Ok(Output::Event(event)) => match event {
                    Event::RtpPacket(packet) if state.config.station => {
                        state.station_received(self.participant, &packet, now);
                    }
                    Event::RtpPacket(packet) => {
                        state.received(self.participant, &packet.payload, now);
                    }
                    Event::Connected => {
                        *connected = true;
                        if let Some(p) = state.participants.get_mut(&self.participant) {
                            let _ = p.events.send(EngineEvent::Connected(self.leg));
                            if self.leg == Leg::Publish {
                                if let Some(source) = p.source.as_mut() {
                                    source.start(now);
                                }
                            }
                        }
                    }
                    Event::KeyframeRequest(request) => {
                        if let Some(source) = state
                            .participants
                            .get_mut(&self.participant)
                            .and_then(|p| p.source.as_mut())
                        {
                            source.keyframe_asked(request.rid);
                        }
                    }
                    Event::IceConnectionStateChange(str0m::IceConnectionState::Disconnected) => {
                        if let Some(p) = state.participants.get(&self.participant) {
                            let _ = p.events.send(EngineEvent::Failed(
                                self.leg,
                                "ICE disconnected".to_string(),
                            ));
                        }
                    }
                    _ => {}
                },
                Err(e) => {
                    *dead = true;
                    *timeout = now + Duration::from_secs(3600);
                    if let Some(p) = state.participants.get(&self.participant) {
                        let _ = p.events.send(EngineEvent::Failed(self.leg, e.to_string()));
                    }
                    return Some(*timeout);
                }
            }
        }
    }
}

/// Binds a UDP socket on `ip` with deep buffers.
pub(super) fn bind_socket(ip: IpAddr) -> anyhow::Result<std::net::UdpSocket> {
    let socket = std::net::UdpSocket::bind(SocketAddr::new(ip, 0))
        .with_context(|| format!("binding a UDP socket on {ip}"))?;
    socket.set_nonblocking(true)?;
    set_buffers(&socket);
    Ok(socket)
}

/// Asks for deep socket buffers; the kernel caps them at `net.core.[rw]mem_max`.
fn set_buffers(socket: &std::net::UdpSocket) {
    let s = socket2::SockRef::from(socket);
    let _ = s.set_recv_buffer_size(SOCKET_BUFFER);
    let _ = s.set_send_buffer_size(SOCKET_BUFFER);
}
