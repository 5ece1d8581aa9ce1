//! A simulated browser: two str0m connections (full ICE, frame mode) shaped like the
//! lanmeet web client's. The publish connection offers sendonly Opus + VP8 (one stream
//! or simulcast) and sends labelled frames at 30 fps and every 20 ms; the subscribe
//! connection answers the SFU's offers and records every frame it reassembles.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use lanmeet_proto::{PauseReason, TrackInfo, TrackKind};
use lanmeet_sfu::str0m::change::{SdpAnswer, SdpOffer, SdpPendingOffer};
use lanmeet_sfu::str0m::config::CryptoProvider;
use lanmeet_sfu::str0m::format::Codec;
use lanmeet_sfu::str0m::media::{
    Direction, Frequency, KeyframeRequestKind, MediaData, MediaKind, MediaTime, Mid, Rid,
    Simulcast, SimulcastLayer,
};
use lanmeet_sfu::str0m::net::{Protocol, Receive};
use lanmeet_sfu::str0m::rtp::rtcp::Rtcp;
use lanmeet_sfu::str0m::rtp::{Extension, ExtensionMap, RawPacket, Ssrc};
use lanmeet_sfu::str0m::{Candidate, Event, Input, Output, Rtc, RtcConfig};
use lanmeet_sfu::{ParticipantId, ServerMessage};

use super::net::Network;
use super::payload::{self, Encoding, FrameLabel};

/// Time between two video frames (30 fps).
pub const VIDEO_INTERVAL: Duration = Duration::from_nanos(1_000_000_000 / 30);
/// Time between two Opus frames.
pub const AUDIO_INTERVAL: Duration = Duration::from_millis(20);
/// Video RTP clock ticks per frame (90 kHz / 30 fps).
const VIDEO_TICKS: u64 = 3000;
/// Audio RTP clock ticks per frame (48 kHz × 20 ms).
const AUDIO_TICKS: u64 = 960;
/// How long a connection that asks to be woken "now" again is left alone. str0m may
/// return a timeout equal to the input time; waking it at once again would spin.
const MIN_WAKE: Duration = Duration::from_millis(1);

/// Which of a client's two connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Leg {
    /// Camera and microphone to the SFU.
    Publish,
    /// Everyone else's tracks from the SFU.
    Subscribe,
}

/// When the simulated camera produces a key frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyframePolicy {
    /// The first frame and then every `n`th, and whenever asked.
    Every(u32),
    /// The first frame, then only when asked (a keyframe request arrives).
    OnRequest,
}

/// A frame the camera produced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SentFrame {
    /// Position in the stream (the same for every encoding of one picture).
    pub counter: u32,
    /// Which encoding (see [`payload::encoding`]).
    pub encoding: u8,
    /// A key frame.
    pub keyframe: bool,
    /// When it was handed to the connection.
    pub at: Instant,
}

/// A frame the subscribe connection reassembled.
#[derive(Debug, Clone)]
pub struct ReceivedFrame {
    /// When it came out of str0m.
    pub at: Instant,
    /// The media section it arrived on.
    pub mid: Mid,
    /// The participant the SFU's track map says owns that section.
    pub track_owner: Option<ParticipantId>,
    /// Audio or video, by the track map.
    pub kind: Option<TrackKind>,
    /// What the bytes say about themselves; `None` if they are not a frame of ours.
    pub label: Option<FrameLabel>,
    /// Every byte equals what the publisher sent.
    pub intact: bool,
    /// str0m saw no gap in RTP sequence numbers before it.
    pub contiguous: bool,
    /// Its RTP time, extended (ticks of its clock).
    pub rtp_time: u64,
    /// A hash of its bytes, to match it with a frame of a file.
    pub digest: u64,
}

