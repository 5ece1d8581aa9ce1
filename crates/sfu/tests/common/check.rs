//! What a subscriber got of one publisher's tracks, set against what was sent: the
//! numbers a user would notice as frozen, garbled or someone else's video.

use std::time::Instant;

use lanmeet_proto::TrackKind;

use super::client::{ReceivedFrame, SimClient};

/// One track (audio or video) of one publisher as one subscriber received it.
#[derive(Debug, Clone, Default)]
pub struct TrackReport {
    /// Frames the publisher produced from the first one the subscriber received on.
    pub expected: u32,
    /// Distinct frames received.
    pub received: u32,
    /// Counter of the first frame received.
    pub first: Option<u32>,
    /// The first frame received was a key frame (video: a decoder can start there).
    pub first_is_keyframe: bool,
    /// When the first frame arrived.
    pub first_at: Option<Instant>,
    /// When the last frame arrived.
    pub last_at: Option<Instant>,
    /// Frames that arrived after a later one.
    pub out_of_order: u32,
    /// Frames that arrived twice.
    pub duplicates: u32,
    /// Frames whose bytes differ from what was sent, or that are not frames at all.
    pub corrupted: u32,
    /// Frames whose content says one publisher while the SFU's track map says another.
    pub misattributed: u32,
}

impl TrackReport {
    /// Received share of the expected frames (1.0 when nothing was expected).
    pub fn ratio(&self) -> f64 {
        if self.expected == 0 {
            return 1.0;
        }
        f64::from(self.received) / f64::from(self.expected)
    }

    /// Whether every frame that arrived is the publisher's, intact, once and in order.
    pub fn clean(&self) -> bool {
        self.out_of_order == 0
            && self.duplicates == 0
            && self.corrupted == 0
            && self.misattributed == 0
    }

    fn build<'a>(
        frames: impl Iterator<Item = &'a ReceivedFrame>,
        tag: u8,
        sent_after: impl Fn(u32) -> u32,
    ) -> Self {
        let mut r = TrackReport::default();
        let mut seen = std::collections::HashSet::new();
        let mut highest: Option<u32> = None;
        for f in frames {
            let Some(label) = f.label.filter(|l| l.source == tag) else {
                // Not readable as this publisher's frame, yet on its track.
                r.corrupted += 1;
                continue;
            };
            if !f.intact {
                r.corrupted += 1;
            }
            if r.first.is_none() {
                r.first = Some(label.counter);
                r.first_is_keyframe = label.keyframe;
                r.first_at = Some(f.at);
            }
            r.last_at = Some(f.at);
            if !seen.insert(label.counter) {
                r.duplicates += 1;
                continue;
            }
            if highest.is_some_and(|h| label.counter < h) {
                r.out_of_order += 1;
            }
            highest = highest.max(Some(label.counter));
            r.received += 1;
        }
        r.expected = r.first.map_or(0, sent_after);
        r
    }
}

/// A subscriber's view of one publisher: both tracks.
#[derive(Debug, Clone)]
pub struct StreamReport {
    /// The camera.
    pub video: TrackReport,
    /// The microphone.
    pub audio: TrackReport,
    /// Frames of any kind received from the publisher (by content or track map).
    pub total_frames: u32,
}

impl StreamReport {
    /// Compares what `subscriber` received from `publisher` with what it sent.
    pub fn new(subscriber: &SimClient, publisher: &SimClient) -> Self {
        let tag = publisher.tag();
        let id = publisher.id;
        let from_publisher = |f: &&ReceivedFrame| {
            f.track_owner == Some(id) || f.label.is_some_and(|l| l.source == tag)
        };
        let of_kind = |kind: TrackKind| {
            subscriber
                .received
                .iter()
                .filter(from_publisher)
                .filter(move |f| f.kind == Some(kind))
        };
        let (sent_video, sent_audio) = publisher
            .source
            .as_ref()
            .map(|s| (s.video_ticks, s.audio_frames))
            .unwrap_or_default();
        let mut video = TrackReport::build(of_kind(TrackKind::Video), tag, |first| {
            sent_video.saturating_sub(first)
        });
        let mut audio = TrackReport::build(of_kind(TrackKind::Audio), tag, |first| {
            sent_audio.saturating_sub(first)
        });
        let misattributed = |kind: TrackKind| {
            of_kind(kind)
                .filter(|f| f.track_owner != Some(id) || f.label.is_none_or(|l| l.source != tag))
                .count() as u32
        };
        video.misattributed = misattributed(TrackKind::Video);
        audio.misattributed = misattributed(TrackKind::Audio);
        let total_frames = subscriber.received.iter().filter(from_publisher).count() as u32;
        StreamReport {
            video,
            audio,
            total_frames,
        }
    }
}
