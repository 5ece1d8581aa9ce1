//! Scenarios: stations, files played on a clock as publishers without a connection
//! (docs/stations.md). The media is made by Debian's `ffmpeg` for each run (the test
//! command installs it): a 4 s WebM with 10 fps VP8 and one key frame per pass, and an
//! Ogg Opus file.

mod common;

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::client::digest;
use common::World;
use lanmeet_proto::TrackKind;
use lanmeet_sfu::{ParticipantId, StationMedia};

const STATION: ParticipantId = ParticipantId(900);
const FILE_SECONDS: u32 = 4;
const FPS: u32 = 10;

/// Makes a media file with ffmpeg (`args` between the inputs and the output), once per
/// name and process.
fn make(name: &str, args: &[&str]) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("lanmeet-stations-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let out = dir.join(name);
    if !out.exists() {
        // Made under a name of its own and renamed, as scenarios run in parallel.
        let partial =
            dir.join(format!("{:?}-{name}", std::thread::current().id()).replace(['(', ')'], ""));
        let status = Command::new("ffmpeg")
            .args(["-hide_banner", "-loglevel", "error", "-y"])
            .args(args)
            .arg(&partial)
            .status()
            .expect("ffmpeg is needed for these scenarios (apt-get install ffmpeg)");
        assert!(status.success(), "ffmpeg failed making {name}");
        std::fs::rename(&partial, &out).expect("rename");
    }
    out
}

/// 4 s of 10 fps VP8 (a key frame only at the start) and Opus (noise: no two packets
/// alike, so each received frame names its place in the file).
fn webm() -> Arc<StationMedia> {
    clip("clip.webm", "testsrc", "color=pink:amplitude=0.3:seed=7")
}

/// Like [`webm`], another picture and other noise: a second station.
fn other_webm() -> Arc<StationMedia> {
    clip(
        "second.webm",
        "testsrc2",
        "color=white:amplitude=0.2:seed=11",
    )
}

/// A station file `name` of `FILE_SECONDS`: the lavfi `picture` source as 160x120 VP8
/// at `FPS` with one key frame, and `anoisesrc` with `noise` options as Opus.
fn clip(name: &str, picture: &str, noise: &str) -> Arc<StationMedia> {
    let d = FILE_SECONDS.to_string();
    let path = make(
        name,
        &[
            "-f",
            "lavfi",
            "-i",
            &format!("{picture}=size=160x120:rate={FPS}:duration={d}"),
            "-f",
            "lavfi",
            "-i",
            &format!("anoisesrc=duration={d}:{noise}"),
            "-c:v",
            "libvpx",
            "-g",
            "1000",
            "-b:v",
            "150k",
            "-c:a",
            "libopus",
            "-b:a",
            "32k",
        ],
    );
    read(path)
}

fn read(path: PathBuf) -> Arc<StationMedia> {
    let file = std::fs::File::open(&path).expect("made");
    Arc::new(StationMedia::read(std::io::BufReader::new(file)).expect("a playable file"))
}

/// Where each frame of a track is in the file, by the hash of its bytes.
fn index(media: &StationMedia, video: bool) -> HashMap<u64, (usize, u64)> {
    let t = if video {
        media.video.as_ref()
    } else {
        media.audio.as_ref()
    };
    let frames = &t.expect("track").frames;
    let idx: HashMap<u64, (usize, u64)> = frames
        .iter()
        .enumerate()
        .map(|(i, f)| (digest(&f.data), (i, f.ticks)))
        .collect();
    assert_eq!(idx.len(), frames.len(), "two frames of the file are alike");
    idx
}

/// A received frame placed in the file: its pass and frame index, and when the
/// station's clock made it due.
struct Placed {
    at: Instant,
    due: Instant,
    index: usize,
    rtp_time: u64,
    contiguous: bool,
}

/// `name`'s frames of one kind, each placed in the file. The pass is worked out from
/// the arrival time (a frame arrives within a pass's length of being due).
fn placed(
    world: &World,
    name: &str,
    media: &StationMedia,
    kind: TrackKind,
    start: Instant,
) -> Vec<Placed> {
    let video = kind == TrackKind::Video;
    let idx = index(media, video);
    let rate = if video { 90_000 } else { 48_000 };
    let pass = media.duration;
    world
        .client(name)
        .received
        .iter()
        .filter(|f| f.kind == Some(kind))
        .map(|f| {
            let (i, ticks) = *idx
                .get(&f.digest)
                .expect("every frame received is one of the file's");
            let offset = Duration::from_nanos(ticks * 1_000_000_000 / rate);
            let since = f.at.saturating_duration_since(start);
            // The latest pass in which this frame was due by its arrival.
            let mut n = (since.as_nanos() / pass.as_nanos()) as u32;
            if pass * n + offset > since {
                n = n.saturating_sub(1);
            }
            Placed {
                at: f.at,
                due: start + pass * n + offset,
                index: i,
                rtp_time: f.rtp_time,
                contiguous: f.contiguous,
            }
        })
        .collect()
}

