//! The VP8 payload descriptor (RFC 7741 §4.2): where the picture id and TL0PICIDX sit,
//! rewriting them, and the picture size in a key frame's header (RFC 6386 §9.1).
//!
//! Each simulcast layer numbers its pictures on its own. A receiver's frame buffer
//! orders frames by picture id and drops a frame that seems older than the last one it
//! decoded, so when a subscriber moves to another layer, the ids it sees must go on from
//! where the previous layer left off.

/// Where a packet's picture id and TL0PICIDX are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Descriptor {
    /// Offset and width in bits (7 or 15) of the picture id.
    pub picture_id: Option<(usize, u8)>,
    /// Offset of TL0PICIDX.
    pub tl0: Option<usize>,
    /// Offset of the VP8 payload (the frame header in a partition start).
    pub payload: usize,
}

/// Parses the descriptor at the start of `p`; `None` if it is truncated.
pub(crate) fn descriptor(p: &[u8]) -> Option<Descriptor> {
    let first = *p.first()?;
    let mut d = Descriptor {
        picture_id: None,
        tl0: None,
        payload: 1,
    };
    if first & 0x80 == 0 {
        return Some(d);
    }
    let x = *p.get(1)?;
    let mut i = 2;
    if x & 0x80 != 0 {
        let m = *p.get(i)?;
        if m & 0x80 != 0 {
            p.get(i + 1)?;
            d.picture_id = Some((i, 15));
            i += 2;
        } else {
            d.picture_id = Some((i, 7));
            i += 1;
        }
    }
    if x & 0x40 != 0 {
        p.get(i)?;
        d.tl0 = Some(i);
        i += 1;
    }
    if x & 0x30 != 0 {
        p.get(i)?;
        i += 1;
    }
    d.payload = i;
    Some(d)
}

impl Descriptor {
    /// The picture id, if present.
    pub(crate) fn read_picture_id(&self, p: &[u8]) -> Option<u16> {
        let (at, bits) = self.picture_id?;
        Some(if bits == 15 {
            u16::from_be_bytes([*p.get(at)? & 0x7f, *p.get(at + 1)?])
        } else {
            u16::from(*p.get(at)? & 0x7f)
        })
    }

    /// Writes picture id `id` (modulo its width).
    pub(crate) fn write_picture_id(&self, p: &mut [u8], id: u16) {
        let Some((at, bits)) = self.picture_id else {
            return;
        };
        if bits == 15 {
            if let Some(b) = p.get_mut(at..at + 2) {
                let [hi, lo] = (id & 0x7fff).to_be_bytes();
                b[0] = 0x80 | hi;
                b[1] = lo;
            }
        } else if let Some(b) = p.get_mut(at) {
            *b = (id & 0x7f) as u8;
        }
    }

    /// The picture id's modulus.
    pub(crate) fn picture_id_modulus(&self) -> u16 {
        match self.picture_id {
            Some((_, 7)) => 0x80,
            _ => 0x8000,
        }
    }

    /// TL0PICIDX, if present.
    pub(crate) fn read_tl0(&self, p: &[u8]) -> Option<u8> {
        p.get(self.tl0?).copied()
    }

    /// Writes TL0PICIDX.
    pub(crate) fn write_tl0(&self, p: &mut [u8], v: u8) {
        if let Some(b) = self.tl0.and_then(|at| p.get_mut(at)) {
            *b = v;
        }
    }
}

/// What forwarding needs of one VP8 packet's descriptor, read once when the packet
/// arrives (not once per subscriber).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Parsed {
    /// Where the fields are.
    pub descriptor: Descriptor,
    /// The picture id, if present.
    pub picture_id: Option<u16>,
    /// TL0PICIDX, if present.
    pub tl0: Option<u8>,
    /// The packet starts a key frame (first partition's start, P bit clear).
    pub keyframe: bool,
}