/// What a connection saw on the wire (from str0m's raw packet events).
#[derive(Debug, Default, Clone)]
pub struct WireCounters {
    /// RTCP NACK messages this side sent.
    pub nacks_sent: u64,
    /// RTCP NACK messages this side received.
    pub nacks_received: u64,
    /// PLI messages this side received.
    pub plis_received: u64,
    /// Transport-wide congestion control feedback reports this side sent.
    pub twcc_sent: u64,
    /// RTP packets received, per SSRC.
    pub rtp_rx: HashMap<Ssrc, u64>,
    /// RTP packets sent, per SSRC.
    pub rtp_tx: HashMap<Ssrc, u64>,
    /// RTP padding packets (bandwidth probes) received, per SSRC.
    pub padding_rx: HashMap<Ssrc, u64>,
}

/// One str0m connection of a client and its network address.
pub struct ClientConn {
    /// The connection.
    pub rtc: Rtc,
    /// Its host candidate.
    pub addr: SocketAddr,
    /// When it next wants [`Input::Timeout`].
    pub timeout: Instant,
    /// When DTLS finished and media could flow.
    pub connected_at: Option<Instant>,
    /// The offer awaiting the SFU's answer (publish side).
    pending: Option<SdpPendingOffer>,
    /// Raw packet counters.
    pub wire: WireCounters,
}

impl ClientConn {
    fn new(crypto: &Arc<CryptoProvider>, addr: SocketAddr, now: Instant) -> Self {
        Self::with_config(RtcConfig::new(), crypto, addr, now)
    }

    /// A connection that knows no transport-wide sequence numbers, so it never sends
    /// TWCC feedback.
    fn without_twcc(crypto: &Arc<CryptoProvider>, addr: SocketAddr, now: Instant) -> Self {
        let mut exts = ExtensionMap::empty();
        for (id, ext) in ExtensionMap::standard().iter() {
            if *ext != Extension::TransportSequenceNumber {
                exts.set(id, ext.clone());
            }
        }
        Self::with_config(RtcConfig::new().set_extension_map(exts), crypto, addr, now)
    }

    fn with_config(
        config: RtcConfig,
        crypto: &Arc<CryptoProvider>,
        addr: SocketAddr,
        now: Instant,
    ) -> Self {
        let mut rtc = config
            .set_crypto_provider(crypto.clone())
            .enable_raw_packets(true)
            .build(now);
        let candidate = Candidate::host(addr, "udp").expect("a fixed IPv4 host candidate");
        rtc.add_local_candidate(candidate);
        ClientConn {
            rtc,
            addr,
            timeout: now,
            connected_at: None,
            pending: None,
            wire: WireCounters::default(),
        }
    }

    /// The SSRC str0m uses for retransmissions (RTX) on received track `mid`.
    pub fn rx_rtx_ssrc(&mut self, mid: Mid) -> Option<Ssrc> {
        self.rtc.direct_api().stream_rx_by_mid(mid, None)?.rtx()
    }

    /// The SSRC str0m uses for retransmissions (RTX) on sent track `mid`.
    pub fn tx_rtx_ssrc(&mut self, mid: Mid) -> Option<Ssrc> {
        self.rtc.direct_api().stream_tx_by_mid(mid, None)?.rtx()
    }

    fn count_raw(&mut self, raw: &RawPacket) {
        let w = &mut self.wire;
        match raw {
            RawPacket::RtcpTx(Rtcp::Nack(_)) => w.nacks_sent += 1,
            RawPacket::RtcpRx(Rtcp::Nack(_)) => w.nacks_received += 1,
            RawPacket::RtcpRx(Rtcp::Pli(_)) => w.plis_received += 1,
            RawPacket::RtcpTx(Rtcp::Twcc(_)) => w.twcc_sent += 1,
            RawPacket::RtpRx(h, _) if !h.has_padding => *w.rtp_rx.entry(h.ssrc).or_default() += 1,
            RawPacket::RtpRx(h, _) => *w.padding_rx.entry(h.ssrc).or_default() += 1,
            RawPacket::RtpTx(h, _) => *w.rtp_tx.entry(h.ssrc).or_default() += 1,
            _ => {}
        }
    }
}

