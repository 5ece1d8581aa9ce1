//! Station mode: 20 viewers `watch` a small station (made here with ffmpeg) on the real
//! server in this process. Every one of them gets its video and audio, nothing is lost,
//! and the frame rate is the file's; a station that does not exist fails the run loudly.

mod common;

use std::path::{Path, PathBuf};
use std::process::Output;

use common::{num, run_loadgen, start_server};

const FPS: f64 = 10.0;

/// A 4 s station: 160x120 at 10 fps with a key frame every second, and a sine as Opus.
fn make_station(dir: &Path) -> PathBuf {
    let file = dir.join("tiny.webm");
    let status = std::process::Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-y"])
        .args([
            "-f",
            "lavfi",
            "-i",
            "testsrc=size=160x120:rate=10:duration=4",
        ])
        .args(["-f", "lavfi", "-i", "sine=frequency=440:duration=4"])
        .args([
            "-c:v", "libvpx", "-g", "10", "-b:v", "200k", "-c:a", "libopus",
        ])
        .arg(&file)
        .status()
        .expect("ffmpeg is needed for this test (apt-get install ffmpeg)");
    assert!(status.success(), "ffmpeg failed");
    file
}

async fn loadgen(url: &str, args: &[&str]) -> Output {
    tokio::process::Command::new(env!("CARGO_BIN_EXE_lanmeet-loadgen"))
        .args(["--target", "lanmeet", "--server", url, "--json"])
        .args(args)
        .output()
        .await
        .expect("lanmeet-loadgen starts")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_viewers_of_a_station_get_all_of_its_video_and_audio() {
    let dir = std::env::temp_dir().join(format!(
        "lanmeet-loadgen-station-media-{}",
        std::process::id()
    ));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let file = make_station(&dir);
    let server = start_server("station", |config| {
        // Every viewer comes from 127.0.0.1.
        config.max_connections_per_ip = 1000;
        config.join_burst = 1000;
        config.join_rate = 1000.0;
        config.stations = vec![format!("tiny={}", file.display())];
    })
    .await;

    let report = run_loadgen(&server, |cmd| {
        cmd.args(["--station", "tiny", "--viewers", "20", "--join-spread", "1"])
            .args(["--warmup", "1", "--duration", "4"])
    })
    .await;
    let num = |path: &str| num(&report, path);
    assert_eq!(num("/join_failures"), 0.0, "{}", report["join_errors"]);
    assert_eq!(num("/joined"), 20.0);
    assert_eq!(
        num("/station/viewers_with_video"),
        20.0,
        "everyone gets video"
    );
    assert_eq!(
        num("/station/viewers_with_audio"),
        20.0,
        "everyone gets audio"
    );
    assert_eq!(num("/streams_silent"), 0.0);
    assert!(
        num("/packets_received") > 20.0 * 4.0 * 50.0,
        "packets arrive"
    );
    assert_eq!(num("/loss_pct"), 0.0, "nothing lost: {report}");
    let fps = num("/station/video_fps/min");
    assert!(
        (FPS * 0.8..=FPS * 1.2).contains(&fps),
        "the slowest viewer gets {fps} frames/s, the file has {FPS}"
    );
    assert!(num("/station/rate_kbps/min") > 0.0);
    assert!(num("/latency_ms/samples") > 0.0, "lateness measured");

    // A station that is not on air: every watch is refused, and the run fails saying so.
    let output = loadgen(&server.url(), &["--station", "nope", "--viewers", "2"]).await;
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "a run of refused watches fails");
    assert!(
        stderr.contains("UnknownStation"),
        "the error names the refusal: {stderr}"
    );

    server.shutdown().await;
    let _ = std::fs::remove_dir_all(dir);
}
