//! Cross-worker fan-out: one room's members spread over several workers (several
//! [`Sfu`]s), each forwarding to its own subscribers.
//!
//! The hand-off is an explicit interface, so that the same shape can later carry a room
//! spanning several servers: a worker's packets leave as [`Output::Relay`] (one per
//! packet and interested worker, to be batched by the caller), its control messages as
//! [`Output::RelayControl`]; the other worker takes them in with [`Sfu::handle_relay`]
//! and [`Sfu::handle_relay_control`].
//!
//! - A worker whose first member of a room arrives ([`Sfu::join_across`], told by the
//!   caller which other workers hold members of the room) sends each of them
//!   [`RelayControl::Join`]. A worker that hears `Join` relays its own publishers of the
//!   room to the sender from then on: it announces their tracks
//!   ([`RelayControl::TrackAdded`]) and hands each packet over once, whatever the number
//!   of subscribers there. It answers with its own `Join` if it has members, so tracks
//!   flow both ways.
//! - On the receiving worker a relayed publisher is a *proxy*: a member of the room
//!   without connections, whose tracks local subscribers subscribe to like any other.
//!   Relayed packets go through the same `fan_out` (layer choice, segments, VP8 ids,
//!   top-N audio), and each worker encrypts and sends to its own subscribers; NACKs are
//!   answered from each subscriber's own str0m send buffer, so repair never crosses.
//! - A keyframe wanted on the receiving worker goes back to the publisher's worker as
//!   [`RelayControl::KeyframeRequest`], through the same limiter as a local request.
//! - A publisher leaving sends [`RelayControl::SourceLeft`]; the last member of a
//!   room leaving a worker sends [`RelayControl::Leave`], which stops the relay to it.

use std::sync::Arc;
use std::time::Instant;

use lanmeet_proto::{ParticipantId, TrackSource};
use str0m::format::PayloadParams;
use str0m::media::{MediaKind, Mid, Rid};
use str0m::rtp::{ExtensionValues, VideoOrientation};
use tracing::{debug, info};

use super::{Ingress, Output, Sfu, PACKET_OVERHEAD};
use crate::forward::{Incoming, Subscription};
use crate::layers::Layers;
use crate::peer::PublishedTrack;
use crate::stats::MediaClass;
use crate::vp8;

/// A media worker, as its peers name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct WorkerId(pub usize);

impl std::fmt::Display for WorkerId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "w{}", self.0)
    }
}

/// A publisher's packet handed to another worker: the payload (shared, not copied) and
/// what the publisher's worker read of it when it arrived, so that it is not read again.
#[derive(Debug, Clone)]
pub struct RelayPacket {
    source: ParticipantId,
    mid: Mid,
    rid: Option<Rid>,
    params: PayloadParams,
    seq: u64,
    ts: u32,
    marker: bool,
    /// When the publisher's worker took it in.
    at: Instant,
    /// When it arrived from the network.
    arrived: Instant,
    /// Starts a key frame (always true for audio).
    keyframe: bool,
    /// A VP8 key frame's picture size.
    size: Option<(u32, u32)>,
    vp8: Option<vp8::Parsed>,
    /// The header extensions forwarded (audio level, voice activity, orientation):
    /// these three, not str0m's whole set, keep the packet small.
    audio_level: Option<i8>,
    voice_activity: Option<bool>,
    video_orientation: Option<VideoOrientation>,
    payload: Arc<[u8]>,
}

impl RelayPacket {
    /// The publishing participant.
    pub fn source(&self) -> ParticipantId {
        self.source
    }

    /// The RTP payload's length in bytes.
    pub fn payload_len(&self) -> usize {
        self.payload.len()
    }
}

/// A track of a publisher on another worker (see [`RelayControl::TrackAdded`]).
#[derive(Debug, Clone)]
pub struct RelayedTrack {
    room: Arc<str>,
    source: ParticipantId,
    mid: Mid,
    kind: MediaKind,
    track_source: TrackSource,
    codecs: Vec<PayloadParams>,
}

