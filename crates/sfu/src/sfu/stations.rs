//! Stations inside the [`Sfu`]: a station is a publisher without a peer connection.
//!
//! It is a participant of its own room whose tracks are the file's video and audio;
//! viewers join that room like any participant and get subscriptions to them, offers,
//! NACK repair and layer allocation as for a camera. Instead of arriving on a publish
//! connection, its packets come from the station's clock ([`crate::station`]) when
//! [`Sfu::handle_timeout`] finds them due, and go through the same fan-out as a
//! participant's. A viewer that waits for a key frame is given the station's packets
//! since its last key frame at once (a file cannot answer a keyframe request), with
//! timestamps drawn together so its decoder shows the current picture instead of
//! replaying the last second.

use std::sync::Arc;
use std::time::{Duration, Instant};

use lanmeet_proto::{ParticipantId, TrackSource};
use str0m::format::{Codec, PayloadParams};
use str0m::media::{MediaKind, Mid};
use str0m::rtp::ExtensionValues;
use tracing::{info, warn};

use super::{write_to_subscriber, Ingress, Sfu, PACKET_OVERHEAD};
use crate::forward::Subscription;
use crate::forward::{Incoming, SubState, Verdict};
use crate::layers::Layers;
use crate::negotiation;
use crate::peer::{Leg, PublishedTrack};
use crate::station::{Station, StationMedia, StationPacket, StationTrack};
use crate::stats::MediaClass;

/// The station's video track's mid (its own numbering: it has no connection).
const VIDEO_MID: &str = "v";
/// The station's audio track's mid.
const AUDIO_MID: &str = "a";

/// A station playing on this worker.
pub(super) struct StationSource {
    station: Station,
}

/// How a station is doing, for listings and tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StationStatus {
    /// Where its clock is in the file.
    pub position: Duration,
    /// One pass through the file.
    pub duration: Duration,
    /// Viewers receiving its media.
    pub viewers: usize,
    /// RTP packets it produced since it started (none while nobody watches).
    pub packets: u64,
    /// Whether it is producing packets now.
    pub running: bool,
}

impl Sfu {
    /// Starts station `id` in `room`: its clock starts now; viewers are whoever else
    /// joins `room` ([`Sfu::join`]). `id` must not be a participant's.
    pub fn start_station(
        &mut self,
        now: Instant,
        id: ParticipantId,
        room: &str,
        media: Arc<StationMedia>,
    ) {
        if self.peers.contains_key(&id) {
            warn!(%id, "station id already in use");
            return;
        }
        self.join(now, room, id);
        let all = negotiation::all_codecs();
        let codec_params = |codec: Codec| all.find(|p| p.spec().codec == codec).copied();
        let mut tracks = Vec::new();
        if let Some(v) = &media.video {
            tracks.push((
                Mid::from(VIDEO_MID),
                MediaKind::Video,
                TrackSource::Camera,
                codec_params(v.codec),
            ));
        }
        if let Some(a) = &media.audio {
            tracks.push((
                Mid::from(AUDIO_MID),
                MediaKind::Audio,
                TrackSource::Microphone,
                codec_params(a.codec),
            ));
        }
        let Some(peer) = self.peers.get_mut(&id) else {
            return;
        };
        // It never connects: its subscribe connection is never polled, and it is
        // subscribed to nothing.
        peer.subscribe.dead = true;
        peer.subscriptions.clear();
        let others = self
            .rooms
            .get(&peer.room)
            .map(|r| r.others(id))
            .unwrap_or_default();
        for &(mid, kind, source, params) in &tracks {
            peer.tracks.push(PublishedTrack {
                mid,
                kind,
                source,
                layers: Layers::new(now),
                codecs: params.into_iter().collect(),
            });
        }
        for other in &others {
            if let Some(p) = self.peers.get_mut(other) {
                for &(mid, kind, source, _) in &tracks {
                    p.subscriptions
                        .push(Subscription::new(id, mid, kind, source));
                }
            }
        }
        // Timestamps start at a value from the id, so two stations' streams differ.
        let ts_base = (id.0 as u32).wrapping_mul(0x9e37_79b9);
        self.stations.insert(
            id,
            StationSource {
                station: Station::new(media, now, ts_base),
            },
        );
        info!(%id, %room, "station started");
        for other in others {
            self.offer_if_needed(now, other);
        }
        self.drive(now);
    }

