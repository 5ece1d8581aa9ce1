//! The admin's stations (`/admin/api/stations`): uploads that play as they are, uploads
//! converted by ffmpeg, files from the data directory's `media/` folder, live stations
//! with a token; edit, reorder, delete (a watching viewer is told), a restart keeps
//! them, a file gone from the disk takes only its station off air, and bad input
//! (strangers, garbage, oversize) leaves nothing behind.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use common::{connect, recv_until, send, server_with, Ws, PATIENCE};
use lanmeet_proto::{ClientMessage, ServerMessage, StationEnd, StationInfo};
use lanmeet_server::config::{Config, Secret};
use lanmeet_server::RunningServer;
use reqwest::StatusCode;
use serde_json::Value;

const PASSWORD: &str = "admin-pw";

fn media(name: &str, args: &[&str]) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "lanmeet-server-station-admin-{}",
        std::process::id()
    ));
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

/// A 2 s WebM (VP8, Opus): plays as it is.
fn webm(name: &str) -> PathBuf {
    media(
        name,
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
    )
}

/// Whether this ffmpeg has libx264.
fn has_x264() -> bool {
    Command::new("ffmpeg")
        .args(["-hide_banner", "-encoders"])
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains("libx264"))
}

fn with_admin(c: &mut Config) {
    c.admin_password = Some(Secret(PASSWORD.into()));
}

fn api(server: &RunningServer, path: &str) -> String {
    format!("http://{}/admin/api/stations{path}", server.addr)
}

/// Uploads `file` as station `name`; the status and JSON body.
async fn upload(
    server: &RunningServer,
    name: &str,
    file: &Path,
    description: &str,
) -> (StatusCode, Value) {
    let bytes = std::fs::read(file).expect("read media");
    let file_name = file
        .file_name()
        .expect("name")
        .to_string_lossy()
        .into_owned();
    let resp = reqwest::Client::new()
        .post(api(server, &format!("/{name}/upload")))
        .bearer_auth(PASSWORD)
        .header("x-file-name", encode(&file_name))
        .header("x-description", encode(description))
        .body(bytes)
        .send()
        .await
        .expect("upload");
    let status = resp.status();
    (status, resp.json().await.unwrap_or(Value::Null))
}

fn encode(text: &str) -> String {
    percent_encoding::utf8_percent_encode(text, percent_encoding::NON_ALPHANUMERIC).to_string()
}

/// The admin's list.
async fn admin_list(server: &RunningServer) -> Vec<Value> {
    let resp = reqwest::Client::new()
        .get(api(server, ""))
        .bearer_auth(PASSWORD)
        .send()
        .await
        .expect("list");
    assert_eq!(resp.status(), StatusCode::OK);
    let body: Value = resp.json().await.expect("json");
    body["stations"].as_array().expect("stations").clone()
}

fn named<'a>(list: &'a [Value], name: &str) -> &'a Value {
    list.iter()
        .find(|s| s["name"] == name)
        .unwrap_or_else(|| panic!("no station {name} in {list:?}"))
}

fn names(list: &[Value]) -> Vec<String> {
    list.iter()
        .map(|s| s["name"].as_str().unwrap_or_default().to_string())
        .collect()
}

