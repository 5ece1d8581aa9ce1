//! The bytes a synthetic publisher puts into each RTP payload, and reading them back.
//!
//! Every packet starts like a VP8 packet as a browser sends it: a payload descriptor
//! (RFC 7741) with a 15-bit picture id, then room for the VP8 frame header (RFC 6386
//! §9.1), which a keyframe's first packet fills in with the key-frame tag, the start code
//! and the picture size (the SFU reads them to find keyframes and to size simulcast
//! layers). After that comes who sent it, which of its tracks and layers, a per-layer
//! sequence number and the send time, so a subscriber can measure loss, reordering and
//! one-way latency without trusting RTP sequence numbers (the SFU rewrites those, and
//! the picture id).

/// Bytes every payload needs; shorter packets are padded up to this.
pub const HEADER_LEN: usize = LABEL_AT + 24;

/// The VP8 payload descriptor: X, I and M set, so 4 bytes.
const DESCRIPTOR_LEN: usize = 4;
/// The VP8 frame header of a key frame: tag (3), start code (3), width and height (4).
const FRAME_HEADER_LEN: usize = 10;
/// Where our label starts.
const LABEL_AT: usize = DESCRIPTOR_LEN + FRAME_HEADER_LEN;

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
    /// Simulcast layer, 0 the lowest (0 for audio and single-layer video).
    pub layer: u8,
    /// Position in that track's layer, counting from 0.
    pub seq: u64,
    /// Send time, nanoseconds since the run's shared epoch.
    pub sent_ns: u64,
}

/// Where a video packet sits in its frame; decides the VP8 bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FramePart {
    /// First packet of a keyframe of this picture size: S=1, PID=0, the frame tag's P
    /// bit clear, the start code and the size.
    KeyStart {
        /// Picture width, pixels.
        width: u16,
        /// Picture height, pixels.
        height: u16,
    },
    /// First packet of a delta frame: S=1, PID=0, P bit set.
    DeltaStart,
    /// Any later packet of a frame: S=0.
    Continuation,
    /// Audio: the VP8 bytes mean nothing.
    Audio,
}

impl FramePart {
    /// Whether this packet starts a keyframe.
    pub fn is_key(self) -> bool {
        matches!(self, FramePart::KeyStart { .. })
    }
}

/// Builds a payload of `size` bytes (at least [`HEADER_LEN`]) for picture `picture_id`
/// (15 bits; ignored for audio).
pub fn encode(label: Label, part: FramePart, picture_id: u16, size: usize) -> Vec<u8> {
    let mut p = vec![0u8; size.max(HEADER_LEN)];
    if part != FramePart::Audio {
        let start = !matches!(part, FramePart::Continuation);
        p[0] = 0x80 | if start { 0x10 } else { 0 };
        p[1] = 0x80;
        p[2..4].copy_from_slice(&(0x8000 | (picture_id & 0x7fff)).to_be_bytes());
        let f = &mut p[DESCRIPTOR_LEN..LABEL_AT];
        match part {
            FramePart::KeyStart { width, height } => {
                // Key frame (P=0), version 0, shown; the partition size is not read.
                f[0] = 0x10;
                f[3..6].copy_from_slice(&[0x9d, 0x01, 0x2a]);
                f[6..8].copy_from_slice(&(width & 0x3fff).to_le_bytes());
                f[8..10].copy_from_slice(&(height & 0x3fff).to_le_bytes());
            }
            FramePart::DeltaStart => f[0] = 0x11,
            FramePart::Continuation | FramePart::Audio => {}
        }
    }
    let l = &mut p[LABEL_AT..HEADER_LEN];
    l[0..2].copy_from_slice(&MAGIC);
    l[2..6].copy_from_slice(&label.publisher.to_be_bytes());
    l[6] = label.kind.to_byte();
    l[7] = label.layer;
    l[8..16].copy_from_slice(&label.seq.to_be_bytes());
    l[16..24].copy_from_slice(&label.sent_ns.to_be_bytes());
    p
}

/// Reads a payload written by [`encode`]; `None` for anything else. Also says whether
/// it starts a keyframe.
pub fn decode(p: &[u8]) -> Option<(Label, bool)> {
    let l = p.get(LABEL_AT..HEADER_LEN)?;
    if l[0..2] != MAGIC {
        return None;
    }
    let label = Label {
        publisher: u32::from_be_bytes(l[2..6].try_into().ok()?),
        kind: Kind::from_byte(l[6])?,
        layer: l[7],
        seq: u64::from_be_bytes(l[8..16].try_into().ok()?),
        sent_ns: u64::from_be_bytes(l[16..24].try_into().ok()?),
    };
    let key = label.kind == Kind::Video
        && p[0] & 0x10 != 0
        && p[DESCRIPTOR_LEN] & 0x01 == 0
        && p[DESCRIPTOR_LEN + 3..DESCRIPTOR_LEN + 6] == [0x9d, 0x01, 0x2a];
    Some((label, key))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_vp8_bits() {
        let label = Label {
            publisher: 7,
            kind: Kind::Video,
            layer: 2,
            seq: 123_456_789_012,
            sent_ns: 42,
        };
        let part = FramePart::KeyStart {
            width: 1280,
            height: 720,
        };
        let key = encode(label, part, 0x1234, 1200);
        assert_eq!(key.len(), 1200);
        // X, S, PID 0; I; M and the 15-bit picture id.
        assert_eq!(key[..4], [0x90, 0x80, 0x92, 0x34]);
        // Key frame tag, start code, 1280 x 720 little endian.
        assert_eq!(key[4] & 1, 0);
        assert_eq!(key[7..14], [0x9d, 0x01, 0x2a, 0x00, 0x05, 0xd0, 0x02]);
        assert_eq!(decode(&key), Some((label, true)));
        let delta = encode(label, FramePart::DeltaStart, 5, 10);
        assert_eq!((delta[0], delta[4] & 1), (0x90, 1));
        assert_eq!(decode(&delta), Some((label, false)));
        assert_eq!(encode(label, FramePart::Continuation, 5, 10)[0] & 0x10, 0);
        assert_eq!(decode(&key[..HEADER_LEN - 1]), None);
        assert_eq!(decode(&[0u8; 60]), None);
        let mut bad = key.clone();
        bad[LABEL_AT + 6] = 9;
        assert_eq!(decode(&bad), None);
        let audio = Label {
            kind: Kind::Audio,
            layer: 0,
            ..label
        };
        assert_eq!(
            decode(&encode(audio, FramePart::Audio, 0, 100)),
            Some((audio, false))
        );
    }
}
