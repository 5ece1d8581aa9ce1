//! Converting an upload that cannot be played as it is (MP4 with H.264/AAC, MP3…) into
//! what a station plays, with the `ffmpeg` and `ffprobe` programs when they are on the
//! PATH: VP8 + Opus in WebM (Ogg Opus for a file without video), a key frame every
//! second (`-g` = the frame rate), encoded fast (`-deadline realtime -cpu-used 8`).
//!
//! [`probe`] runs first and at once, so a file ffmpeg cannot read is refused with its
//! reason before anything is created; [`convert`] then runs in the background and
//! reports its progress from ffmpeg's `-progress` output.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};

use serde::Deserialize;

/// The programs that probe and convert: `ffprobe` and `ffmpeg` from the PATH unless
/// told otherwise.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tools {
    /// The ffmpeg program.
    pub ffmpeg: std::path::PathBuf,
    /// The ffprobe program.
    pub ffprobe: std::path::PathBuf,
}

impl Default for Tools {
    fn default() -> Self {
        Tools {
            ffmpeg: "ffmpeg".into(),
            ffprobe: "ffprobe".into(),
        }
    }
}

/// What [`probe`] found out about a file.
#[derive(Debug, Clone, PartialEq)]
pub struct Probe {
    /// Its length in seconds, if known.
    pub duration: Option<f64>,
    /// Video frames per second, if it has video.
    pub video_fps: Option<f64>,
    /// Whether it has audio.
    pub audio: bool,
}

/// Why a file cannot become a station.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConvertError {
    /// No `ffmpeg`/`ffprobe` on the PATH: the admin has to convert it elsewhere.
    #[error("{file} cannot be played as it is (stations play WebM with VP8 or VP9 and Opus, or Ogg Opus), and ffmpeg is not installed on the server to convert it. Convert it with: {command}")]
    NoFfmpeg {
        /// The file's name.
        file: String,
        /// The command that converts it.
        command: String,
    },
    /// ffmpeg cannot read it: not a media file, or damaged.
    #[error("{file} is not a media file the server can read: {reason}")]
    Unreadable {
        /// The file's name.
        file: String,
        /// ffmpeg's words.
        reason: String,
    },
    /// It has neither video nor audio.
    #[error("{file} has neither video nor audio.")]
    NoMedia {
        /// The file's name.
        file: String,
    },
    /// The conversion itself failed.
    #[error("Converting {file} failed: {reason}")]
    Failed {
        /// The file's name.
        file: String,
        /// ffmpeg's words.
        reason: String,
    },
}

/// The command that converts `file` by hand (shown when the server cannot).
pub fn command_for(file: &str) -> String {
    format!(
        "ffmpeg -i {file} -c:v libvpx -g 30 -b:v 1500k -deadline realtime -cpu-used 8 -c:a libopus -b:a 128k station.webm"
    )
}