    /// Ends station `id`: its viewers' subscriptions are stopped.
    pub fn stop_station(&mut self, now: Instant, id: ParticipantId) {
        if self.stations.remove(&id).is_some() {
            info!(%id, "station stopped");
            self.leave(now, id);
        }
    }

    /// Moves `viewer` from the station it watches to station `to`, on this worker,
    /// without a new negotiation: its subscriptions to the old station are pointed at
    /// the new one's tracks of the same kind and codec, and start a new segment, as a
    /// layer switch does (sequence numbers and timestamps go on; video starts on the
    /// new station's key frame cache at once). Returns false, changing nothing, when
    /// that cannot be done: unknown viewer or station, or tracks that differ in kind or
    /// codec (the caller then makes the viewer leave and join the new station's room).
    pub fn switch_station(
        &mut self,
        now: Instant,
        viewer: ParticipantId,
        to: ParticipantId,
    ) -> bool {
        let Some(to_room) = self
            .peers
            .get(&to)
            .filter(|_| self.stations.contains_key(&to))
            .map(|p| p.room.clone())
        else {
            return false;
        };
        let Some(peer) = self.peers.get(&viewer) else {
            return false;
        };
        let from_room = peer.room.clone();
        let from = self.rooms.get(&from_room).and_then(|r| {
            r.members
                .iter()
                .copied()
                .find(|m| self.stations.contains_key(m))
        });
        let Some(from) = from.filter(|f| *f != to) else {
            return false;
        };
        let (Some(old), Some(new)) = (self.peers.get(&from), self.peers.get(&to)) else {
            return false;
        };
        // Every track the viewer gets of the old station must have a counterpart of the
        // same kind and codec, and the other way round.
        let same = |a: &crate::peer::PublishedTrack, b: &crate::peer::PublishedTrack| {
            a.kind == b.kind
                && a.codecs.first().map(|c| c.spec()) == b.codecs.first().map(|c| c.spec())
        };
        let mapping: Vec<(Mid, Mid)> = old
            .tracks
            .iter()
            .filter_map(|o| {
                new.tracks
                    .iter()
                    .find(|n| same(o, n))
                    .map(|n| (o.mid, n.mid))
            })
            .collect();
        if mapping.len() != old.tracks.len() || mapping.len() != new.tracks.len() {
            return false;
        }
        if let Some(r) = self.rooms.get_mut(&from_room) {
            r.members.retain(|m| *m != viewer);
        }
        if let Some(r) = self.rooms.get_mut(&to_room) {
            r.members.push(viewer);
        }
        let Some(peer) = self.peers.get_mut(&viewer) else {
            return false;
        };
        peer.room = to_room;
        for sub in peer.subscriptions.iter_mut().filter(|s| s.source == from) {
            if let Some((_, mid)) = mapping.iter().find(|(o, _)| *o == sub.source_mid) {
                sub.source = to;
                sub.source_mid = *mid;
                sub.interrupt();
            }
        }
        info!(%viewer, %from, %to, "viewer switched stations");
        if self
            .stations
            .get(&to)
            .is_some_and(|s| s.station.is_running())
        {
            self.start_waiting_viewers(now, to, &[viewer]);
        }
        self.drive(now);
        true
    }

