//! The engine's side of signaling: connections opened and closed for a participant, the
//! publish offer and its answer, subscribe offers answered, registration with the relay.

use std::net::SocketAddr;
use std::time::Instant;

use anyhow::Context;
use mio::{Interest, Token};
use str0m::change::{SdpAnswer, SdpOffer};
use str0m::format::Codec;
use str0m::media::{Direction, MediaKind, Simulcast, SimulcastLayer};
use str0m::Candidate;

use super::conn::{bind_socket, Conn, Link};
use super::handle::Leg;
use super::source::Source;
use super::{Engine, Participant, State};
use crate::relay::RELAY_JOIN;

impl Engine {
    fn new_conn(&mut self, participant: u32, leg: Leg, link: Link) -> anyhow::Result<usize> {
        let socket = bind_socket(self.state.config.bind_ip)?;
        let local = socket.local_addr()?;
        let mut socket = mio::net::UdpSocket::from_std(socket);
        let idx = self.free.pop().unwrap_or(self.conns.len());
        self.poll
            .registry()
            .register(&mut socket, Token(idx + 1), Interest::READABLE)?;
        let mut link = link;
        if let Link::Rtc { rtc, .. } = &mut link {
            let candidate = Candidate::host(local, "udp").context("host candidate")?;
            rtc.add_local_candidate(candidate);
        }
        let conn = Conn {
            participant,
            leg,
            socket,
            local,
            link,
        };
        if idx == self.conns.len() {
            self.conns.push(Some(conn));
        } else {
            self.conns[idx] = Some(conn);
        }
        Ok(idx)
    }

    pub(super) fn publish_offer(
        &mut self,
        participant: u32,
        now: Instant,
    ) -> anyhow::Result<String> {
        let p = self.state.participant(participant)?;
        if p.publish.is_some() {
            anyhow::bail!("already publishing");
        }
        let link = Link::rtc(self.crypto.clone(), now);
        let idx = self.new_conn(participant, Leg::Publish, link)?;
        let profile = self.state.config.profile;
        let Some(Some(Conn {
            link: Link::Rtc { rtc, pending, .. },
            ..
        })) = self.conns.get_mut(idx)
        else {
            anyhow::bail!("connection vanished");
        };
        let stream = format!("lg{participant}");
        let mut change = rtc.sdp_api();
        // A sendonly track of the stream `lg<participant>`, if the profile sends it; the
        // camera in simulcast layers as a browser sends it.
        let rids = Source::rids(&profile);
        let mut track = |kind, sends: bool, name: &str| {
            sends.then(|| {
                let track = format!("{stream}-{name}");
                let stream = Some(stream.clone());
                let simulcast = (kind == MediaKind::Video && !rids.is_empty()).then(|| {
                    let mut s = Simulcast::new();
                    for rid in &rids {
                        s.add_send_layer(SimulcastLayer::new(rid));
                    }
                    s
                });
                change.add_media(kind, Direction::SendOnly, stream, Some(track), simulcast)
            })
        };
        let audio_mid = track(MediaKind::Audio, profile.audio_pps > 0, "mic");
        let video_mid = track(MediaKind::Video, profile.fps > 0, "cam");
        let (offer, pend) = change.apply().context("nothing to offer")?;
        *pending = Some(pend);
        if let Some(p) = self.state.participants.get_mut(&participant) {
            p.publish = Some(idx);
            p.source = Some(Source::new(
                participant,
                audio_mid,
                video_mid,
                &profile,
                now,
            ));
        }
        Ok(offer.to_sdp_string())
    }