/// The simulated camera and microphone.
pub struct MediaSource {
    policy: KeyframePolicy,
    /// The camera's encodings, lowest first: one, or the simulcast layers.
    pub encodings: Vec<Encoding>,
    /// The microphone's media section in the publish connection.
    pub audio_mid: Mid,
    /// The camera's media section in the publish connection.
    pub video_mid: Mid,
    /// When the first frames were produced; `None` until the connection is up.
    started_at: Option<Instant>,
    /// Stopped by the scenario (camera and microphone off).
    stopped: bool,
    /// Per encoding: the next frame must be a key frame.
    keyframe_asked: Vec<bool>,
    /// Pictures the camera took; each was sent once per encoding.
    pub video_ticks: u32,
    /// Video frames produced, in order.
    pub video: Vec<SentFrame>,
    /// Audio frames produced.
    pub audio_frames: u32,
    /// When keyframe requests arrived.
    pub keyframe_requests: Vec<Instant>,
    /// Level put in the audio level header extension of each audio frame, in dBov
    /// (0 loudest, -127 silence); `None` sends no level, like a browser without it.
    pub audio_level: Option<i8>,
}

impl MediaSource {
    fn next_video(&self) -> Option<Instant> {
        self.due_at(VIDEO_INTERVAL, self.video_ticks)
    }

    fn next_audio(&self) -> Option<Instant> {
        self.due_at(AUDIO_INTERVAL, self.audio_frames)
    }

    fn due_at(&self, interval: Duration, count: u32) -> Option<Instant> {
        if self.stopped {
            return None;
        }
        Some(self.started_at? + interval * count)
    }

    /// When the next frame of either kind is due.
    pub fn next_due(&self) -> Option<Instant> {
        match (self.next_video(), self.next_audio()) {
            (Some(v), Some(a)) => Some(v.min(a)),
            (v, a) => v.or(a),
        }
    }
}

/// A simulated participant's browser.
pub struct SimClient {
    /// Display name, used by scenarios to refer to it.
    pub name: String,
    /// The id the SFU knows it by.
    pub id: ParticipantId,
    /// Address of the publish connection.
    pub publish_addr: SocketAddr,
    /// Address of the subscribe connection.
    pub subscribe_addr: SocketAddr,
    /// The publish connection, once publishing.
    pub publish: Option<ClientConn>,
    /// The mid of each section of the publish offer: audio, video, then any extra video.
    pub publish_mids: Vec<Mid>,
    /// The subscribe connection, once the SFU offered one.
    pub subscribe: Option<ClientConn>,
    /// Camera and microphone, once publishing.
    pub source: Option<MediaSource>,
    /// Every frame received, in order of arrival.
    pub received: Vec<ReceivedFrame>,
    /// The latest track map from the SFU.
    pub tracks: Vec<TrackInfo>,
    /// Every subscribe offer's track map, with when it arrived.
    pub offers: Vec<(Instant, Vec<TrackInfo>)>,
    /// Per subscribe offer, the size in bytes of the signaling messages (JSON, as they
    /// travel over the WebSocket): the offer and this client's answer.
    pub sdp_sizes: Vec<(usize, usize)>,
    /// The latest subscribe offer's SDP.
    pub last_offer: String,
    /// How many times the SFU asked for a new subscribe connection.
    pub new_subscribe_connections: usize,
    /// How many of the next subscribe answers to break (the SFU must refuse them).
    pub refuse_answers: usize,
    /// How many of the next subscribe answers signaling refuses as too large (the SFU
    /// never sees them, only that they were refused).
    pub oversized_answers: usize,
    /// Signaling messages other than answers and offers (errors, mostly).
    pub other_signals: Vec<ServerMessage>,
    /// Active speaker announcements, with when they arrived.
    pub speakers: Vec<(Instant, Option<ParticipantId>)>,
    /// `video_state` messages: when, whose track, layer, pause reason.
    pub video_states: Vec<(Instant, ParticipantId, Option<u8>, Option<PauseReason>)>,
    /// The SFU reported this participant's media dead.
    pub media_failed: bool,
    /// Whether the subscribe connection offers transport-wide congestion control
    /// feedback (the header extension TWCC needs).
    pub twcc: bool,
    /// Its subscribe connection decodes only H.264 (and Opus), like a third-party
    /// client without VP8.
    pub h264_only: bool,
}