    /// `viewer`'s decoder asked for a key frame of station `source`'s track `mid` (PLI
    /// or FIR, after a loss it could not repair). A file cannot make one: the viewer's
    /// subscription starts a new segment from the key frame cache, as a starting
    /// viewer's does. At most once per `keyframe_request_interval` per station, like
    /// requests to a publisher, so a flood of requests cannot make the station resend
    /// its cache again and again.
    pub(super) fn restart_station_viewer(
        &mut self,
        now: Instant,
        viewer: ParticipantId,
        source: ParticipantId,
        mid: Mid,
    ) {
        let interval = self.config.keyframe_request_interval;
        let Some(track) = self.peers.get_mut(&source).and_then(|p| {
            p.tracks
                .iter_mut()
                .find(|t| t.mid == mid && t.kind == MediaKind::Video)
        }) else {
            return;
        };
        let Some(layer) = track.layers.list.first_mut() else {
            return;
        };
        if layer
            .last_keyframe_request
            .is_some_and(|t| now.saturating_duration_since(t) < interval)
        {
            return;
        }
        layer.last_keyframe_request = Some(now);
        self.stats.keyframe_requests += 1;
        let Some(sub) = self.peers.get_mut(&viewer).and_then(|p| {
            p.subscriptions
                .iter_mut()
                .find(|s| s.source == source && s.source_mid == mid)
        }) else {
            return;
        };
        sub.interrupt();
        if self
            .stations
            .get(&source)
            .is_some_and(|s| s.station.is_running())
        {
            self.start_waiting_viewers(now, source, &[viewer]);
        }
    }

    /// How station `id` is doing at `now`.
    pub fn station_status(&self, now: Instant, id: ParticipantId) -> Option<StationStatus> {
        let s = self.stations.get(&id)?;
        Some(StationStatus {
            position: s.station.position(now),
            duration: s.station.media().duration,
            viewers: self.station_viewers(id).len(),
            packets: s.station.produced(),
            running: s.station.is_running(),
        })
    }

    /// Whether `id` is a station.
    pub fn is_station(&self, id: ParticipantId) -> bool {
        self.stations.contains_key(&id)
    }

    /// Members of station `id`'s room whose subscription to one of its tracks is
    /// negotiated.
    fn station_viewers(&self, id: ParticipantId) -> Vec<ParticipantId> {
        let Some(room) = self.peers.get(&id).and_then(|p| self.rooms.get(&p.room)) else {
            return Vec::new();
        };
        room.members
            .iter()
            .copied()
            .filter(|m| *m != id)
            .filter(|m| {
                self.peers.get(m).is_some_and(|p| {
                    p.subscriptions
                        .iter()
                        .any(|s| s.source == id && matches!(s.state, SubState::Active(_)))
                })
            })
            .collect()
    }

    /// When the stations next need the clock: the next frame of a running one, or at
    /// once for an idle one that has a viewer.
    pub(super) fn stations_due(&self) -> Option<Instant> {
        self.stations
            .iter()
            .filter_map(|(id, s)| match s.station.next_due() {
                Some(t) => Some(t),
                None if !self.station_viewers(*id).is_empty() => Some(self.last_now),
                None => None,
            })
            .min()
    }

    /// Sends what every station with viewers has due at `now`; stops those without.
    pub(super) fn tick_stations(&mut self, now: Instant) {
        let ids: Vec<ParticipantId> = self.stations.keys().copied().collect();
        let mut due = Vec::new();
        for id in ids {
            let viewers = self.station_viewers(id);
            let Some(source) = self.stations.get_mut(&id) else {
                continue;
            };
            if viewers.is_empty() {
                source.station.stop();
                continue;
            }
            due.clear();
            source.station.poll(now, &mut due);
            for (track, packet) in due.drain(..) {
                if let Some(ingress) = self.station_ingress(now, id, track, &packet, false) {
                    // A viewer waiting for a key frame gets the cache below, not a
                    // keyframe request: a file cannot make one.
                    let _ = self.fan_out(now, id, &ingress);
                }
            }
            self.start_waiting_viewers(now, id, &viewers);
        }
    }

