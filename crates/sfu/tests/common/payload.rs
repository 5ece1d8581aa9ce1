//! Synthetic media: VP8-looking video frames and Opus-sized audio frames that carry who
//! sent them and their place in the stream, so a receiver can check identity, order and
//! integrity byte for byte.
//!
//! A video frame starts with a real VP8 frame tag (RFC 6386 §9.1): bit 0 of the first
//! byte is 0 for a key frame and 1 for an inter frame. A key frame also carries the VP8
//! start code and the picture size, like a browser's; the SFU reads both.
//!
//! A camera sends either one stream ([`SINGLE`]) or simulcast ([`SIMULCAST`]: three
//! encodings, each half the size of the one above, as a browser's 720p camera does).
//! Each video frame says which of these it belongs to.

/// Size of a 20 ms Opus frame at a typical voice bitrate.
pub const AUDIO_FRAME_BYTES: usize = 80;

/// The shape of one encoding of a camera.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Encoding {
    /// Simulcast rid; `None` for a camera without simulcast.
    pub rid: Option<&'static str>,
    /// Picture width and height, written into key frames.
    pub size: (u16, u16),
    /// Bytes of a key frame.
    pub key_bytes: usize,
    /// Bytes of an inter frame.
    pub delta_bytes: usize,
}

/// A camera without simulcast: 640x480; key frames span several RTP packets (so
/// reassembly is exercised), inter frames two.
pub const SINGLE: Encoding = Encoding {
    rid: None,
    size: (640, 480),
    key_bytes: 4000,
    delta_bytes: 1300,
};

/// A 720p camera's simulcast encodings, lowest first. At 30 fps they take about 150,
/// 450 and 1300 kbit/s with packet headers, near what Chromium sends.
pub const SIMULCAST: [Encoding; 3] = [
    Encoding {
        rid: Some("q"),
        size: (320, 180),
        key_bytes: 1500,
        delta_bytes: 500,
    },
    Encoding {
        rid: Some("h"),
        size: (640, 360),
        key_bytes: 5000,
        delta_bytes: 1600,
    },
    Encoding {
        rid: Some("f"),
        size: (1280, 720),
        key_bytes: 12000,
        delta_bytes: 4800,
    },
];

/// The encoding a frame label's `encoding` number stands for: 0 is [`SINGLE`], 1 to 3
/// the [`SIMULCAST`] layers.
pub fn encoding(n: u8) -> Option<Encoding> {
    match n {
        0 => Some(SINGLE),
        n => SIMULCAST.get(usize::from(n) - 1).copied(),
    }
}

/// Where the label sits in a video frame: after the 3-byte frame tag and the 7 bytes a
/// key frame uses for its start code and dimensions.
const VIDEO_LABEL_AT: usize = 10;
/// Label: a marker byte, the source tag, a 4-byte big-endian counter.
const LABEL_LEN: usize = 6;
/// Video labels add the encoding number.
const VIDEO_LABEL_LEN: usize = LABEL_LEN + 1;
const VIDEO_MARKER: u8 = b'V';
const AUDIO_MARKER: u8 = b'A';

/// What a frame says about itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameLabel {
    /// Tag of the sending participant (its id, truncated to a byte).
    pub source: u8,
    /// Position of the frame in its stream, from 0.
    pub counter: u32,
    /// A VP8 key frame (always false for audio).
    pub keyframe: bool,
    /// Video: the encoding (see [`encoding`]); audio: 0.
    pub encoding: u8,
}

/// The bytes of video frame `counter` from `source`, of encoding number `n` (see
/// [`encoding`]; panics for a number that names none).
pub fn video_frame(source: u8, n: u8, counter: u32, keyframe: bool) -> Vec<u8> {
    let e = encoding(n).expect("a known encoding");
    let len = if keyframe { e.key_bytes } else { e.delta_bytes };
    let mut f = vec![0u8; len];
    // Frame tag: P bit (key = 0), version 0, show_frame = 1; the partition size bytes
    // are left at zero (no decoder ever reads them here).
    f[0] = if keyframe { 0x10 } else { 0x11 };
    if keyframe {
        let [w0, w1] = e.size.0.to_le_bytes();
        let [h0, h1] = e.size.1.to_le_bytes();
        f[3..10].copy_from_slice(&[0x9d, 0x01, 0x2a, w0, w1, h0, h1]);
    }
    write_label(&mut f[VIDEO_LABEL_AT..], VIDEO_MARKER, source, counter);
    f[VIDEO_LABEL_AT + LABEL_LEN] = n;
    fill(&mut f, VIDEO_LABEL_AT + VIDEO_LABEL_LEN, source, counter);
    f
}

/// The bytes of audio frame `counter` from `source`.
pub fn audio_frame(source: u8, counter: u32) -> Vec<u8> {
    let mut f = vec![0u8; AUDIO_FRAME_BYTES];
    write_label(&mut f, AUDIO_MARKER, source, counter);
    fill(&mut f, LABEL_LEN, source, counter);
    f
}

/// Reads a video frame back: its label, and whether every byte is what was sent.
/// `None` when the bytes are not a frame of ours at all.
pub fn read_video(data: &[u8]) -> Option<(FrameLabel, bool)> {
    let (source, counter) = read_label(data.get(VIDEO_LABEL_AT..)?, VIDEO_MARKER)?;
    let n = *data.get(VIDEO_LABEL_AT + LABEL_LEN)?;
    encoding(n)?;
    let keyframe = data[0] & 0x01 == 0;
    let intact = data == video_frame(source, n, counter, keyframe).as_slice();
    Some((
        FrameLabel {
            source,
            counter,
            keyframe,
            encoding: n,
        },
        intact,
    ))
}

/// Reads an audio frame back, like [`read_video`].
pub fn read_audio(data: &[u8]) -> Option<(FrameLabel, bool)> {
    let (source, counter) = read_label(data, AUDIO_MARKER)?;
    let intact = data == audio_frame(source, counter).as_slice();
    Some((
        FrameLabel {
            source,
            counter,
            keyframe: false,
            encoding: 0,
        },
        intact,
    ))
}

fn write_label(at: &mut [u8], marker: u8, source: u8, counter: u32) {
    at[0] = marker;
    at[1] = source;
    at[2..LABEL_LEN].copy_from_slice(&counter.to_be_bytes());
}

fn read_label(at: &[u8], marker: u8) -> Option<(u8, u32)> {
    let label = at.get(..LABEL_LEN)?;
    if label[0] != marker {
        return None;
    }
    let counter = u32::from_be_bytes([label[2], label[3], label[4], label[5]]);
    Some((label[1], counter))
}

/// Content that differs per source, frame and position, so a swapped, shifted or
/// truncated packet shows up as a mismatch.
fn fill(f: &mut [u8], from: usize, source: u8, counter: u32) {
    for (i, b) in f.iter_mut().enumerate().skip(from) {
        *b = (i as u32)
            .wrapping_mul(31)
            .wrapping_add(counter.wrapping_mul(7))
            .wrapping_add(u32::from(source)) as u8;
    }
}