#[test]
fn packets_come_out_paced_at_their_timestamps() {
    let media = webm();
    let mut world = World::new(1);
    let start = world.now();
    world.start_station("tv", STATION, media.clone());
    world.join("tv", "ann");
    world.run_for(Duration::from_millis(3500));

    for kind in [TrackKind::Video, TrackKind::Audio] {
        let frames = placed(&world, "ann", &media, kind, start);
        // The first frames may be the catch-up from the key frame; from 0.5 s on every
        // frame must come when the clock reaches it, not in a burst before or after.
        let live: Vec<&Placed> = frames
            .iter()
            .filter(|f| f.due >= start + Duration::from_millis(500))
            .collect();
        let expected = match kind {
            TrackKind::Video => 30,
            TrackKind::Audio => 150,
        };
        assert!(
            live.len() >= expected * 9 / 10,
            "{kind:?}: only {} frames from 0.5 s to 3.5 s",
            live.len()
        );
        for f in &live {
            let late = f.at.saturating_duration_since(f.due);
            assert!(
                f.at >= f.due,
                "{kind:?} frame {} came {:?} before it was due",
                f.index,
                f.due - f.at
            );
            assert!(
                late <= Duration::from_millis(20),
                "{kind:?} frame {} came {late:?} after it was due",
                f.index
            );
        }
    }
}

#[test]
fn the_loop_point_keeps_numbers_and_timestamps_continuous() {
    let media = webm();
    let mut world = World::new(2);
    let start = world.now();
    world.start_station("tv", STATION, media.clone());
    world.join("tv", "ann");
    // Past two loop points.
    world.run_for(media.duration * 2 + Duration::from_secs(1));

    for (kind, rate) in [(TrackKind::Video, 90_000u64), (TrackKind::Audio, 48_000)] {
        let frames = placed(&world, "ann", &media, kind, start);
        let live: Vec<&Placed> = frames
            .iter()
            .filter(|f| f.due >= start + Duration::from_millis(500))
            .collect();
        assert!(
            live.iter().any(|f| f.due >= start + media.duration * 2),
            "{kind:?}: ann saw the second loop"
        );
        let first = live[0];
        for pair in live.windows(2) {
            let (a, b) = (pair[0], pair[1]);
            assert!(
                b.contiguous,
                "{kind:?}: a sequence number gap before frame {} at {:?}",
                b.index,
                b.due - start
            );
            // RTP time follows the station's clock exactly, through the loop point.
            let clock = ((b.due - first.due).as_nanos() as u64 * rate / 1_000_000_000) as i64;
            let rtp = b.rtp_time as i64 - first.rtp_time as i64;
            assert!(
                rtp.abs_diff(clock) <= 1,
                "{kind:?}: frame {} at {:?} has RTP time +{rtp}, clock +{clock}",
                b.index,
                b.due - start
            );
            assert!(
                b.at - a.at <= Duration::from_millis(150),
                "{kind:?}: a {:?} freeze before frame {}",
                b.at - a.at,
                b.index
            );
        }
    }
}

#[test]
fn a_late_viewer_starts_at_once_from_the_last_keyframe() {
    let media = webm();
    let mut world = World::new(3);
    let start = world.now();
    world.start_station("tv", STATION, media.clone());
    world.join("tv", "ann");
    // 1.5 s into the second pass: the next key frame of the file is 2.5 s away.
    world.run_for(media.duration + Duration::from_millis(1500));
    let joined = world.now();
    world.join("tv", "bob");
    world.run_for(Duration::from_secs(2));

    let bob = placed(&world, "bob", &media, TrackKind::Video, start);
    let first = bob.first().expect("bob got video");
    assert_eq!(first.index, 0, "bob's first frame is the file's key frame");
    assert!(
        first.at - joined < Duration::from_millis(300),
        "bob waited {:?} for a picture",
        first.at - joined
    );
    // The catch-up (the key frame and the frames since) takes no playout time: bob's
    // decoder is at the current frame as soon as it has them.
    let current = bob.iter().find(|f| f.due >= joined).expect("live frames");
    assert!(
        current.at - joined < Duration::from_millis(400),
        "bob reached the present after {:?}",
        current.at - joined
    );
    let catch_up: Vec<&Placed> = bob.iter().filter(|f| f.due < joined).collect();
    assert!(
        catch_up.len() >= 10,
        "bob started from the key frame 1.5 s back: {} frames",
        catch_up.len()
    );
    let last_catch_up = catch_up.last().expect("some");
    assert!(
        last_catch_up.rtp_time - first.rtp_time <= 20,
        "the catch-up spans {} ticks",
        last_catch_up.rtp_time - first.rtp_time
    );
    assert_eq!(
        current.rtp_time - last_catch_up.rtp_time,
        9000,
        "then one frame interval to the live frame"
    );
    // From then on ann and bob see the same frames at the same moments.
    let ann = placed(&world, "ann", &media, TrackKind::Video, start);
    let mut compared = 0;
    for b in bob
        .iter()
        .filter(|f| f.due >= joined + Duration::from_millis(300))
    {
        let a = ann.iter().find(|a| a.due == b.due).expect("ann saw it too");
        assert!(a.at.max(b.at) - a.at.min(b.at) <= Duration::from_millis(20));
        compared += 1;
    }
    assert!(compared >= 15, "compared {compared} frames");
    assert!(bob.iter().all(|f| f.at >= first.at));
    assert!(
        bob.iter().skip(1).all(|f| f.contiguous),
        "bob's stream has no gaps"
    );
}

