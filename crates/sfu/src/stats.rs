//! Counters of one [`crate::Sfu`] for metrics, the admin dashboard and benchmarks.
//!
//! Plain integers bumped on the worker's own thread (no locks, no atomics per packet);
//! the worker copies the whole [`SfuStats`] out now and then. Counters only grow, so a
//! reader computes rates from two copies. Gauges (rooms, participants, tracks) are filled
//! in when the copy is made.

use std::time::Duration;

use lanmeet_proto::TrackSource;
use str0m::media::MediaKind;

/// What a media packet belongs to, for counting: audio, camera video or screen video.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MediaClass {
    /// A microphone.
    Audio,
    /// A camera (any simulcast layer).
    Camera,
    /// A shared screen.
    Screen,
}

impl MediaClass {
    /// Every class, in the order of [`ByClass`]'s array.
    pub const ALL: [MediaClass; 3] = [MediaClass::Audio, MediaClass::Camera, MediaClass::Screen];

    /// The label value used in metrics: `audio`, `video` (camera) or `screen`.
    pub fn label(self) -> &'static str {
        match self {
            MediaClass::Audio => "audio",
            MediaClass::Camera => "video",
            MediaClass::Screen => "screen",
        }
    }

    /// The class of a published track.
    pub(crate) fn of(kind: MediaKind, source: TrackSource) -> MediaClass {
        match (kind, source) {
            (MediaKind::Audio, _) => MediaClass::Audio,
            (MediaKind::Video, TrackSource::Screen) => MediaClass::Screen,
            (MediaKind::Video, _) => MediaClass::Camera,
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// Packets and payload bytes.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Flow {
    /// RTP packets.
    pub packets: u64,
    /// RTP payload bytes (without RTP, SRTP, UDP and IP headers).
    pub bytes: u64,
}

impl Flow {
    /// Counts one packet of `bytes` payload bytes.
    #[inline]
    pub(crate) fn add(&mut self, bytes: usize) {
        self.packets += 1;
        self.bytes += bytes as u64;
    }
}

/// One value per [`MediaClass`].
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ByClass<T>(pub [T; 3]);

impl<T> ByClass<T> {
    /// The value of `class`.
    pub fn get(&self, class: MediaClass) -> &T {
        &self.0[class.index()]
    }

    /// The value of `class`, to change.
    pub fn get_mut(&mut self, class: MediaClass) -> &mut T {
        &mut self.0[class.index()]
    }
}

impl ByClass<Flow> {
    /// The sum over every class.
    pub fn total(&self) -> Flow {
        self.0.iter().fold(Flow::default(), |a, f| Flow {
            packets: a.packets + f.packets,
            bytes: a.bytes + f.bytes,
        })
    }
}

/// Counters of one worker's SFU since it started, and its current rooms, participants
/// and tracks.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct SfuStats {
    /// RTP packets received from publishers (authenticated, of a known connection), by
    /// class; packets of a track not (yet) known count as camera.
    pub received: ByClass<Flow>,
    /// RTP packets written to subscribers, by class: each copy counts.
    pub forwarded: ByClass<Flow>,
    /// Keyframe requests (PLI) sent to publishers.
    pub keyframe_requests: u64,
    /// NACKs received from subscribers (from str0m's egress statistics, reported every
    /// second on subscribe connections with bandwidth estimation on).
    pub nacks_received: u64,
    /// Packets resent to subscribers in answer to NACKs (RTX), from the same statistics.
    pub retransmissions: Flow,
    /// Datagrams that no connection accepted.
    pub datagrams_dropped: u64,
    /// Times a subscriber moved to another simulcast layer.
    pub layer_switches: u64,
    /// Publish streams put back on their SSRC after an unauthenticated packet had moved
    /// them to another (see `Sfu::undo_forged_rebinds`).
    pub forged_rebinds_undone: u64,
    /// Rooms on this worker now.
    pub rooms: u64,
    /// Participants on this worker now.
    pub participants: u64,
    /// Published tracks now, by class (a simulcast camera is one track).
    pub tracks: ByClass<u64>,
    /// Publish connections built: one per publishing participant, since a renegotiation
    /// reuses the connection.
    pub publish_connections_built: u64,
    /// Publisher packets handed to other workers (one per packet and worker).
    pub relayed_out: u64,
    /// Publisher packets handed over by other workers.
    pub relayed_in: u64,
}

impl SfuStats {
    /// RTP packets received from publishers, every class.
    pub fn packets_in(&self) -> u64 {
        self.received.total().packets
    }

    /// RTP packets written to subscribers, every class.
    pub fn packets_forwarded(&self) -> u64 {
        self.forwarded.total().packets
    }
}

/// The cumulative egress counters str0m last reported for one subscribed stream, so that
/// the next report adds only what is new (a stream that leaves takes nothing back).
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct EgressSeen {
    pub nacks: u64,
    pub resent: Flow,
}

/// How one participant's connections are doing, as str0m last reported it (every
/// second): for the admin dashboard.
#[derive(Debug, Default, Clone, Copy, PartialEq)]
pub struct ParticipantStats {
    /// Bytes received from the participant on both connections (all datagrams: media,
    /// RTCP, DTLS, STUN).
    pub bytes_in: u64,
    /// Bytes sent to the participant on both connections.
    pub bytes_out: u64,
    /// Round-trip time on the subscribe connection, if measured.
    pub rtt: Option<Duration>,
    /// Share of packets sent to the participant that it reported lost (0 to 1).
    pub loss_to: Option<f32>,
    /// Share of the participant's packets lost on their way in (0 to 1).
    pub loss_from: Option<f32>,
    /// The subscribe connection's bandwidth estimate, bits per second.
    pub estimate_bps: Option<u64>,
    /// What the participant was last told of the videos it receives (`video_state`):
    /// how many it gets at each simulcast layer (0 the lowest).
    pub video_layers: [u16; 3],
    /// Videos paused because its link does not carry even the lowest layer.
    pub video_paused: u16,
    /// Videos it does not show (other grid pages, minimized), so not sent.
    pub video_hidden: u16,
    /// Its camera's simulcast layers as they reach the SFU, lowest first: the measured
    /// bitrate of each, bits per second (a camera without simulcast fills the first; 0
    /// for a layer that does not arrive).
    pub camera_layers_bps: [u64; 3],
}
