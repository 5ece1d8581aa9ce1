//! A station's file, read into memory: its video frames (VP8 or VP9) and audio packets
//! (Opus), each with its time from the start of the file, from WebM/Matroska
//! (`matroska-demuxer`) or Ogg Opus (`ogg`).
//!
//! The whole file is read once, off the media worker (the server does it on a blocking
//! thread), so the worker never waits on a disk: a station plays from memory. Files
//! are bounded by [`MAX_MEDIA_BYTES`].

use std::io::{Read, Seek, SeekFrom};
use std::sync::Arc;
use std::time::Duration;

use matroska_demuxer::{Frame, MatroskaFile, TrackType};
use ogg::PacketReader;
use str0m::format::Codec;

/// Most frame bytes a station's file may hold in memory.
pub const MAX_MEDIA_BYTES: u64 = 512 * 1024 * 1024;

/// Why a file cannot be played as it is.
#[derive(Debug, thiserror::Error)]
pub enum MediaError {
    /// Not a container or codec a station plays without converting.
    #[error("unsupported media: {0}")]
    Unsupported(String),
    /// The container is damaged or truncated.
    #[error("corrupt media: {0}")]
    Corrupt(String),
    /// Nothing to play: no frames in a supported track.
    #[error("the file has no playable frames")]
    Empty,
    /// Larger than [`MAX_MEDIA_BYTES`].
    #[error("the file's frames exceed {} MiB", MAX_MEDIA_BYTES / 1024 / 1024)]
    TooLarge,
    /// Reading failed.
    #[error("read error: {0}")]
    Io(#[from] std::io::Error),
}

/// One frame of a track.
#[derive(Debug, Clone)]
pub struct MediaFrame {
    /// Its time from the start of the file, in the track's clock ticks.
    pub ticks: u64,
    /// A video key frame (always true for audio).
    pub keyframe: bool,
    /// The encoded frame, as the decoder takes it.
    pub data: Arc<[u8]>,
}

/// One track of a station's file.
#[derive(Debug, Clone)]
pub struct MediaTrack {
    /// VP8, VP9 or Opus.
    pub codec: Codec,
    /// RTP clock rate: 90 kHz for video, 48 kHz for Opus.
    pub clock_rate: u32,
    /// Its frames in time order; never empty.
    pub frames: Vec<MediaFrame>,
}

/// What a station plays: at most one video and one audio track, and the length of one
/// pass through the file (the loop).
#[derive(Debug, Clone)]
pub struct StationMedia {
    /// The video track, if any.
    pub video: Option<MediaTrack>,
    /// The audio track, if any.
    pub audio: Option<MediaTrack>,
    /// One pass: the end of the last frame of the longer track.
    pub duration: Duration,
}

const VIDEO_CLOCK: u32 = 90_000;
const OPUS_CLOCK: u32 = 48_000;

impl StationMedia {
    /// Reads a WebM/Matroska (VP8 or VP9 video, Opus audio) or Ogg Opus file, told
    /// apart by their first bytes.
    pub fn read<R: Read + Seek>(mut reader: R) -> Result<Self, MediaError> {
        let mut magic = [0u8; 4];
        let n = read_up_to(&mut reader, &mut magic)?;
        reader.seek(SeekFrom::Start(0))?;
        match &magic[..n] {
            [0x1a, 0x45, 0xdf, 0xa3] => Self::read_matroska(reader),
            b"OggS" => Self::read_ogg(reader),
            _ => Err(MediaError::Unsupported(
                "neither WebM/Matroska nor Ogg".into(),
            )),
        }
    }

    /// Whether it has a video track.
    pub fn has_video(&self) -> bool {
        self.video.is_some()
    }