impl SimClient {
    /// A client with the given addresses; it has no connection yet.
    pub fn new(
        name: &str,
        id: ParticipantId,
        publish_addr: SocketAddr,
        subscribe_addr: SocketAddr,
    ) -> Self {
        SimClient {
            name: name.to_string(),
            id,
            publish_addr,
            subscribe_addr,
            publish: None,
            publish_mids: Vec::new(),
            subscribe: None,
            source: None,
            received: Vec::new(),
            tracks: Vec::new(),
            offers: Vec::new(),
            sdp_sizes: Vec::new(),
            last_offer: String::new(),
            new_subscribe_connections: 0,
            refuse_answers: 0,
            oversized_answers: 0,
            other_signals: Vec::new(),
            speakers: Vec::new(),
            video_states: Vec::new(),
            media_failed: false,
            twcc: true,
            h264_only: false,
        }
    }

    /// The tag this client writes into its frames.
    pub fn tag(&self) -> u8 {
        self.id.0 as u8
    }

    /// Creates the publish connection and returns its SDP offer: sendonly audio and
    /// video, like `getUserMedia` + `addTransceiver(.., {direction: "sendonly"})`. The
    /// video is sent as `encodings` (simulcast when they have rids). `extra_videos`
    /// more sendonly video sections follow (a screen, or a forged second one); nothing
    /// is sent on them. [`SimClient::publish_mids`] lists every section's mid.
    pub fn publish_offer(
        &mut self,
        crypto: &Arc<CryptoProvider>,
        now: Instant,
        policy: KeyframePolicy,
        encodings: &[Encoding],
        extra_videos: usize,
    ) -> String {
        let mut conn = ClientConn::new(crypto, self.publish_addr, now);
        let stream = format!("{}-stream", self.name);
        let mut change = conn.rtc.sdp_api();
        let audio_mid = change.add_media(
            MediaKind::Audio,
            Direction::SendOnly,
            Some(stream.clone()),
            Some(format!("{}-mic", self.name)),
            None,
        );
        let rids: Vec<&str> = encodings.iter().filter_map(|e| e.rid).collect();
        let simulcast = (!rids.is_empty()).then(|| {
            let mut s = Simulcast::new();
            for rid in rids {
                s.add_send_layer(SimulcastLayer::new(rid));
            }
            s
        });
        let video_mid = change.add_media(
            MediaKind::Video,
            Direction::SendOnly,
            Some(stream.clone()),
            Some(format!("{}-cam", self.name)),
            simulcast,
        );
        self.publish_mids = vec![audio_mid, video_mid];
        for n in 0..extra_videos {
            self.publish_mids.push(change.add_media(
                MediaKind::Video,
                Direction::SendOnly,
                Some(stream.clone()),
                Some(format!("{}-video-{n}", self.name)),
                None,
            ));
        }
        let (offer, pending) = change
            .apply()
            .expect("adding media always changes the session");
        conn.pending = Some(pending);
        self.publish = Some(conn);
        self.source = Some(MediaSource {
            policy,
            encodings: encodings.to_vec(),
            audio_mid,
            video_mid,
            started_at: None,
            stopped: false,
            keyframe_asked: vec![false; encodings.len()],
            video_ticks: 0,
            video: Vec::new(),
            audio_frames: 0,
            keyframe_requests: Vec::new(),
            audio_level: None,
        });
        offer.to_sdp_string()
    }

