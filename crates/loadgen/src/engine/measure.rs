//! The measurement window: what subscribers receive while it is open, and the range of
//! sequence numbers each publisher sent in it, so that loss can be counted against it.

use std::time::Instant;

use super::State;
use crate::payload::{self, Kind};
use crate::stats::EngineStats;

impl State {
    /// A payload arrived for `participant` (from str0m, or a datagram from the relay):
    /// recorded while the window is open.
    pub(super) fn received(&mut self, participant: u32, data: &[u8], now: Instant) {
        self.received_total += 1;
        let decoded = payload::decode(data);
        let ns = super::nanos_since(self.config.epoch, now);
        if decoded.is_some() {
            self.first_media.entry(participant).or_insert(ns);
        }
        if !self.measuring {
            return;
        }
        match decoded {
            Some((label, key)) => self.stats.record(participant, label, key, ns),
            None => self.stats.foreign_packets += 1,
        }
    }

    /// A station's packet arrived for viewer `participant`: recorded by its RTP header
    /// while the window is open and before [`State::stop_media`] closes it.
    pub(super) fn station_received(
        &mut self,
        participant: u32,
        packet: &str0m::rtp::RtpPacket,
        now: Instant,
    ) {
        self.received_total += 1;
        let ns = super::nanos_since(self.config.epoch, now);
        self.first_media.entry(participant).or_insert(ns);
        if !self.measuring || !self.media_on {
            return;
        }
        let rate = u128::from(packet.time.denom().max(1));
        let kind = if rate == 90_000 {
            Kind::Video
        } else {
            Kind::Audio
        };
        let rtp_ns = (u128::from(packet.time.numer()) * 1_000_000_000 / rate) as u64;
        self.stats.station.record(
            participant,
            kind,
            *packet.seq_no,
            rtp_ns,
            packet.payload.len(),
            ns,
        );
    }

    /// Opens the window: clears what was measured so far.
    pub(super) fn start_window(&mut self) {
        self.stats = EngineStats::default();
        self.measuring = true;
        for source in self
            .participants
            .values_mut()
            .filter_map(|p| p.source.as_mut())
        {
            for layer in &mut source.layers {
                layer.window_seq = layer.seq;
            }
            source.window_audio = source.audio_seq;
        }
    }

    /// Publishers stop; what each sent in the window is noted.
    pub(super) fn stop_media(&mut self) {
        self.media_on = false;
        for (id, p) in &self.participants {
            let Some(s) = p.source.as_ref() else { continue };
            if !s.running {
                continue;
            }
            if s.audio_seq > 0 || s.audio_mid.is_some() {
                self.stats
                    .sent
                    .insert((*id, Kind::Audio, 0), (s.window_audio, s.audio_seq));
            }
            for (i, layer) in s.layers.iter().enumerate() {
                self.stats
                    .sent
                    .insert((*id, Kind::Video, i as u8), (layer.window_seq, layer.seq));
            }
        }
    }

    /// Closes the window and hands over what it measured.
    pub(super) fn collect(&mut self) -> EngineStats {
        self.measuring = false;
        let mut stats = std::mem::take(&mut self.stats);
        stats.received_total = self.received_total;
        stats.first_media = self.first_media.clone();
        stats
    }
}
