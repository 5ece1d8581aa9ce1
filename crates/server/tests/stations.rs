//! Stations at start-up: `--station NAME=FILE` files are read and checked before the
//! server starts (a bad one stops it, naming the station and file), and a good one
//! plays on the first media worker.

mod common;

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use common::{connect, member, recv, recv_until, send, server, server_with, PATIENCE};
use lanmeet_proto::{ClientMessage, ErrorCode, ServerMessage, StationInfo};
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

/// Answers a subscribe offer the way a browser would (str0m as the client).
fn answer(offer: &str) -> String {
    let crypto = std::sync::Arc::new(str0m::crypto::from_feature_flags());
    let mut rtc = str0m::RtcConfig::new()
        .set_crypto_provider(crypto)
        .build(Instant::now());
    let candidate =
        str0m::Candidate::host("127.0.0.1:40001".parse().expect("addr"), "udp").expect("host");
    rtc.add_local_candidate(candidate);
    let offer = str0m::change::SdpOffer::from_sdp_string(offer).expect("offer parses");
    rtc.sdp_api()
        .accept_offer(offer)
        .expect("offer accepted")
        .to_sdp_string()
}

fn clip(name: &str, pattern: &str) -> PathBuf {
    media(
        name,
        &[
            "-f",
            "lavfi",
            "-i",
            &format!("{pattern}=size=160x120:rate=10:duration=2"),
            "-f",
            "lavfi",
            "-i",
            "sine=duration=2",
            "-c:v",
            "libvpx",
            "-c:a",
            "libopus",
        ],
    )
}

fn stations_of(msg: &ServerMessage) -> Option<(Vec<StationInfo>, Option<String>)> {
    match msg {
        ServerMessage::Stations { stations, watching } => {
            Some((stations.clone(), watching.clone()))
        }
        _ => None,
    }
}

/// A viewer lists the stations, watches one (a subscribe offer follows), switches to
/// the other on the same connection (no new offer), is told about an unknown station,
/// and stops watching; viewer counts follow.
#[tokio::test]
async fn a_viewer_lists_watches_switches_and_stops() {
    let (one, two) = (clip("one.webm", "testsrc"), clip("two.webm", "smptebars"));
    let server = server_with(|c| {
        c.stations = vec![
            format!("one={}", one.display()),
            format!("two={}", two.display()),
        ]
    })
    .await;
    let mut ws = connect(&server).await;
    send(&mut ws, &ClientMessage::ListStations {}).await;
    let (list, watching) =
        stations_of(&recv_until(&mut ws, |m| stations_of(m).is_some()).await).expect("stations");
    assert_eq!(watching, None);
    let names: Vec<&str> = list.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["one", "two"]);
    assert_eq!(list[0].playing, "one.webm");
    assert!(
        list[0].duration_ms >= 2000 && list[0].duration_ms < 2100,
        "{list:?}"
    );
    assert!(list[0].position_ms < list[0].duration_ms && list[0].video);
    assert_eq!(list[0].viewers, 0);

    // Unknown station: a clear error, the socket stays usable.
    send(
        &mut ws,
        &ClientMessage::Watch {
            station: "nope".into(),
        },
    )
    .await;
    match recv_until(&mut ws, |m| matches!(m, ServerMessage::Error { .. })).await {
        ServerMessage::Error {
            code,
            message,
            fatal,
        } => {
            assert_eq!(code, ErrorCode::UnknownStation);
            assert!(message.contains("nope") && !fatal, "{message}");
        }
        _ => unreachable!(),
    }

    send(
        &mut ws,
        &ClientMessage::Watch {
            station: "one".into(),
        },
    )
    .await;
    let (list, watching) =
        stations_of(&recv_until(&mut ws, |m| stations_of(m).is_some()).await).expect("stations");
    assert_eq!(watching.as_deref(), Some("one"));
    assert_eq!((list[0].viewers, list[1].viewers), (1, 0));
    let offer = recv_until(&mut ws, |m| {
        matches!(m, ServerMessage::SubscribeOffer { .. })
    })
    .await;
    let ServerMessage::SubscribeOffer { sdp, tracks, .. } = offer else {
        unreachable!()
    };
    assert_eq!(tracks.len(), 2, "the station's video and audio: {tracks:?}");
    send(
        &mut ws,
        &ClientMessage::SubscribeAnswer { sdp: answer(&sdp) },
    )
    .await;

    // Switch: the list says so, and no new offer comes.
    send(
        &mut ws,
        &ClientMessage::Watch {
            station: "two".into(),
        },
    )
    .await;
    let (list, watching) =
        stations_of(&recv_until(&mut ws, |m| stations_of(m).is_some()).await).expect("stations");
    assert_eq!(watching.as_deref(), Some("two"));
    assert_eq!((list[0].viewers, list[1].viewers), (0, 1));
    // An offer would come within milliseconds (the worker's next turn); a second is
    // ample even on a loaded machine.
    let offered = tokio::time::timeout(Duration::from_secs(1), async {
        loop {
            match recv(&mut ws).await {
                Some(ServerMessage::SubscribeOffer { .. }) => return,
                Some(_) => {}
                None => std::future::pending::<()>().await,
            }
        }
    })
    .await;
    assert!(
        offered.is_err(),
        "a switch between matching stations needs no new offer"
    );

    send(&mut ws, &ClientMessage::StopWatching {}).await;
    let (list, watching) =
        stations_of(&recv_until(&mut ws, |m| stations_of(m).is_some()).await).expect("stations");
    assert_eq!(watching, None);
    assert_eq!((list[0].viewers, list[1].viewers), (0, 0));
    server.shutdown().await.expect("clean shutdown");
}