    /// Adds a sendonly video section (a screen share) to the existing publish
    /// connection and returns the renegotiation offer, as the browser does when a
    /// screen share starts.
    pub fn renegotiate_publish(&mut self) -> String {
        let name = self.name.clone();
        let conn = self
            .publish
            .as_mut()
            .expect("renegotiation follows the first offer");
        let mut change = conn.rtc.sdp_api();
        change.add_media(
            MediaKind::Video,
            Direction::SendOnly,
            Some(format!("{name}-screen-stream")),
            Some(format!("{name}-screen")),
            None,
        );
        let (offer, pending) = change
            .apply()
            .expect("adding media always changes the session");
        conn.pending = Some(pending);
        offer.to_sdp_string()
    }

    /// Applies the SFU's answer to the publish offer.
    pub fn accept_publish_answer(&mut self, now: Instant, sdp: &str) {
        let conn = self
            .publish
            .as_mut()
            .expect("an answer only follows our offer");
        let pending = conn.pending.take().expect("one answer per offer");
        let answer = SdpAnswer::from_sdp_string(sdp).expect("the SFU answers with valid SDP");
        conn.rtc
            .sdp_api()
            .accept_answer(pending, answer)
            .expect("the SFU's answer matches our offer");
        conn.timeout = now;
    }

    /// Applies a subscribe offer and returns the answer for the SFU.
    pub fn accept_subscribe_offer(
        &mut self,
        crypto: &Arc<CryptoProvider>,
        now: Instant,
        sdp: &str,
        tracks: Vec<TrackInfo>,
    ) -> String {
        let addr = self.subscribe_addr;
        let twcc = self.twcc;
        let h264_only = self.h264_only;
        let conn = self.subscribe.get_or_insert_with(|| {
            if h264_only {
                let config = RtcConfig::new()
                    .clear_codecs()
                    .enable_opus(true, false)
                    .enable_h264(true);
                ClientConn::with_config(config, crypto, addr, now)
            } else if twcc {
                ClientConn::new(crypto, addr, now)
            } else {
                ClientConn::without_twcc(crypto, addr, now)
            }
        });
        let offer = SdpOffer::from_sdp_string(sdp).expect("the SFU offers valid SDP");
        let answer = conn
            .rtc
            .sdp_api()
            .accept_offer(offer)
            .expect("a browser accepts the SFU's offer");
        conn.timeout = now;
        self.offers.push((now, tracks.clone()));
        self.tracks = tracks;
        answer.to_sdp_string()
    }

    /// The connection on `leg`, if it exists.
    pub fn conn(&mut self, leg: Leg) -> Option<&mut ClientConn> {
        match leg {
            Leg::Publish => self.publish.as_mut(),
            Leg::Subscribe => self.subscribe.as_mut(),
        }
    }

    /// The connection whose address is `addr`.
    pub fn leg_at(&self, addr: SocketAddr) -> Option<Leg> {
        if addr == self.publish_addr {
            Some(Leg::Publish)
        } else if addr == self.subscribe_addr {
            Some(Leg::Subscribe)
        } else {
            None
        }
    }

    /// The earliest time anything of this client wants to run.
    pub fn next_wakeup(&self) -> Option<Instant> {
        let conns = [self.publish.as_ref(), self.subscribe.as_ref()];
        let rtc = conns.into_iter().flatten().map(|c| c.timeout).min();
        let media = self.source.as_ref().and_then(MediaSource::next_due);
        [rtc, media].into_iter().flatten().min()
    }