    pub(super) fn publish_answer(
        &mut self,
        participant: u32,
        sdp: &str,
        now: Instant,
    ) -> anyhow::Result<()> {
        let p = self.state.participant(participant)?;
        let idx = p.publish.context("no publish offer")?;
        let Some(Some(Conn {
            link:
                Link::Rtc {
                    rtc,
                    pending,
                    timeout,
                    ..
                },
            ..
        })) = self.conns.get_mut(idx)
        else {
            anyhow::bail!("no publish connection");
        };
        let pend = pending.take().context("no offer outstanding")?;
        let answer = SdpAnswer::from_sdp_string(sdp).context("parsing the answer")?;
        rtc.sdp_api()
            .accept_answer(pend, answer)
            .context("applying the answer")?;
        // The answer brought the server's candidates: ICE checks start now, not at the
        // timeout str0m gave before it had anyone to check (up to 3 s away).
        *timeout = now;
        let pt_of = |codec: Codec| {
            rtc.codec_config()
                .find(|p| p.spec().codec == codec)
                .map(|p| p.pt())
        };
        if let Some(source) = p.source.as_mut() {
            source.vp8 = pt_of(Codec::Vp8);
            source.opus = pt_of(Codec::Opus);
        }
        Ok(())
    }

    pub(super) fn subscribe_offer(
        &mut self,
        participant: u32,
        sdp: &str,
        now: Instant,
    ) -> anyhow::Result<String> {
        let existing = self.state.participant(participant)?.subscribe;
        let idx = match existing {
            Some(idx) => idx,
            None => {
                let link = Link::rtc(self.crypto.clone(), now);
                let idx = self.new_conn(participant, Leg::Subscribe, link)?;
                if let Some(p) = self.state.participants.get_mut(&participant) {
                    p.subscribe = Some(idx);
                }
                idx
            }
        };
        let Some(Some(Conn {
            link: Link::Rtc { rtc, timeout, .. },
            ..
        })) = self.conns.get_mut(idx)
        else {
            anyhow::bail!("no subscribe connection");
        };
        *timeout = now;
        let offer = SdpOffer::from_sdp_string(sdp).context("parsing the offer")?;
        let answer = rtc
            .sdp_api()
            .accept_offer(offer)
            .context("applying the offer")?;
        Ok(answer.to_sdp_string())
    }

    /// Closes `participant`'s subscribe connection, so the next offer makes a new one.
    pub(super) fn close_subscribe(&mut self, participant: u32) {
        let Some(p) = self.state.participants.get_mut(&participant) else {
            return;
        };
        let Some(idx) = p.subscribe.take() else {
            return;
        };
        self.close_conn(idx);
    }

    fn close_conn(&mut self, idx: usize) {
        if let Some(mut conn) = self.conns.get_mut(idx).and_then(Option::take) {
            let _ = self.poll.registry().deregister(&mut conn.socket);
            if let Link::Rtc { rtc, .. } = &mut conn.link {
                rtc.disconnect();
            }
            self.free.push(idx);
        }
    }

    pub(super) fn join_relay(
        &mut self,
        participant: u32,
        relay: SocketAddr,
        room: &str,
        publisher: bool,
        now: Instant,
    ) -> anyhow::Result<()> {
        let idx = self.new_conn(participant, Leg::Subscribe, Link::Plain { relay })?;
        let mut hello = vec![RELAY_JOIN];
        hello.extend_from_slice(room.as_bytes());
        if let Some(Some(conn)) = self.conns.get(idx) {
            // Registration is repeated by nothing: on a LAN or loopback it arrives; a
            // lost one shows up as a silent stream in the report.
            conn.socket
                .send_to(&hello, relay)
                .context("registering with the relay")?;
        }
        let profile = self.state.config.profile;
        let p = self.state.participant(participant)?;
        p.subscribe = Some(idx);
        if publisher {
            p.publish = Some(idx);
            let mut source = Source::new(participant, None, None, &profile, now);
            source.running = true;
            p.source = Some(source);
        }
        Ok(())
    }

    pub(super) fn remove(&mut self, participant: u32) {
        let Some(p) = self.state.participants.remove(&participant) else {
            return;
        };
        let mut idxs = vec![p.publish, p.subscribe];
        idxs.dedup();
        for idx in idxs.into_iter().flatten() {
            self.close_conn(idx);
        }
    }
}

impl State {
    fn participant(&mut self, id: u32) -> anyhow::Result<&mut Participant> {
        self.participants
            .get_mut(&id)
            .context("unknown participant")
    }
}