/// Station messages are for their own connection: refused in a meeting.
#[tokio::test]
async fn a_meeting_participant_cannot_watch() {
    let server = server().await;
    let mut m = member(&server, "room", "ann").await;
    send(
        &mut m.ws,
        &ClientMessage::Watch {
            station: "x".into(),
        },
    )
    .await;
    match recv_until(&mut m.ws, |msg| matches!(msg, ServerMessage::Error { .. })).await {
        ServerMessage::Error { code, .. } => assert_eq!(code, ErrorCode::WrongState),
        _ => unreachable!(),
    }
    server.shutdown().await.expect("clean shutdown");
}

/// `/stations` and `/stations/<name>` serve the stations page under the strict CSP.
#[tokio::test]
async fn the_stations_page_is_served() {
    let server = server().await;
    for path in ["/stations", "/stations/news"] {
        let response = reqwest::get(format!("http://{}{path}", server.addr))
            .await
            .expect("get");
        assert!(
            response.status().is_success(),
            "{path}: {}",
            response.status()
        );
        let csp = response
            .headers()
            .get("content-security-policy")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        assert!(
            csp.is_some_and(|c| c.contains("default-src 'self'")),
            "{path}"
        );
        let body = response.text().await.expect("body");
        assert!(
            body.contains("/stations.js") && body.contains("st-video"),
            "{path}"
        );
    }
    let script = reqwest::get(format!("http://{}/stations.js", server.addr))
        .await
        .expect("get");
    assert!(script.status().is_success());
    server.shutdown().await.expect("clean shutdown");
}

/// Watching costs the worker what joining does: it counts toward joins per address.
#[tokio::test]
async fn watching_counts_toward_the_join_rate() {
    let file = clip("rate.webm", "testsrc");
    let server = server_with(|c| {
        c.stations = vec![format!("one={}", file.display())];
        c.join_burst = 1;
        c.join_rate = 0.01;
    })
    .await;
    let mut first = connect(&server).await;
    send(
        &mut first,
        &ClientMessage::Watch {
            station: "one".into(),
        },
    )
    .await;
    let (_, watching) =
        stations_of(&recv_until(&mut first, |m| stations_of(m).is_some()).await).expect("stations");
    assert_eq!(watching.as_deref(), Some("one"));
    let mut second = connect(&server).await;
    send(
        &mut second,
        &ClientMessage::Watch {
            station: "one".into(),
        },
    )
    .await;
    let reply = recv_until(&mut second, |m| {
        matches!(
            m,
            ServerMessage::Error { .. } | ServerMessage::Stations { .. }
        )
    })
    .await;
    assert!(
        matches!(
            reply,
            ServerMessage::Error {
                code: ErrorCode::RateLimited,
                ..
            }
        ),
        "{reply:?}"
    );
    server.shutdown().await.expect("clean shutdown");
}