    /// A datagram arrived on `leg`.
    pub fn receive(
        &mut self,
        now: Instant,
        leg: Leg,
        from: SocketAddr,
        bytes: &[u8],
        net: &mut Network,
    ) {
        let Some(conn) = self.conn(leg) else { return };
        let Ok(contents) = bytes.try_into() else {
            return;
        };
        let input = Input::Receive(
            now,
            Receive {
                proto: Protocol::Udp,
                source: from,
                destination: conn.addr,
                contents,
            },
        );
        // A browser drops what it cannot use; so do we.
        let _ = conn.rtc.handle_input(input);
        self.drive(now, leg, false, net);
    }

    /// Wakes every connection that is due and produces every frame that is due.
    pub fn wake(&mut self, now: Instant, net: &mut Network) {
        for leg in [Leg::Publish, Leg::Subscribe] {
            let due = self.conn(leg).is_some_and(|c| c.timeout <= now);
            if due {
                if let Some(conn) = self.conn(leg) {
                    let _ = conn.rtc.handle_input(Input::Timeout(now));
                }
                self.drive(now, leg, true, net);
            }
        }
        if self.write_due_media(now) {
            self.drive(now, Leg::Publish, false, net);
        }
    }

    /// Polls connection `leg` until it has nothing more to say.
    pub fn drive(&mut self, now: Instant, leg: Leg, after_timeout: bool, net: &mut Network) {
        let mut events = Vec::new();
        {
            let Some(conn) = self.conn(leg) else { return };
            loop {
                match conn.rtc.poll_output() {
                    Ok(Output::Timeout(t)) => {
                        conn.timeout = if after_timeout && t <= now {
                            now + MIN_WAKE
                        } else {
                            t
                        };
                        break;
                    }
                    Ok(Output::Transmit(t)) => {
                        net.send(now, t.source, t.destination, t.contents.to_vec());
                    }
                    Ok(Output::Event(e)) => events.push(e),
                    Err(e) => panic!("{}'s {leg:?} connection failed: {e}", self.name),
                }
            }
        }
        for e in events {
            self.handle_event(now, leg, e);
        }
    }

    fn handle_event(&mut self, now: Instant, leg: Leg, event: Event) {
        match event {
            Event::Connected => {
                if let Some(conn) = self.conn(leg) {
                    conn.connected_at = Some(now);
                }
                if leg == Leg::Publish {
                    if let Some(source) = self.source.as_mut() {
                        source.started_at = Some(now);
                    }
                }
            }
            Event::KeyframeRequest(req) if leg == Leg::Publish => {
                if let Some(source) = self.source.as_mut() {
                    // Like a browser's encoder: the next frame of the encoding asked
                    // for (of every encoding, if the request names none) becomes a key
                    // frame.
                    let asked = req.rid.map(|r| r.to_string());
                    for (e, flag) in source.encodings.iter().zip(&mut source.keyframe_asked) {
                        if asked.is_none() || asked.as_deref() == e.rid {
                            *flag = true;
                        }
                    }
                    source.keyframe_requests.push(now);
                }
            }
            Event::MediaData(data) if leg == Leg::Subscribe => self.record_frame(now, data),
            Event::RawPacket(raw) => {
                if let Some(conn) = self.conn(leg) {
                    conn.count_raw(&raw);
                }
            }
            _ => {}
        }
    }

    fn record_frame(&mut self, now: Instant, data: MediaData) {
        let track = self.tracks.iter().find(|t| t.mid == data.mid.to_string());
        let kind = track.map(|t| t.kind);
        let read = match kind {
            Some(TrackKind::Video) => payload::read_video(&data.data),
            Some(TrackKind::Audio) => payload::read_audio(&data.data),
            None => None,
        };
        self.received.push(ReceivedFrame {
            at: now,
            mid: data.mid,
            track_owner: track.map(|t| t.participant),
            kind,
            label: read.map(|(label, _)| label),
            intact: read.is_some_and(|(_, intact)| intact),
            contiguous: data.contiguous,
            rtp_time: data.time.rebase(data.params.spec().clock_rate).numer(),
            digest: digest(&data.data),
        });
    }