#[test]
fn nothing_is_produced_without_viewers_and_the_first_starts_at_the_clock() {
    let media = webm();
    let mut world = World::new(4);
    let start = world.now();
    world.start_station("tv", STATION, media.clone());
    world.run_for(Duration::from_secs(5));
    let status = world
        .sfu()
        .station_status(world.now(), STATION)
        .expect("a station");
    assert_eq!(status.packets, 0, "nobody watches: nothing packetized");
    assert!(!status.running);
    assert_eq!(
        status.position.as_nanos(),
        Duration::from_secs(5).as_nanos() % media.duration.as_nanos(),
        "the clock went on all the same"
    );
    let forwarded = world.sfu().stats().forwarded;
    assert_eq!(forwarded.total().packets, 0);

    let joined = world.now();
    world.join("tv", "ann");
    world.run_for(Duration::from_secs(1));
    let ann = placed(&world, "ann", &media, TrackKind::Video, start);
    let first = ann.first().expect("ann got video");
    assert_eq!(first.index, 0, "ann starts on the key frame");
    assert!(first.at - joined < Duration::from_millis(300));
    // The frame due when she joined (1 s into the second pass) reaches her at once.
    let current = ann.iter().find(|f| f.due >= joined).expect("live frames");
    assert_eq!(current.index, 10, "ann picks up where the clock is");
    assert!(current.at - joined < Duration::from_millis(400));

    world.leave("ann");
    world.run_for(Duration::from_millis(200));
    let after_leave = world
        .sfu()
        .station_status(world.now(), STATION)
        .expect("a station")
        .packets;
    assert!(after_leave > 0);
    world.run_for(Duration::from_secs(3));
    let status = world
        .sfu()
        .station_status(world.now(), STATION)
        .expect("a station");
    assert_eq!(
        status.packets, after_leave,
        "the last viewer left: nothing more packetized"
    );
    assert!(!status.running);
}

#[test]
fn an_ogg_opus_station_plays_its_packets_in_time() {
    let path = make(
        "radio.ogg",
        &[
            "-f",
            "lavfi",
            "-i",
            "anoisesrc=duration=2:color=pink:amplitude=0.3:seed=9",
            "-c:a",
            "libopus",
            "-b:a",
            "32k",
        ],
    );
    let media = read(path);
    assert!(media.video.is_none());
    let mut world = World::new(5);
    let start = world.now();
    world.start_station("radio", STATION, media.clone());
    world.join("radio", "ann");
    world.run_for(Duration::from_millis(4500));
    let frames = placed(&world, "ann", &media, TrackKind::Audio, start);
    let live: Vec<&Placed> = frames
        .iter()
        .filter(|f| f.due >= start + Duration::from_millis(500))
        .collect();
    assert!(live.len() >= 190, "{} audio frames in 4 s", live.len());
    for f in &live {
        assert!(
            f.at >= f.due && f.at - f.due <= Duration::from_millis(20),
            "frame {} due {:?} came {:?}",
            f.index,
            f.due - start,
            f.at - start
        );
    }
    assert!(live.iter().skip(1).all(|f| f.contiguous));
}