    fn read_matroska<R: Read + Seek>(reader: R) -> Result<Self, MediaError> {
        let mut file =
            MatroskaFile::open(reader).map_err(|e| MediaError::Corrupt(e.to_string()))?;
        let scale_ns = file.info().timestamp_scale().get();
        let mut video: Option<(u64, Codec)> = None;
        let mut audio: Option<u64> = None;
        let mut refused = Vec::new();
        for t in file.tracks() {
            let number = t.track_number().get();
            match (t.track_type(), t.codec_id()) {
                (TrackType::Video, "V_VP8") if video.is_none() => {
                    video = Some((number, Codec::Vp8))
                }
                (TrackType::Video, "V_VP9") if video.is_none() => {
                    video = Some((number, Codec::Vp9))
                }
                (TrackType::Audio, "A_OPUS") if audio.is_none() => audio = Some(number),
                (TrackType::Video | TrackType::Audio, id) => refused.push(id.to_string()),
                _ => {}
            }
        }
        if video.is_none() && audio.is_none() {
            return Err(MediaError::Unsupported(format!(
                "no VP8, VP9 or Opus track (found {})",
                if refused.is_empty() {
                    "none".to_string()
                } else {
                    refused.join(", ")
                }
            )));
        }
        let mut v = video.map(|(_, codec)| MediaTrack {
            codec,
            clock_rate: VIDEO_CLOCK,
            frames: Vec::new(),
        });
        let mut a = audio.map(|_| MediaTrack {
            codec: Codec::Opus,
            clock_rate: OPUS_CLOCK,
            frames: Vec::new(),
        });
        let mut frame = Frame::default();
        let mut bytes = 0u64;
        while file
            .next_frame(&mut frame)
            .map_err(|e| MediaError::Corrupt(e.to_string()))?
        {
            let ns = u128::from(frame.timestamp) * u128::from(scale_ns);
            let (track, keyframe) = if Some(frame.track) == video.map(|(n, _)| n) {
                let key = frame.is_keyframe.unwrap_or_else(|| {
                    video.is_some_and(|(_, c)| c == Codec::Vp8) && vp8_key(&frame.data)
                });
                (v.as_mut(), key)
            } else if Some(frame.track) == audio {
                (a.as_mut(), true)
            } else {
                continue;
            };
            let Some(track) = track else { continue };
            if frame.data.is_empty() {
                continue;
            }
            bytes += frame.data.len() as u64;
            if bytes > MAX_MEDIA_BYTES {
                return Err(MediaError::TooLarge);
            }
            let ticks = (ns * u128::from(track.clock_rate) / 1_000_000_000) as u64;
            track.frames.push(MediaFrame {
                ticks,
                keyframe,
                data: Arc::from(std::mem::take(&mut frame.data)),
            });
        }
        Self::assemble(v, a)
    }

    fn read_ogg<R: Read + Seek>(reader: R) -> Result<Self, MediaError> {
        let mut packets = PacketReader::new(reader);
        let mut frames = Vec::new();
        let mut ticks = 0u64;
        let mut index = 0usize;
        let mut bytes = 0u64;
        while let Some(p) = packets
            .read_packet()
            .map_err(|e| MediaError::Corrupt(e.to_string()))?
        {
            index += 1;
            match index {
                1 if p.data.starts_with(b"OpusHead") => continue,
                1 => return Err(MediaError::Unsupported("an Ogg file without Opus".into())),
                2 if p.data.starts_with(b"OpusTags") => continue,
                2 => {
                    return Err(MediaError::Corrupt(
                        "Ogg Opus without its tags header".into(),
                    ))
                }
                _ => {}
            }
            let Some(samples) = opus_samples(&p.data) else {
                return Err(MediaError::Corrupt(format!(
                    "malformed Opus packet {index}"
                )));
            };
            bytes += p.data.len() as u64;
            if bytes > MAX_MEDIA_BYTES {
                return Err(MediaError::TooLarge);
            }
            frames.push(MediaFrame {
                ticks,
                keyframe: true,
                data: Arc::from(p.data),
            });
            ticks += samples;
        }
        if index == 0 {
            return Err(MediaError::Corrupt("no Ogg packets".into()));
        }
        let audio = MediaTrack {
            codec: Codec::Opus,
            clock_rate: OPUS_CLOCK,
            frames,
        };
        Self::assemble(None, Some(audio))
    }

