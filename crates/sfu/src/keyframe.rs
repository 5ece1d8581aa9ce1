//! Does this RTP payload start a keyframe? A new subscriber's decoder can only start on
//! one, so forwarding to it waits for the first keyframe packet.

use str0m::format::Codec;

/// Returns true when `payload` is the first packet of a keyframe for `codec`. Unknown
/// codecs and audio return true: there is nothing to wait for.
pub(crate) fn starts_keyframe(codec: Codec, payload: &[u8]) -> bool {
    match codec {
        Codec::Vp8 => vp8(payload),
        Codec::Vp9 => vp9(payload),
        Codec::H264 => h264(payload),
        _ => true,
    }
}

/// RFC 7741: payload descriptor, then the VP8 frame header whose first bit (P) is 0 for
/// a key frame. Only the first partition's start (S=1, PID=0) carries that header.
fn vp8(p: &[u8]) -> bool {
    let Some(&first) = p.first() else {
        return false;
    };
    let extended = first & 0x80 != 0;
    let start = first & 0x10 != 0;
    let pid = first & 0x07;
    if !start || pid != 0 {
        return false;
    }
    let mut i = 1;
    if extended {
        let Some(&x) = p.get(i) else { return false };
        i += 1;
        if x & 0x80 != 0 {
            // PictureID: one or two bytes.
            let Some(&m) = p.get(i) else { return false };
            i += if m & 0x80 != 0 { 2 } else { 1 };
        }
        if x & 0x40 != 0 {
            i += 1; // TL0PICIDX
        }
        if x & 0x30 != 0 {
            i += 1; // TID/Y/KEYIDX
        }
    }
    p.get(i).is_some_and(|h| h & 0x01 == 0)
}

/// draft-ietf-payload-vp9: B (begin of frame) set and P (inter-picture predicted) clear.
fn vp9(p: &[u8]) -> bool {
    let Some(&first) = p.first() else {
        return false;
    };
    let inter_predicted = first & 0x40 != 0;
    let begin = first & 0x08 != 0;
    begin && !inter_predicted
}

/// RFC 6184: an IDR slice (5) or SPS (7), alone, in a STAP-A (24), or at the start of a
/// FU-A (28).
fn h264(p: &[u8]) -> bool {
    let Some(&first) = p.first() else {
        return false;
    };
    let is_key = |nal: u8| matches!(nal & 0x1f, 5 | 7);
    match first & 0x1f {
        24 => {
            let mut i = 1;
            while i + 2 < p.len() {
                let size = usize::from(u16::from_be_bytes([p[i], p[i + 1]]));
                if is_key(p[i + 2]) {
                    return true;
                }
                i += 2 + size;
            }
            false
        }
        28 => p.get(1).is_some_and(|fu| fu & 0x80 != 0 && is_key(*fu)),
        _ => is_key(first),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vp8_keyframe_and_delta() {
        // S=1, PID=0, no extension; frame header P=0 (key).
        assert!(vp8(&[0x10, 0x00, 0x9d, 0x01, 0x2a]));
        // P=1 (delta).
        assert!(!vp8(&[0x10, 0x01]));
        // Not the start of a partition.
        assert!(!vp8(&[0x00, 0x00]));
        // Extended: X=1, I=1 with a 15-bit picture id, then key header.
        assert!(vp8(&[0x90, 0x80, 0x81, 0x23, 0x00]));
        assert!(!vp8(&[0x90, 0x80, 0x81, 0x23, 0x01]));
        // Truncated input never panics.
        for len in 0..5 {
            let _ = vp8(&[0x90, 0xf0, 0x81, 0x23, 0x00][..len]);
        }
    }

    #[test]
    fn vp9_and_h264() {
        assert!(vp9(&[0x08]));
        assert!(!vp9(&[0x48]));
        assert!(!vp9(&[]));
        assert!(h264(&[0x65]));
        assert!(h264(&[0x67]));
        assert!(!h264(&[0x41]));
        assert!(h264(&[0x7c, 0x85]));
        assert!(!h264(&[0x7c, 0x05]));
        assert!(h264(&[0x78, 0x00, 0x02, 0x67, 0x42]));
        assert!(!h264(&[0x78, 0x00, 0x09]));
    }

    #[test]
    fn audio_and_unknown_codecs_never_wait() {
        assert!(starts_keyframe(Codec::Opus, &[]));
    }
}