#[test]
fn a_viewer_switches_stations_at_once_without_a_new_negotiation() {
    let (one, two) = (webm(), other_webm());
    let other = ParticipantId(901);
    let mut world = World::new(6);
    world.start_station("one", STATION, one.clone());
    world.start_station("two", other, two.clone());
    world.join("one", "ann");
    world.join("two", "bob"); // keeps station two running, so it is mid-pass
    world.run_for(Duration::from_millis(2500));
    let offers = world.client("ann").offers.len();
    let connections = world.client("ann").new_subscribe_connections;
    let before = world.client("ann").received.len();
    assert!(before > 20, "ann watched station one");

    let switched_at = world.now();
    assert!(
        world.switch_station("ann", other),
        "same tracks and codecs: switched in place"
    );
    world.run_for(Duration::from_millis(1500));

    let ann = world.client("ann");
    assert_eq!(ann.offers.len(), offers, "no new subscribe offer");
    assert_eq!(ann.new_subscribe_connections, connections);
    let after = &ann.received[before..];
    for (video, media_one, media_two) in [(true, &one, &two), (false, &one, &two)] {
        let (idx_one, idx_two) = (index(media_one, video), index(media_two, video));
        let kind = if video {
            TrackKind::Video
        } else {
            TrackKind::Audio
        };
        let frames: Vec<_> = after.iter().filter(|f| f.kind == Some(kind)).collect();
        let first_two = frames
            .iter()
            .position(|f| idx_two.contains_key(&f.digest))
            .expect("station two's frames reach ann");
        let first = frames[first_two];
        assert!(
            first.at - switched_at < Duration::from_millis(300),
            "{kind:?}: station two after {:?}",
            first.at - switched_at
        );
        if video {
            assert_eq!(
                idx_two[&first.digest].0, 0,
                "video starts on station two's key frame"
            );
        }
        assert!(
            frames[first_two..]
                .iter()
                .all(|f| idx_two.contains_key(&f.digest)),
            "{kind:?}: nothing of station one after the switch"
        );
        assert!(frames[..first_two]
            .iter()
            .all(|f| idx_one.contains_key(&f.digest)));
        assert!(
            frames.iter().all(|f| f.contiguous),
            "{kind:?}: one gap-free stream across the switch"
        );
        assert!(
            frames.len() > if video { 12 } else { 60 },
            "{kind:?}: {} frames after the switch",
            frames.len()
        );
    }
    // Station one lost its only viewer: it stops.
    let status = world
        .sfu()
        .station_status(world.now(), STATION)
        .expect("a station");
    assert!(!status.running);
    assert_eq!(
        world
            .sfu()
            .station_status(world.now(), other)
            .expect("a station")
            .viewers,
        2
    );
}

#[test]
fn a_viewers_keyframe_request_restarts_it_from_the_cache() {
    let media = webm();
    let mut world = World::new(7);
    let start = world.now();
    world.start_station("tv", STATION, media.clone());
    world.join("tv", "ann");
    world.join("tv", "bob");
    world.run_for(Duration::from_millis(2500));
    let before = world.client("ann").received.len();
    let asked = world.now();
    // Ann's decoder lost its way (a loss it could not repair): it asks for a key frame.
    // The file has none until the next pass, so the station resends its cache.
    world.request_keyframe_of("ann", STATION);
    world.run_for(Duration::from_millis(1000));

    let ann = placed(&world, "ann", &media, TrackKind::Video, start);
    let again: Vec<&Placed> = ann[..].iter().filter(|f| f.at >= asked).collect();
    let key = again
        .iter()
        .find(|f| f.index == 0)
        .expect("ann got the key frame again");
    assert!(
        key.at - asked < Duration::from_millis(200),
        "after {:?}",
        key.at - asked
    );
    assert!(
        again.iter().all(|f| f.contiguous),
        "the restart is a gap-free segment"
    );
    // Bob, who asked nothing, got no repeat: each of his frames once.
    let bob = placed(&world, "bob", &media, TrackKind::Video, start);
    let mut seen = std::collections::HashSet::new();
    assert!(
        bob.iter().all(|f| seen.insert(f.due)),
        "bob got a frame twice"
    );
    assert!(world.client("ann").received.len() > before);
}

#[test]
fn a_stopped_station_leaves_its_viewers_with_nothing_half_open() {
    let media = webm();
    let mut world = World::new(8);
    world.start_station("tv", STATION, media);
    world.join("tv", "ann");
    world.run_for(Duration::from_secs(1));
    let offers = world.client("ann").offers.len();
    assert!(world.client("ann").received.len() > 10);

    world.stop_station(STATION);
    world.run_for(Duration::from_millis(100));
    let stopped_at = world.now();
    world.run_for(Duration::from_secs(1));
    let ann = world.client("ann");
    assert!(
        ann.offers.len() > offers,
        "a subscribe offer stops the station's tracks"
    );
    assert!(
        ann.tracks.iter().all(|t| t.participant != STATION),
        "no track of the station is left: {:?}",
        ann.tracks
    );
    assert!(
        ann.received.iter().all(|f| f.at <= stopped_at),
        "nothing arrives after the stop"
    );
    assert!(world.sfu().station_status(world.now(), STATION).is_none());
}