/// A control message between the workers of one room.
#[derive(Debug, Clone)]
pub enum RelayControl {
    /// The sender now has members in `room`: relay this worker's publishers of it there.
    Join {
        /// The room.
        room: Arc<str>,
    },
    /// The sender has no member in `room` any more: stop relaying to it.
    Leave {
        /// The room.
        room: Arc<str>,
    },
    /// A track of a publisher on the sender, whose packets follow.
    TrackAdded(RelayedTrack),
    /// A publisher on the sender left: its tracks are gone.
    SourceLeft {
        /// The publisher.
        source: ParticipantId,
    },
    /// A subscriber on the sender needs a key frame of `source`'s track `mid`.
    KeyframeRequest {
        /// The publisher, on the receiving worker.
        source: ParticipantId,
        /// The track's mid on the publisher's connection.
        mid: Mid,
        /// The simulcast layer (`None`: the only or the lowest).
        rid: Option<Rid>,
    },
}

impl Sfu {
    /// Adds participant `id` to `room` like [`Sfu::join`], where `room` also has members
    /// on the workers `others`. If `id` is this worker's first member of the room, each
    /// of them is asked for its publishers' tracks ([`RelayControl::Join`]) and will be
    /// sent this worker's.
    pub fn join_across(
        &mut self,
        now: Instant,
        room: &str,
        id: ParticipantId,
        others: &[WorkerId],
    ) {
        self.join(now, room, id);
        let Some(r) = self.rooms.get_mut(room) else {
            return;
        };
        let mut ask: Vec<WorkerId> = others.to_vec();
        ask.extend(r.relay.to.iter().copied());
        ask.sort_unstable();
        ask.dedup();
        for w in ask {
            if !r.relay.told.contains(&w) {
                r.relay.told.push(w);
                debug!(%room, to = %w, "asking for the room's tracks");
                self.outputs.push_back(Output::RelayControl {
                    to: w,
                    control: RelayControl::Join {
                        room: Arc::from(room),
                    },
                });
            }
        }
    }

    /// Whether `id` is a publisher of another worker, relayed here.
    pub(super) fn is_relayed(&self, id: ParticipantId) -> bool {
        self.relayed.contains_key(&id)
    }

    /// Packets handed over by worker `from` ([`Output::Relay`] there): each goes to this
    /// worker's subscribers of its track, as a local publisher's would.
    pub fn handle_relay(&mut self, now: Instant, from: WorkerId, packets: &[RelayPacket]) {
        for p in packets {
            self.stats.relayed_in += 1;
            if self.relayed.get(&p.source) != Some(&from) {
                // Its track was not announced, or it left: nobody here subscribes.
                continue;
            }
            let Some(ingress) = self.relayed_ingress(now, p) else {
                continue;
            };
            if let Some(layer) = self.fan_out(now, p.source, &ingress) {
                self.request_keyframe(now, p.source, ingress.mid, Some(layer));
            }
            if ingress.new_codec {
                for other in self.room_members_of(p.source) {
                    self.offer_if_needed(now, other);
                }
            }
        }
        self.drive(now);
    }

    /// The receiving side's `ingress`: meters the layer on the proxy's track, feeds the
    /// speaker detector, and rebuilds what `fan_out` needs from what the publisher's
    /// worker read.
    fn relayed_ingress(&mut self, now: Instant, p: &RelayPacket) -> Option<Ingress> {
        let peer = self.peers.get_mut(&p.source)?;
        let track = peer.tracks.iter_mut().find(|t| t.mid == p.mid)?;
        let new_codec = !track.codecs.iter().any(|c| c.pt() == p.params.pt());
        if new_codec {
            track.codecs.push(p.params);
        }
        let kind = track.kind;
        let class = MediaClass::of(kind, track.source);
        let (index, shifted) = track.layers.index_of(p.rid);
        track
            .layers
            .on_packet(index, now, p.payload.len() + PACKET_OVERHEAD, p.size);
        if let (MediaKind::Audio, Some(level)) = (kind, p.audio_level) {
            if let Some(room) = self.rooms.get_mut(&peer.room) {
                room.speakers.on_audio(p.source, now, level);
            }
        }
        Some(Ingress {
            mid: p.mid,
            rid: p.rid,
            kind,
            class,
            params: p.params,
            vp8: p.vp8,
            vp8_patchable: Default::default(),
            size: p.size,
            index,
            shifted,
            new_codec,
            incoming: Incoming {
                layer: if kind == MediaKind::Video { index } else { 0 },
                seq: p.seq,
                ts: p.ts,
                at: p.at,
                keyframe: p.keyframe,
                clock_rate: p.params.spec().clock_rate.get(),
            },
            exts: ExtensionValues {
                audio_level: p.audio_level,
                voice_activity: p.voice_activity,
                video_orientation: p.video_orientation,
                ..Default::default()
            },
            payload: p.payload.clone(),
            marker: p.marker,
            arrived: p.arrived,
        })
    }