    /// Hands every due frame to the publish connection. Returns whether it wrote any.
    fn write_due_media(&mut self, now: Instant) -> bool {
        let tag = self.tag();
        let (Some(source), Some(conn)) = (self.source.as_mut(), self.publish.as_mut()) else {
            return false;
        };
        let mut wrote = false;
        while let Some(at) = source.next_video().filter(|t| *t <= now) {
            let counter = source.video_ticks;
            let time = MediaTime::from_90khz(u64::from(counter) * VIDEO_TICKS);
            let simulcast = source.encodings.len() > 1 || source.encodings[0].rid.is_some();
            for (i, e) in source.encodings.iter().enumerate() {
                let keyframe = counter == 0
                    || source.keyframe_asked[i]
                    || matches!(source.policy, KeyframePolicy::Every(n) if counter.is_multiple_of(n));
                source.keyframe_asked[i] = false;
                let n = if simulcast { i as u8 + 1 } else { 0 };
                let frame = payload::video_frame(tag, n, counter, keyframe);
                let mut writer = conn.rtc.writer(source.video_mid).expect("negotiated");
                if let Some(rid) = e.rid {
                    writer = writer.rid(Rid::from(rid));
                }
                write(writer, Codec::Vp8, (at, time, None), frame);
                source.video.push(SentFrame {
                    counter,
                    encoding: n,
                    keyframe,
                    at,
                });
            }
            source.video_ticks += 1;
            wrote = true;
        }
        while let Some(at) = source.next_audio().filter(|t| *t <= now) {
            let counter = source.audio_frames;
            let frame = payload::audio_frame(tag, counter);
            let time = MediaTime::new(u64::from(counter) * AUDIO_TICKS, Frequency::FORTY_EIGHT_KHZ);
            let writer = conn.rtc.writer(source.audio_mid).expect("negotiated");
            write(writer, Codec::Opus, (at, time, source.audio_level), frame);
            source.audio_frames += 1;
            wrote = true;
        }
        wrote
    }

    /// Asks for a key frame of `publisher`'s video, as a browser's decoder does after
    /// a loss it cannot repair. Panics if there is no such track yet.
    pub fn request_keyframe(&mut self, now: Instant, publisher: ParticipantId, net: &mut Network) {
        let mid = self
            .tracks
            .iter()
            .find(|t| t.participant == publisher && t.kind == TrackKind::Video)
            .map(|t| Mid::from(t.mid.as_str()))
            .expect("subscribed to the publisher's video");
        let conn = self
            .subscribe
            .as_mut()
            .expect("subscribed to the publisher's video");
        conn.rtc
            .writer(mid)
            .expect("a negotiated track")
            .request_keyframe(None, KeyframeRequestKind::Pli)
            .expect("a receiving video track can ask for a key frame");
        self.drive(now, Leg::Subscribe, false, net);
    }

    /// Camera and microphone off: no more frames.
    pub fn stop_media(&mut self) {
        if let Some(source) = self.source.as_mut() {
            source.stopped = true;
        }
    }
}

/// Writes one frame with the negotiated payload type of `codec`.
/// `when` is (wallclock, media time, audio level).
fn write(
    mut writer: lanmeet_sfu::str0m::media::Writer<'_>,
    codec: Codec,
    when: (Instant, MediaTime, Option<i8>),
    frame: Vec<u8>,
) {
    let (wallclock, time, level) = when;
    if let Some(level) = level {
        writer = writer.audio_level(level, level > -50);
    }
    let pt = writer
        .payload_params()
        .find(|p| p.spec().codec == codec)
        .map(|p| p.pt())
        .expect("the SFU accepts Opus and VP8");
    writer
        .write(pt, wallclock, time, frame)
        .expect("a negotiated payload type");
}

/// A hash of a frame's bytes.
pub fn digest(bytes: &[u8]) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    bytes.hash(&mut h);
    h.finish()
}
