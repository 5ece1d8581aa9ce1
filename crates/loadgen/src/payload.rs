//! The bytes a synthetic publisher puts into each RTP payload, and reading them back.
//!
//! Every packet starts like a VP8 payload (the SFU looks at the first bytes of video to
//! find keyframes), then carries who sent it, which of its tracks, a per-track sequence
//! number and the send time, so a subscriber can measure loss, reordering and one-way
//! latency without trusting RTP sequence numbers (the SFU rewrites those).

/// Bytes every payload needs; shorter packets are padded up to this.
pub const HEADER_LEN: usize = 25;

/// Marks our payloads, so anything else is ignored rather than miscounted.
const MAGIC: [u8; 2] = *b"LG";

/// Audio or video, as carried in a payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    /// Opus-like audio.
    Audio,
    /// VP8-like video.
    Video,
}

impl Kind {
    fn to_byte(self) -> u8 {
        match self {
            Kind::Audio => 0,
            Kind::Video => 1,
        }
    }

    fn from_byte(b: u8) -> Option<Kind> {
        match b {
            0 => Some(Kind::Audio),
            1 => Some(Kind::Video),
            _ => None,
        }
    }
}

/// What a payload says about itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Label {
    /// The load generator's index of the publishing participant.
    pub publisher: u32,
    /// Which of its tracks.
    pub kind: Kind,
    /// Position in that track, counting from 0.
    pub seq: u64,
    /// Send time, nanoseconds since the run's shared epoch.
    pub sent_ns: u64,
}

/// Where a video packet sits in its frame; decides the VP8 descriptor bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FramePart {
    /// First packet of a keyframe: S=1, PID=0, and the VP8 header's P bit clear.
    KeyStart,
    /// First packet of a delta frame: S=1, PID=0, P bit set.
    DeltaStart,
    /// Any later packet of a frame: S=0.
    Continuation,
    /// Audio: the descriptor bytes mean nothing.
    Audio,
}

/// Builds a payload of `size` bytes (at least [`HEADER_LEN`]).
pub fn encode(label: Label, part: FramePart, size: usize) -> Vec<u8> {
    let mut p = vec![0u8; size.max(HEADER_LEN)];
    let (b0, b1) = match part {
        FramePart::KeyStart => (0x10, 0x00),
        FramePart::DeltaStart => (0x10, 0x01),
        FramePart::Continuation | FramePart::Audio => (0x00, 0x01),
    };
    p[0] = b0;
    p[1] = b1;
    p[2..4].copy_from_slice(&MAGIC);
    p[4..8].copy_from_slice(&label.publisher.to_be_bytes());
    p[8] = label.kind.to_byte();
    p[9..17].copy_from_slice(&label.seq.to_be_bytes());
    p[17..25].copy_from_slice(&label.sent_ns.to_be_bytes());
    p
}

/// Reads a payload written by [`encode`]; `None` for anything else.
pub fn decode(p: &[u8]) -> Option<Label> {
    let header = p.get(..HEADER_LEN)?;
    if header[2..4] != MAGIC {
        return None;
    }
    Some(Label {
        publisher: u32::from_be_bytes(header[4..8].try_into().ok()?),
        kind: Kind::from_byte(header[8])?,
        seq: u64::from_be_bytes(header[9..17].try_into().ok()?),
        sent_ns: u64::from_be_bytes(header[17..25].try_into().ok()?),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_vp8_bits() {
        let label = Label {
            publisher: 7,
            kind: Kind::Video,
            seq: 123_456_789_012,
            sent_ns: 42,
        };
        let key = encode(label, FramePart::KeyStart, 1200);
        assert_eq!(key.len(), 1200);
        assert_eq!((key[0], key[1] & 1), (0x10, 0));
        assert_eq!(encode(label, FramePart::DeltaStart, 10)[1] & 1, 1);
        assert_eq!(encode(label, FramePart::Continuation, 10)[0] & 0x10, 0);
        assert_eq!(decode(&key), Some(label));
        assert_eq!(decode(&key[..HEADER_LEN - 1]), None);
        assert_eq!(decode(&[0u8; 40]), None);
        let mut bad = key.clone();
        bad[8] = 9;
        assert_eq!(decode(&bad), None);
    }
}