async fn viewer_list(ws: &mut Ws) -> Vec<StationInfo> {
    send(ws, &ClientMessage::ListStations {}).await;
    match recv_until(ws, |m| matches!(m, ServerMessage::Stations { .. })).await {
        ServerMessage::Stations { stations, .. } => stations,
        _ => unreachable!(),
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

/// Watches `station` and answers its offer.
async fn watch(ws: &mut Ws, station: &str) {
    send(
        ws,
        &ClientMessage::Watch {
            station: station.into(),
        },
    )
    .await;
    let offer = recv_until(ws, |m| matches!(m, ServerMessage::SubscribeOffer { .. })).await;
    let ServerMessage::SubscribeOffer { sdp, .. } = offer else {
        unreachable!()
    };
    send(ws, &ClientMessage::SubscribeAnswer { sdp: answer(&sdp) }).await;
}

/// Files lanmeet stores (named by SHA-256) and temporary files in the data directory.
fn stored_and_temp(dir: &Path) -> (Vec<String>, Vec<String>) {
    let list = |sub: &str| -> Vec<String> {
        std::fs::read_dir(dir.join(sub))
            .map(|d| {
                d.filter_map(Result::ok)
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default()
    };
    (list("files"), list("tmp"))
}

fn data_dir() -> PathBuf {
    std::env::temp_dir().join(format!(
        "lanmeet-test-station-admin-{}-{}",
        std::process::id(),
        common::rand_suffix()
    ))
}

#[tokio::test]
async fn strangers_get_401_and_change_nothing() {
    let server = server_with(with_admin).await;
    let http = reqwest::Client::new();
    let file = webm("stranger.webm");
    let body = serde_json::json!({"name": "x", "source": "live"});
    for resp in [
        http.get(api(&server, "")).send().await.expect("get"),
        http.post(api(&server, ""))
            .json(&body)
            .send()
            .await
            .expect("post"),
        http.post(api(&server, "/x/upload"))
            .header("x-file-name", "stranger.webm")
            .body(std::fs::read(&file).expect("read"))
            .send()
            .await
            .expect("upload"),
        http.patch(api(&server, "/x"))
            .json(&serde_json::json!({"description": "d"}))
            .send()
            .await
            .expect("patch"),
        http.post(api(&server, "/x/move"))
            .json(&serde_json::json!({"direction": "up"}))
            .send()
            .await
            .expect("move"),
        http.post(api(&server, "/x/token"))
            .send()
            .await
            .expect("token"),
        http.delete(api(&server, "/x"))
            .bearer_auth("guess")
            .send()
            .await
            .expect("delete"),
    ] {
        assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    }
    assert!(admin_list(&server).await.is_empty(), "nothing was created");
    server.shutdown().await.expect("clean shutdown");
}

/// An uploaded WebM plays at once; viewers see it with its description; deleted while
/// watched, its viewer gets `station_removed` and the list without it, and its stored
/// bytes go.
#[tokio::test]
async fn an_upload_plays_and_its_viewer_is_told_when_it_is_deleted() {
    let dir = data_dir();
    let d = dir.clone();
    let server = server_with(move |c| {
        with_admin(c);
        c.data_dir = d;
    })
    .await;
    let file = webm("news.webm");
    let (status, body) = upload(&server, "news", &file, "News at ten — every day").await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let list = admin_list(&server).await;
    let news = named(&list, "news");
    assert_eq!(news["state"], "on_air");
    assert_eq!(news["source"], "upload");
    assert_eq!(news["file"], "news.webm");
    assert_eq!(news["editable"], true);
    assert_eq!(stored_and_temp(&dir).0.len(), 1, "stored once, by SHA-256");

    let mut ws = connect(&server).await;
    let stations = viewer_list(&mut ws).await;
    assert_eq!(stations.len(), 1);
    assert_eq!(stations[0].description, "News at ten — every day");
    assert_eq!(stations[0].playing, "news.webm");
    watch(&mut ws, "news").await;
    // The dashboard counts the viewer.
    let deadline = Instant::now() + PATIENCE;
    while named(&admin_list(&server).await, "news")["viewers"] != 1 {
        assert!(Instant::now() < deadline, "the viewer was never counted");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }

    // The same name again: refused.
    let (status, body) = upload(&server, "news", &file, "").await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");

    let resp = reqwest::Client::new()
        .delete(api(&server, "/news"))
        .bearer_auth(PASSWORD)
        .send()
        .await
        .expect("delete");
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    match recv_until(&mut ws, |m| {
        matches!(m, ServerMessage::StationRemoved { .. })
    })
    .await
    {
        ServerMessage::StationRemoved {
            station,
            reason,
            message,
        } => {
            assert_eq!((station.as_str(), reason), ("news", StationEnd::Removed));
            assert!(message.contains("removed"), "{message}");
        }
        _ => unreachable!(),
    }
    match recv_until(&mut ws, |m| matches!(m, ServerMessage::Stations { .. })).await {
        ServerMessage::Stations { stations, watching } => {
            assert!(stations.is_empty() && watching.is_none(), "{stations:?}");
        }
        _ => unreachable!(),
    }
    assert!(admin_list(&server).await.is_empty());
    assert!(stored_and_temp(&dir).0.is_empty(), "its bytes are gone");
    server.shutdown().await.expect("clean shutdown");
}

/// An MP4 (H.264/AAC, or MPEG-4 part 2 without libx264) is converted in the
/// background, with progress, into VP8 + Opus with a key frame at least every second.
#[tokio::test]
async fn an_mp4_is_converted_and_goes_on_air() {
    let codec = if has_x264() { "libx264" } else { "mpeg4" };
    let mp4 = media(
        "talk.mp4",
        &[
            "-f",
            "lavfi",
            "-i",
            "testsrc=size=160x120:rate=15:duration=4",
            "-f",
            "lavfi",
            "-i",
            "sine=duration=4",
            "-c:v",
            codec,
            "-g",
            "250",
            "-c:a",
            "aac",
        ],
    );
    let dir = data_dir();
    let d = dir.clone();
    let server = server_with(move |c| {
        with_admin(c);
        c.data_dir = d;
    })
    .await;
    let (status, body) = upload(&server, "talk", &mp4, "A talk").await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    assert_eq!(body["state"], "converting");
    // A bound for a loaded machine; it converts in about a second when idle.
    let deadline = Instant::now() + 9 * PATIENCE;
    let mut seen = Vec::new();
    let talk = loop {
        let list = admin_list(&server).await;
        let talk = named(&list, "talk").clone();
        let state = talk["state"].as_str().unwrap_or_default().to_string();
        if state == "converting" {
            assert!(
                talk["progress"].as_u64().is_some_and(|p| p <= 1000),
                "{talk}"
            );
            seen.push(talk["progress"].as_u64().unwrap_or(0));
        } else {
            break talk;
        }
        assert!(Instant::now() < deadline, "still converting: {talk}");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    assert_eq!(talk["state"], "on_air", "{talk}");
    assert_eq!(talk["description"], "A talk");
    assert!(
        seen.windows(2).all(|w| w[0] <= w[1]),
        "progress only grows: {seen:?}"
    );
    let playing = &talk["playing"];
    assert_eq!(playing["video"], true);
    let duration = playing["duration_ms"].as_u64().expect("duration");
    assert!((3900..4200).contains(&duration), "{duration}");
    // The stored file is VP8 with key frames at most a second apart.
    let (stored, temp) = stored_and_temp(&dir);
    assert_eq!(
        stored.len(),
        1,
        "only the converted file is kept: {stored:?}"
    );
    assert!(temp.is_empty(), "no temporary files left: {temp:?}");
    let out = Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-select_streams",
            "v",
            "-skip_frame",
            "nokey",
        ])
        .args([
            "-show_entries",
            "frame=pts_time:stream=codec_name",
            "-of",
            "csv=p=0",
        ])
        .arg(dir.join("files").join(&stored[0]))
        .output()
        .expect("ffprobe");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("vp8"), "{text}");
    let keys: Vec<f64> = text
        .lines()
        .filter_map(|l| l.trim().trim_end_matches(',').parse().ok())
        .collect();
    assert!(keys.len() >= 4, "key frames: {keys:?}");
    assert!(
        keys.windows(2).all(|w| w[1] - w[0] <= 1.01),
        "a key frame every second: {keys:?}"
    );
    let mut ws = connect(&server).await;
    assert_eq!(viewer_list(&mut ws).await[0].name, "talk");
    server.shutdown().await.expect("clean shutdown");
}

/// Garbage bytes, a file to convert without ffmpeg, and an oversize file are refused
/// with a clear error, leaving no record and no file.
#[tokio::test]
async fn garbage_and_oversize_uploads_leave_nothing() {
    let dir = data_dir();
    let d = dir.clone();
    let server = server_with(move |c| {
        with_admin(c);
        c.data_dir = d;
        c.max_file_mib = 1;
        c.storage_quota_mib = 2;
    })
    .await;
    let garbage = std::env::temp_dir().join(format!("lanmeet-garbage-{}.mp4", std::process::id()));
    let bytes: Vec<u8> = (0..200_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    std::fs::write(&garbage, &bytes).expect("write");
    let (status, body) = upload(&server, "junk", &garbage, "").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    let message = body["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("not a media file") && message.contains("lanmeet-garbage"),
        "{message}"
    );

    // Without ffmpeg: refused, naming the command that converts it.
    let mp4 = media(
        "short.mp4",
        &["-f", "lavfi", "-i", "testsrc=duration=1", "-c:v", "mpeg4"],
    );
    server
        .station_directory
        .use_tools(lanmeet_server::stations::convert::Tools {
            ffmpeg: "/nonexistent/ffmpeg".into(),
            ffprobe: "/nonexistent/ffprobe".into(),
        });
    let (status, body) = upload(&server, "short", &mp4, "").await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{body}");
    let message = body["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("short.mp4")
            && message.contains("ffmpeg is not installed")
            && message.contains("ffmpeg -i short.mp4 -c:v libvpx"),
        "{message}"
    );

    let big = std::env::temp_dir().join(format!("lanmeet-big-{}.webm", std::process::id()));
    std::fs::write(&big, vec![0u8; 1024 * 1024 + 1]).expect("write");
    let (status, body) = upload(&server, "big", &big, "").await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{body}");
    assert!(
        body["message"]
            .as_str()
            .unwrap_or_default()
            .contains("at most 1 MiB"),
        "{body}"
    );

    assert!(admin_list(&server).await.is_empty(), "no record");
    let (stored, temp) = stored_and_temp(&dir);
    assert!(
        stored.is_empty() && temp.is_empty(),
        "no file left: {stored:?} {temp:?}"
    );
    assert_eq!(server.files.used_bytes(), 0, "the quota is whole again");
    server.shutdown().await.expect("clean shutdown");
}

/// Stations from the media folder and live ones are created, described, reordered;
/// a restart brings them back in that order; `--station` ones are listed but fixed.
#[tokio::test]
async fn stations_are_edited_reordered_and_kept_across_a_restart() {
    let dir = data_dir();
    let configured = webm("fixed.webm");
    let spec = format!("fixed={}", configured.display());
    let start = |dir: PathBuf, spec: String| {
        server_with(move |c| {
            with_admin(c);
            c.data_dir = dir;
            c.stations = vec![spec];
        })
    };
    let server = start(dir.clone(), spec.clone()).await;
    std::fs::copy(webm("a.webm"), dir.join("media").join("a.webm")).expect("copy");
    std::fs::copy(webm("b.webm"), dir.join("media").join("b.webm")).expect("copy");
    let http = reqwest::Client::new();
    let post = |body: Value| {
        http.post(api(&server, ""))
            .bearer_auth(PASSWORD)
            .json(&body)
            .send()
    };
    for (name, file) in [("alpha", "a.webm"), ("beta", "b.webm")] {
        let resp = post(serde_json::json!({"name": name, "source": "file", "file": file}))
            .await
            .expect("create");
        assert_eq!(resp.status(), StatusCode::CREATED);
    }
    let resp = post(serde_json::json!({"name": "gamma", "description": "Live", "source": "live"}))
        .await
        .expect("create live");
    assert_eq!(resp.status(), StatusCode::CREATED);
    let resp =
        post(serde_json::json!({"name": "delta", "source": "file", "file": "../etc/passwd"}))
            .await
            .expect("refused");
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);

    let list = admin_list(&server).await;
    assert_eq!(names(&list), ["fixed", "alpha", "beta", "gamma"]);
    assert_eq!(named(&list, "fixed")["source"], "config");
    assert_eq!(named(&list, "fixed")["editable"], false);
    assert_eq!(named(&list, "gamma")["state"], "off_air");
    let token = named(&list, "gamma")["token"]
        .as_str()
        .expect("token")
        .to_string();
    assert_eq!(token.len(), 43, "32 bytes in base64url: {token}");
    assert_eq!(
        server.station_directory.live_token("gamma"),
        Some(token.clone())
    );
    assert_eq!(server.station_directory.live_token("alpha"), None);
    let resp = http
        .post(api(&server, "/gamma/token"))
        .bearer_auth(PASSWORD)
        .send()
        .await
        .expect("token");
    let fresh: Value = resp.json().await.expect("json");
    let fresh = fresh["token"].as_str().expect("token").to_string();
    assert_ne!(fresh, token);

    // Move beta up, gamma up twice (the second stops below the configured station).
    for (name, direction) in [
        ("beta", "up"),
        ("gamma", "up"),
        ("gamma", "up"),
        ("gamma", "up"),
    ] {
        let resp = http
            .post(api(&server, &format!("/{name}/move")))
            .bearer_auth(PASSWORD)
            .json(&serde_json::json!({ "direction": direction }))
            .send()
            .await
            .expect("move");
        assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    }
    let resp = http
        .patch(api(&server, "/alpha"))
        .bearer_auth(PASSWORD)
        .json(&serde_json::json!({"description": "First letters"}))
        .send()
        .await
        .expect("edit");
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    for resp in [
        http.delete(api(&server, "/fixed"))
            .bearer_auth(PASSWORD)
            .send()
            .await
            .expect("delete"),
        http.patch(api(&server, "/fixed"))
            .bearer_auth(PASSWORD)
            .json(&serde_json::json!({"description": "x"}))
            .send()
            .await
            .expect("edit"),
    ] {
        assert_eq!(resp.status(), StatusCode::CONFLICT);
    }
    let order = ["fixed", "gamma", "beta", "alpha"];
    assert_eq!(names(&admin_list(&server).await), order);
    let mut ws = connect(&server).await;
    let listed = viewer_list(&mut ws).await;
    let viewers: Vec<(&str, bool, bool)> = listed
        .iter()
        .map(|s| (s.name.as_str(), s.live, s.off_air))
        .collect();
    assert_eq!(
        viewers,
        [
            ("fixed", false, false),
            ("gamma", true, true),
            ("beta", false, false),
            ("alpha", false, false)
        ],
        "a live station without a broadcaster is listed off air"
    );
    drop(ws);
    server.shutdown().await.expect("clean shutdown");

    let server = start(dir.clone(), spec).await;
    let list = admin_list(&server).await;
    assert_eq!(names(&list), order);
    assert_eq!(named(&list, "alpha")["description"], "First letters");
    assert_eq!(named(&list, "alpha")["state"], "on_air");
    assert_eq!(named(&list, "gamma")["token"], fresh.as_str());
    assert_eq!(server.station_directory.live_token("gamma"), Some(fresh));
    server.shutdown().await.expect("clean shutdown");
}

/// A station's file removed from the disk takes it off air (its viewer is told, the
/// dashboard says why), the other station plays on, and the file's return brings it
/// back.
#[tokio::test]
async fn a_file_gone_from_disk_takes_only_its_station_off_air() {
    let dir = data_dir();
    let d = dir.clone();
    let server = server_with(move |c| {
        with_admin(c);
        c.data_dir = d;
    })
    .await;
    let media_dir = dir.join("media");
    std::fs::copy(webm("c.webm"), media_dir.join("c.webm")).expect("copy");
    std::fs::copy(webm("d.webm"), media_dir.join("d.webm")).expect("copy");
    let http = reqwest::Client::new();
    for (name, file) in [("one", "c.webm"), ("two", "d.webm")] {
        let resp = http
            .post(api(&server, ""))
            .bearer_auth(PASSWORD)
            .json(&serde_json::json!({"name": name, "source": "file", "file": file}))
            .send()
            .await
            .expect("create");
        assert_eq!(resp.status(), StatusCode::CREATED);
    }
    let mut ws = connect(&server).await;
    watch(&mut ws, "one").await;
    std::fs::remove_file(media_dir.join("c.webm")).expect("remove");
    match recv_until(&mut ws, |m| {
        matches!(m, ServerMessage::StationRemoved { .. })
    })
    .await
    {
        ServerMessage::StationRemoved {
            station,
            reason,
            message,
        } => {
            assert_eq!((station.as_str(), reason), ("one", StationEnd::OffAir));
            assert!(message.contains("off air"), "{message}");
        }
        _ => unreachable!(),
    }
    let list = admin_list(&server).await;
    assert_eq!(named(&list, "one")["state"], "off_air");
    let reason = named(&list, "one")["reason"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(
        reason.contains("gone from the disk") && reason.contains("c.webm"),
        "{reason}"
    );
    assert_eq!(named(&list, "two")["state"], "on_air");
    let names: Vec<String> = viewer_list(&mut ws)
        .await
        .into_iter()
        .map(|s| s.name)
        .collect();
    assert_eq!(names, ["two"]);

    std::fs::copy(webm("c.webm"), media_dir.join("c.webm")).expect("copy back");
    let deadline = Instant::now() + PATIENCE;
    while named(&admin_list(&server).await, "one")["state"] != "on_air" {
        assert!(Instant::now() < deadline, "never back on air");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    watch(&mut ws, "one").await;
    server.shutdown().await.expect("clean shutdown");
}