    /// Hands a local publisher's packet, as `ingress` read it, to every other worker of
    /// its room that asked for the room's tracks: once per worker.
    pub(super) fn relay_out(&mut self, source: ParticipantId, ingress: &Ingress) {
        let Some(room) = self
            .peers
            .get(&source)
            .and_then(|p| self.rooms.get(&p.room))
        else {
            return;
        };
        for &to in &room.relay.to {
            self.stats.relayed_out += 1;
            self.outputs.push_back(Output::Relay {
                to,
                packet: RelayPacket {
                    source,
                    mid: ingress.mid,
                    rid: ingress.rid,
                    params: ingress.params,
                    seq: ingress.incoming.seq,
                    ts: ingress.incoming.ts,
                    marker: ingress.marker,
                    at: ingress.incoming.at,
                    arrived: ingress.arrived,
                    keyframe: ingress.incoming.keyframe,
                    size: ingress.size,
                    vp8: ingress.vp8,
                    audio_level: ingress.exts.audio_level,
                    voice_activity: ingress.exts.voice_activity,
                    video_orientation: ingress.exts.video_orientation,
                    payload: ingress.payload.clone(),
                },
            });
        }
    }

    /// A control message from worker `from` ([`Output::RelayControl`] there).
    pub fn handle_relay_control(&mut self, now: Instant, from: WorkerId, control: RelayControl) {
        match control {
            RelayControl::Join { room } => self.relay_joined(from, room),
            RelayControl::Leave { room } => self.relay_left(now, from, &room),
            RelayControl::TrackAdded(track) => self.relayed_track_added(now, from, track),
            RelayControl::SourceLeft { source } => {
                if self.relayed.get(&source) == Some(&from) {
                    self.leave(now, source);
                }
            }
            RelayControl::KeyframeRequest { source, mid, rid } => {
                let layer = self
                    .peers
                    .get(&source)
                    .and_then(|p| p.tracks.iter().find(|t| t.mid == mid))
                    .and_then(|t| t.layers.list.iter().position(|l| l.rid == rid));
                self.request_keyframe(now, source, mid, layer);
            }
        }
        self.drive(now);
    }

    /// Worker `from` has members in `room`: it gets this worker's publishers' tracks
    /// from now on, and is asked for its own if this worker has members.
    fn relay_joined(&mut self, from: WorkerId, room: Arc<str>) {
        let Sfu {
            rooms,
            peers,
            relayed,
            stations,
            outputs,
            ..
        } = self;
        let r = rooms.entry(room.clone()).or_default();
        if !r.relay.to.contains(&from) {
            r.relay.to.push(from);
            info!(%room, to = %from, "relaying the room's tracks to another worker");
            // Stations play on one worker: their packets are not relayed.
            let locals = r
                .members
                .iter()
                .filter(|m| !relayed.contains_key(m) && !stations.contains_key(m));
            for &m in locals {
                let Some(p) = peers.get(&m) else {
                    continue;
                };
                for t in &p.tracks {
                    outputs.push_back(Output::RelayControl {
                        to: from,
                        control: RelayControl::TrackAdded(announce(&room, m, t)),
                    });
                }
            }
        }
        let has_members = r.members.iter().any(|m| !relayed.contains_key(m));
        if has_members && !r.relay.told.contains(&from) {
            r.relay.told.push(from);
            outputs.push_back(Output::RelayControl {
                to: from,
                control: RelayControl::Join { room },
            });
        }
    }

    /// Worker `from` has no members in `room` any more: nothing goes there, and its
    /// publishers are gone.
    fn relay_left(&mut self, now: Instant, from: WorkerId, room: &str) {
        let Some(r) = self.rooms.get_mut(room) else {
            return;
        };
        info!(%room, to = %from, "no more relaying the room's tracks to another worker");
        r.relay.to.retain(|w| *w != from);
        r.relay.told.retain(|w| *w != from);
        let gone: Vec<ParticipantId> = r
            .members
            .iter()
            .copied()
            .filter(|m| self.relayed.get(m) == Some(&from))
            .collect();
        for source in gone {
            self.leave(now, source);
        }
        if let Some(r) = self.rooms.get(room) {
            if r.members.is_empty() && r.relay.to.is_empty() {
                self.rooms.remove(room);
            }
        }
    }