/// Whether `program` runs (is on the PATH).
fn available(program: &Path) -> bool {
    Command::new(program)
        .arg("-version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

#[derive(Deserialize)]
struct ProbeOutput {
    #[serde(default)]
    streams: Vec<ProbeStream>,
    #[serde(default)]
    format: Option<ProbeFormat>,
}

#[derive(Deserialize)]
struct ProbeStream {
    codec_type: Option<String>,
    avg_frame_rate: Option<String>,
    r_frame_rate: Option<String>,
}

#[derive(Deserialize)]
struct ProbeFormat {
    duration: Option<String>,
}

/// `30000/1001` → 29.97; `0/0` → none.
fn rate(text: &str) -> Option<f64> {
    let (n, d) = text.split_once('/').unwrap_or((text, "1"));
    let (n, d): (f64, f64) = (n.parse().ok()?, d.parse().ok()?);
    (n > 0.0 && d > 0.0)
        .then(|| n / d)
        .filter(|r| r.is_finite())
}

/// Reads `path`'s streams with ffprobe (blocking, well under a second); without
/// ffmpeg and ffprobe, [`ConvertError::NoFfmpeg`]. `file` names it
/// in errors.
pub fn probe(tools: &Tools, path: &Path, file: &str) -> Result<Probe, ConvertError> {
    if !available(&tools.ffprobe) || !available(&tools.ffmpeg) {
        return Err(ConvertError::NoFfmpeg {
            file: file.to_string(),
            command: command_for(file),
        });
    }
    let out = Command::new(&tools.ffprobe)
        .args([
            "-v",
            "error",
            "-of",
            "json",
            "-show_streams",
            "-show_format",
        ])
        .arg(path)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| ConvertError::Unreadable {
            file: file.to_string(),
            reason: e.to_string(),
        })?;
    let unreadable = |reason: String| ConvertError::Unreadable {
        file: file.to_string(),
        reason,
    };
    if !out.status.success() {
        return Err(unreadable(last_line(&out.stderr)));
    }
    let parsed: ProbeOutput =
        serde_json::from_slice(&out.stdout).map_err(|e| unreadable(e.to_string()))?;
    let video = parsed
        .streams
        .iter()
        .find(|s| s.codec_type.as_deref() == Some("video"));
    let audio = parsed
        .streams
        .iter()
        .any(|s| s.codec_type.as_deref() == Some("audio"));
    if video.is_none() && !audio {
        return Err(ConvertError::NoMedia {
            file: file.to_string(),
        });
    }
    let video_fps = video.map(|v| {
        v.avg_frame_rate
            .as_deref()
            .and_then(rate)
            .or_else(|| v.r_frame_rate.as_deref().and_then(rate))
            .unwrap_or(25.0)
    });
    let duration = parsed
        .format
        .and_then(|f| f.duration)
        .and_then(|d| d.parse::<f64>().ok())
        .filter(|d| d.is_finite() && *d > 0.0);
    Ok(Probe {
        duration,
        video_fps,
        audio,
    })
}

/// The last non-empty line of ffmpeg's error output (its actual complaint).
fn last_line(stderr: &[u8]) -> String {
    String::from_utf8_lossy(stderr)
        .lines()
        .rev()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or("unknown error")
        .chars()
        .take(300)
        .collect()
}

/// The ffmpeg arguments that convert `input` to `output` as [`probe`] described it.
pub fn arguments(input: &Path, output: &Path, probe: &Probe) -> Vec<std::ffi::OsString> {
    let mut args: Vec<std::ffi::OsString> = ["-nostdin", "-v", "error", "-y", "-i"]
        .iter()
        .map(Into::into)
        .collect();
    args.push(input.into());
    let mut push = |list: &[&str]| args.extend(list.iter().map(Into::into));
    push(&["-progress", "pipe:1", "-nostats"]);
    match probe.video_fps {
        Some(fps) => {
            let gop = (fps.round() as u32).max(1).to_string();
            push(&["-map", "0:v:0", "-c:v", "libvpx", "-b:v", "1500k"]);
            push(&["-g", &gop, "-keyint_min", &gop]);
            push(&["-deadline", "realtime", "-cpu-used", "8"]);
            if probe.audio {
                push(&[
                    "-map", "0:a:0", "-c:a", "libopus", "-b:a", "128k", "-ac", "2",
                ]);
            }
            push(&["-f", "webm"]);
        }
        None => push(&[
            "-map", "0:a:0", "-vn", "-c:a", "libopus", "-b:a", "128k", "-ac", "2", "-f", "ogg",
        ]),
    }
    args.push(output.into());
    args
}

/// Converts `input` into `output` (blocking, for as long as ffmpeg takes), updating
/// `progress` in thousandths from ffmpeg's `-progress` reports (`out_time_us` against
/// the probed duration).
pub fn convert(
    tools: &Tools,
    input: &Path,
    output: &Path,
    probe: &Probe,
    file: &str,
    progress: &AtomicU32,
) -> Result<(), ConvertError> {
    let failed = |reason: String| ConvertError::Failed {
        file: file.to_string(),
        reason,
    };
    let mut child = Command::new(&tools.ffmpeg)
        .args(arguments(input, output, probe))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| failed(e.to_string()))?;
    // stderr is drained on its own thread so that ffmpeg never blocks on a full pipe.
    let stderr = child.stderr.take();
    let errors = std::thread::spawn(move || {
        let mut text = Vec::new();
        if let Some(mut e) = stderr {
            let _ = std::io::Read::read_to_end(&mut e, &mut text);
        }
        text
    });
    if let Some(stdout) = child.stdout.take() {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if let Some(done) = progress_of(&line, probe.duration) {
                progress.store(done, Ordering::Relaxed);
            }
        }
    }
    let status = child.wait().map_err(|e| failed(e.to_string()))?;
    let errors = errors.join().unwrap_or_default();
    if !status.success() {
        return Err(failed(last_line(&errors)));
    }
    progress.store(1000, Ordering::Relaxed);
    Ok(())
}

/// Thousandths done from one line of ffmpeg's `-progress` output, if it says.
fn progress_of(line: &str, duration: Option<f64>) -> Option<u32> {
    let (key, value) = line.split_once('=')?;
    match key {
        // `out_time_ms` is microseconds too (an old misnomer ffmpeg keeps).
        "out_time_us" | "out_time_ms" => {
            let us: f64 = value.trim().parse().ok()?;
            let total = duration?;
            Some(((us / 1e6 / total) * 1000.0).clamp(0.0, 999.0) as u32)
        }
        "progress" if value.trim() == "end" => Some(1000),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_and_progress_lines_parse() {
        assert_eq!(rate("30/1"), Some(30.0));
        assert!((rate("30000/1001").expect("rate") - 29.97).abs() < 0.01);
        assert_eq!(rate("0/0"), None);
        assert_eq!(rate("x"), None);
        assert_eq!(progress_of("out_time_us=5000000", Some(10.0)), Some(500));
        assert_eq!(progress_of("out_time_us=N/A", Some(10.0)), None);
        assert_eq!(progress_of("out_time_us=99000000", Some(10.0)), Some(999));
        assert_eq!(progress_of("progress=end", None), Some(1000));
        assert_eq!(progress_of("frame=12", Some(10.0)), None);
    }

    #[test]
    fn the_conversion_keys_every_second() {
        let probe = Probe {
            duration: Some(3.0),
            video_fps: Some(24.0),
            audio: true,
        };
        let args: Vec<String> = arguments(Path::new("in.mp4"), Path::new("out"), &probe)
            .into_iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        let joined = args.join(" ");
        assert!(joined.contains("-g 24"), "{joined}");
        assert!(joined.contains("-c:v libvpx") && joined.contains("-c:a libopus"));
        assert!(joined.contains("-deadline realtime -cpu-used 8"));
        let radio = Probe {
            video_fps: None,
            ..probe
        };
        let joined = arguments(Path::new("in.mp3"), Path::new("out"), &radio)
            .into_iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect::<Vec<_>>()
            .join(" ");
        assert!(joined.contains("-f ogg") && !joined.contains("libvpx"));
    }
}