    /// Checks the tracks and works out the loop's length. Video must start on a key
    /// frame somewhere, or no viewer could ever decode it.
    fn assemble(video: Option<MediaTrack>, audio: Option<MediaTrack>) -> Result<Self, MediaError> {
        let video = video.filter(|t| !t.frames.is_empty());
        let audio = audio.filter(|t| !t.frames.is_empty());
        if let Some(v) = &video {
            if !v.frames.iter().any(|f| f.keyframe) {
                return Err(MediaError::Corrupt("the video has no key frame".into()));
            }
        }
        let mut duration = Duration::ZERO;
        for t in video.iter().chain(audio.iter()) {
            let end = t.frames.last().map_or(0, |f| f.ticks) + typical_interval(t);
            duration = duration.max(ticks_to_duration(end, t.clock_rate));
        }
        if duration.is_zero() {
            return Err(MediaError::Empty);
        }
        Ok(StationMedia {
            video,
            audio,
            duration,
        })
    }
}

/// The usual gap between two frames of a track (the median), the length given to its
/// last frame; 20 ms of Opus or 1/30 s of video when it has one frame.
fn typical_interval(t: &MediaTrack) -> u64 {
    let mut gaps: Vec<u64> = t
        .frames
        .windows(2)
        .map(|w| w[1].ticks.saturating_sub(w[0].ticks))
        .filter(|g| *g > 0)
        .collect();
    gaps.sort_unstable();
    gaps.get(gaps.len() / 2)
        .copied()
        .unwrap_or(u64::from(t.clock_rate) / if t.codec == Codec::Opus { 50 } else { 30 })
}

/// `ticks` of a `clock_rate` clock as a duration.
pub(crate) fn ticks_to_duration(ticks: u64, clock_rate: u32) -> Duration {
    let nanos = u128::from(ticks) * 1_000_000_000 / u128::from(clock_rate.max(1));
    Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX))
}

/// A VP8 frame's P bit (RFC 6386, 9.1): clear on a key frame.
fn vp8_key(data: &[u8]) -> bool {
    data.first().is_some_and(|b| b & 0x01 == 0)
}

/// Samples (at 48 kHz) in an Opus packet, from its TOC byte (RFC 6716, 3.1).
fn opus_samples(p: &[u8]) -> Option<u64> {
    let toc = *p.first()?;
    let config = toc >> 3;
    let per_frame: u64 = match config {
        0..=11 => [480, 960, 1920, 2880][usize::from(config % 4)],
        12..=15 => [480, 960][usize::from(config % 2)],
        _ => [120, 240, 480, 960][usize::from(config % 4)],
    };
    let frames = match toc & 0x03 {
        0 => 1,
        1 | 2 => 2,
        _ => u64::from(*p.get(1)? & 0x3f),
    };
    (frames > 0).then_some(per_frame * frames)
}

fn read_up_to<R: Read>(r: &mut R, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..])? {
            0 => break,
            k => n += k,
        }
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use std::io::Cursor;

    use super::*;

    #[test]
    fn opus_toc_durations() {
        assert_eq!(opus_samples(&[0xfc]), Some(960)); // CELT 20 ms, one frame
        assert_eq!(opus_samples(&[0xfd]), Some(1920)); // two frames
        assert_eq!(opus_samples(&[0x1b, 0x03]), Some(3 * 2880)); // SILK 60 ms, code 3
        assert_eq!(opus_samples(&[0xff, 0x00]), None);
        assert_eq!(opus_samples(&[]), None);
    }

    #[test]
    fn garbage_is_refused_not_panicked_on() {
        for bytes in [
            &b""[..],
            b"hello world",
            b"OggS\0\0\0",
            &[0x1a, 0x45, 0xdf, 0xa3, 0x01],
        ] {
            assert!(StationMedia::read(Cursor::new(bytes)).is_err());
        }
    }
}