/// Reads the descriptor of `p` once; `None` if it is truncated.
pub(crate) fn parse(p: &[u8]) -> Option<Parsed> {
    let d = descriptor(p)?;
    let first = p[0];
    let keyframe =
        first & 0x10 != 0 && first & 0x07 == 0 && p.get(d.payload).is_some_and(|h| h & 0x01 == 0);
    Some(Parsed {
        descriptor: d,
        picture_id: d.read_picture_id(p),
        tl0: d.read_tl0(p),
        keyframe,
    })
}

/// The picture size in a packet that starts a VP8 key frame: the frame tag (3 bytes),
/// the start code 9d 01 2a, then 14-bit width and height (little endian, 2 bits of
/// scaling above each).
#[cfg(test)]
pub(crate) fn keyframe_size(p: &[u8]) -> Option<(u32, u32)> {
    keyframe_size_at(p, &descriptor(p)?)
}

/// [`keyframe_size`] of a packet whose descriptor `d` was already read.
pub(crate) fn keyframe_size_at(p: &[u8], d: &Descriptor) -> Option<(u32, u32)> {
    let f = p.get(d.payload..d.payload + 10)?;
    if f[0] & 0x01 != 0 || f[3..6] != [0x9d, 0x01, 0x2a] {
        return None;
    }
    let w = u32::from(u16::from_le_bytes([f[6], f[7]]) & 0x3fff);
    let h = u32::from(u16::from_le_bytes([f[8], f[9]]) & 0x3fff);
    (w > 0 && h > 0).then_some((w, h))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_and_rewrites_ids_and_size() {
        // X; I, L, T; 15-bit picture id 0x1234; TL0PICIDX 9; TID; key frame 640x480.
        let mut p = vec![
            0x90, 0xe0, 0x92, 0x34, 9, 0x20, 0x10, 0, 0, 0x9d, 0x01, 0x2a, 0x80, 0x02, 0xe0, 0x01,
        ];
        let d = descriptor(&p).expect("complete");
        assert_eq!(d.read_picture_id(&p), Some(0x1234));
        assert_eq!(d.read_tl0(&p), Some(9));
        assert_eq!(d.payload, 6);
        assert_eq!(keyframe_size(&p), Some((640, 480)));
        d.write_picture_id(&mut p, 0x8001);
        d.write_tl0(&mut p, 200);
        assert_eq!(d.read_picture_id(&p), Some(1));
        assert_eq!(d.read_tl0(&p), Some(200));
        assert_eq!(&p[2..5], &[0x80, 0x01, 200]);
    }

    #[test]
    fn parsed_once_as_forwarding_needs_it() {
        // Key frame start: S, PID 0, P bit clear after the descriptor.
        let key = [0x90, 0xc0, 0x92, 0x34, 9, 0x10];
        let p = parse(&key).expect("complete");
        assert_eq!(
            (p.picture_id, p.tl0, p.keyframe),
            (Some(0x1234), Some(9), true)
        );
        // The same picture's second partition, and a delta frame: not key frame starts.
        assert!(
            !parse(&[0x91, 0xc0, 0x92, 0x34, 9, 0x10])
                .expect("complete")
                .keyframe
        );
        assert!(
            !parse(&[0x90, 0xc0, 0x92, 0x34, 9, 0x11])
                .expect("complete")
                .keyframe
        );
        // A descriptor with nothing after it still has its ids, and starts nothing.
        let bare = parse(&[0x80, 0x80, 0x05]).expect("complete");
        assert_eq!((bare.picture_id, bare.keyframe), (Some(5), false));
        assert_eq!(parse(&[0x90, 0xc0, 0x92]), None);
    }

    #[test]
    fn short_ids_and_truncation() {
        let p = [0x90, 0x80, 0x05, 0x11];
        let d = descriptor(&p).expect("complete");
        assert_eq!(
            (d.read_picture_id(&p), d.picture_id_modulus()),
            (Some(5), 0x80)
        );
        assert_eq!(keyframe_size(&p), None);
        for cut in 0..3 {
            assert_eq!(descriptor(&[0x90, 0xc0, 0x85][..cut]), None);
        }
        assert_eq!(descriptor(&[0x90, 0xc0, 0x85, 0x01]), None);
    }
}
