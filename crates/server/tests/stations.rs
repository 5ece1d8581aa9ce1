//! Stations at start-up: `--station NAME=FILE` files are read and checked before the
//! server starts (a bad one stops it, naming the station and file), and a good one
//! plays on the first media worker.

mod common;

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use common::{server_with, PATIENCE};
use lanmeet_sfu::MediaClass;

fn media(name: &str, args: &[&str]) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("lanmeet-server-stations-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let out = dir.join(name);
    let status = Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-y"])
        .args(args)
        .arg(&out)
        .status()
        .expect("ffmpeg is needed for this test (apt-get install ffmpeg)");
    assert!(status.success(), "ffmpeg failed making {name}");
    out
}

#[tokio::test]
async fn a_station_plays_on_the_first_worker() {
    let file = media(
        "clip.webm",
        &[
            "-f",
            "lavfi",
            "-i",
            "testsrc=size=160x120:rate=10:duration=2",
            "-f",
            "lavfi",
            "-i",
            "sine=duration=2",
            "-c:v",
            "libvpx",
            "-c:a",
            "libopus",
        ],
    );
    let spec = format!("news={}", file.display());
    let server = server_with(|c| c.stations = vec![spec]).await;
    assert_eq!(server.stations.len(), 1);
    let station = &server.stations[0];
    assert_eq!(
        (station.name.as_str(), station.worker, station.video),
        ("news", 0, true)
    );
    assert!(
        station.duration >= Duration::from_secs(2)
            && station.duration < Duration::from_millis(2100)
    );
    // The worker carries its two tracks (seen in its counters, copied out twice a second).
    let deadline = Instant::now() + PATIENCE;
    loop {
        let stats = server.registry.workers()[0].stats();
        let tracks: u64 = MediaClass::ALL.iter().map(|c| *stats.tracks.get(*c)).sum();
        if tracks == 2 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the station's tracks never showed: {stats:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    server.shutdown().await.expect("clean shutdown");
}

#[tokio::test]
async fn an_unplayable_station_file_stops_the_start_with_its_name() {
    let mp4 = media(
        "clip.mp4",
        &["-f", "lavfi", "-i", "testsrc=duration=1", "-c:v", "mpeg4"],
    );
    let missing = PathBuf::from("/nonexistent/lanmeet-station.webm");
    for (file, says) in [(mp4, "cannot be played as it is"), (missing, "opening")] {
        let dir = std::env::temp_dir().join(format!(
            "lanmeet-test-st-{}-{}",
            std::process::id(),
            common::rand_suffix()
        ));
        let config = lanmeet_server::config::Config {
            listen: "127.0.0.1:0".parse().expect("addr"),
            data_dir: dir,
            http: true,
            udp_port: 0,
            workers: 1,
            stations: vec![format!("lobby={}", file.display())],
            ..Default::default()
        };
        let err = match lanmeet_server::start(config).await {
            Ok(_) => panic!("a server started with {}", file.display()),
            Err(e) => format!("{e:#}"),
        };
        assert!(err.contains("station lobby") && err.contains(says), "{err}");
        if says.contains("played") {
            assert!(err.contains("ffmpeg -i"), "names the conversion: {err}");
        }
    }
}