    /// A publisher on worker `from` has `track`: this worker's members of its room
    /// subscribe to it. Ignored when this worker has no member there (any more).
    fn relayed_track_added(&mut self, now: Instant, from: WorkerId, track: RelayedTrack) {
        let Some(room) = self.rooms.get(&track.room) else {
            return;
        };
        let locals: Vec<ParticipantId> = room
            .members
            .iter()
            .copied()
            .filter(|m| !self.relayed.contains_key(m) && *m != track.source)
            .collect();
        if locals.is_empty() {
            return;
        }
        let source = track.source;
        if !self.peers.contains_key(&source) {
            let mut proxy = self.new_peer(now, track.room.clone(), Vec::new());
            // It never connects: its subscribe connection is never polled.
            proxy.subscribe.dead = true;
            self.peers.insert(source, proxy);
            self.relayed.insert(source, from);
            if let Some(room) = self.rooms.get_mut(&track.room) {
                room.members.push(source);
            }
            debug!(%source, room = %track.room, from = %from, "publisher relayed from another worker");
        }
        if self.relayed.get(&source) != Some(&from) {
            return;
        }
        let Some(peer) = self.peers.get_mut(&source) else {
            return;
        };
        if peer.tracks.iter().any(|t| t.mid == track.mid) {
            return;
        }
        peer.tracks.push(PublishedTrack {
            mid: track.mid,
            kind: track.kind,
            source: track.track_source,
            layers: Layers::new(now),
            codecs: track.codecs,
        });
        for other in locals {
            if let Some(p) = self.peers.get_mut(&other) {
                p.subscriptions.push(Subscription::new(
                    source,
                    track.mid,
                    track.kind,
                    track.track_source,
                ));
            }
            self.offer_if_needed(now, other);
        }
    }

    /// Tells the room's other workers of a local publisher's new track.
    pub(super) fn announce_track(&mut self, source: ParticipantId, mid: Mid) {
        let Some(peer) = self.peers.get(&source) else {
            return;
        };
        let Some(room) = self.rooms.get(&peer.room) else {
            return;
        };
        let Some(track) = peer.tracks.iter().find(|t| t.mid == mid) else {
            return;
        };
        for &to in &room.relay.to {
            self.outputs.push_back(Output::RelayControl {
                to,
                control: RelayControl::TrackAdded(announce(&peer.room, source, track)),
            });
        }
    }

    /// A participant left this worker's part of `room`: the other workers hear of a
    /// publisher's leaving, and when no member of the room is left here, this worker
    /// leaves the room's relay (the proxies of other workers' publishers go too).
    pub(super) fn relay_after_leave(&mut self, id: ParticipantId, room: &Arc<str>) {
        if self.relayed.remove(&id).is_some() {
            return;
        }
        let Some(r) = self.rooms.get_mut(room) else {
            return;
        };
        for &to in &r.relay.to {
            self.outputs.push_back(Output::RelayControl {
                to,
                control: RelayControl::SourceLeft { source: id },
            });
        }
        if r.members.iter().any(|m| !self.relayed.contains_key(m)) {
            return;
        }
        let mut workers = std::mem::take(&mut r.relay.to);
        workers.append(&mut r.relay.told);
        workers.sort_unstable();
        workers.dedup();
        for to in workers {
            self.outputs.push_back(Output::RelayControl {
                to,
                control: RelayControl::Leave { room: room.clone() },
            });
        }
        let proxies = std::mem::take(&mut r.members);
        self.rooms.remove(room);
        for p in proxies {
            self.relayed.remove(&p);
            if let Some(mut peer) = self.peers.remove(&p) {
                peer.subscribe.rtc.disconnect();
            }
            self.dirty.retain(|(d, _)| *d != p);
        }
    }

    /// Asks the worker of relayed publisher `source` for a key frame of its track `mid`,
    /// layer `rid`. Returns false if `source` is not relayed.
    pub(super) fn relay_keyframe_request(
        &mut self,
        source: ParticipantId,
        mid: Mid,
        rid: Option<Rid>,
    ) -> bool {
        let Some(&to) = self.relayed.get(&source) else {
            return false;
        };
        self.outputs.push_back(Output::RelayControl {
            to,
            control: RelayControl::KeyframeRequest { source, mid, rid },
        });
        true
    }
}

/// The announcement of `source`'s `track` in `room`.
fn announce(room: &Arc<str>, source: ParticipantId, track: &PublishedTrack) -> RelayedTrack {
    RelayedTrack {
        room: room.clone(),
        source,
        mid: track.mid,
        kind: track.kind,
        track_source: track.source,
        codecs: track.codecs.clone(),
    }
}