    /// Gives every viewer of station `id` still waiting for a key frame the packets
    /// since the last one, their timestamps drawn together just before the latest so
    /// the decoder catches up at once and goes on with the live packets.
    fn start_waiting_viewers(
        &mut self,
        now: Instant,
        id: ParticipantId,
        viewers: &[ParticipantId],
    ) {
        let Some(cache) = self
            .stations
            .get(&id)
            .map(|s| s.station.since_keyframe().to_vec())
        else {
            return;
        };
        let Some(last_ts) = cache.last().map(|p| p.ts) else {
            return;
        };
        let video_mid = Mid::from(VIDEO_MID);
        for &viewer in viewers {
            let waiting = self.peers.get(&viewer).is_some_and(|p| {
                p.subscriptions.iter().any(|s| {
                    s.source == id
                        && s.source_mid == video_mid
                        && matches!(s.state, SubState::Active(_))
                        && s.current.is_none()
                })
            });
            if !waiting {
                continue;
            }
            // Frames before the latest, counted back from it: each gets one tick less.
            let mut frames_after: Vec<u32> = Vec::with_capacity(cache.len());
            let mut later = 0u32;
            for (i, p) in cache.iter().enumerate().rev() {
                if i + 1 < cache.len() && cache[i + 1].ts != p.ts {
                    later += 1;
                }
                frames_after.push(later);
            }
            frames_after.reverse();
            for (p, back) in cache.iter().zip(frames_after) {
                let mut packet = p.clone();
                packet.ts = last_ts.wrapping_sub(back);
                let Some(ingress) =
                    self.station_ingress(now, id, StationTrack::Video, &packet, true)
                else {
                    continue;
                };
                self.forward_to_one(now, viewer, id, &ingress);
            }
        }
    }

    /// The publisher's side of a station packet, as `Sfu::ingress` for a participant's.
    /// `repeat`: a packet sent before, given again to a starting viewer (not metered).
    fn station_ingress(
        &mut self,
        now: Instant,
        id: ParticipantId,
        track: StationTrack,
        packet: &StationPacket,
        repeat: bool,
    ) -> Option<Ingress> {
        let mid = Mid::from(match track {
            StationTrack::Video => VIDEO_MID,
            StationTrack::Audio => AUDIO_MID,
        });
        let peer = self.peers.get_mut(&id)?;
        let t = peer.tracks.iter_mut().find(|t| t.mid == mid)?;
        let params: PayloadParams = *t.codecs.first()?;
        let class = MediaClass::of(t.kind, t.source);
        let (index, shifted) = t.layers.index_of(None);
        let vp8 = (params.spec().codec == Codec::Vp8)
            .then(|| crate::vp8::parse(&packet.payload))
            .flatten();
        if !repeat {
            let size = vp8
                .as_ref()
                .filter(|_| packet.keyframe)
                .and_then(|d| crate::vp8::keyframe_size_at(&packet.payload, &d.descriptor));
            t.layers
                .on_packet(index, now, packet.payload.len() + PACKET_OVERHEAD, size);
            self.stats.received.get_mut(class).add(packet.payload.len());
        }
        Some(Ingress {
            mid,
            rid: None,
            kind: t.kind,
            class,
            params,
            vp8,
            vp8_patchable: std::cell::OnceCell::new(),
            size: None,
            index,
            shifted,
            new_codec: false,
            incoming: Incoming {
                layer: 0,
                seq: packet.seq,
                ts: packet.ts,
                at: now,
                keyframe: packet.keyframe,
                clock_rate: params.spec().clock_rate.get(),
            },
            exts: ExtensionValues::default(),
            payload: packet.payload.clone(),
            marker: packet.marker,
            arrived: now,
        })
    }

    /// Writes one packet of `source` to `viewer` alone (a starting viewer's catch-up),
    /// as `Sfu::fan_out` does for each subscriber.
    fn forward_to_one(
        &mut self,
        now: Instant,
        viewer: ParticipantId,
        source: ParticipantId,
        ingress: &Ingress,
    ) {
        let Sfu {
            peers,
            dirty,
            stats,
            ..
        } = self;
        let Some(peer) = peers.get_mut(&viewer) else {
            return;
        };
        let Some(sub) = peer
            .subscriptions
            .iter_mut()
            .find(|s| s.source == source && s.source_mid == ingress.mid)
        else {
            return;
        };
        let Verdict::Forward { seq, ts, switched } = sub.verdict(&ingress.incoming) else {
            return;
        };
        let conn = (&mut peer.subscribe.rtc, &mut peer.downlink);
        if write_to_subscriber(now, conn, sub, ingress, (seq, ts, switched), stats) {
            dirty.push((viewer, Leg::Subscribe));
        }
    }
}
