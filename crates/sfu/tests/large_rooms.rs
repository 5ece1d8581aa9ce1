//! Scenario: large meetings. The subscribe offer (and the answer) must stay small enough
//! for signaling however many people are in the room and however many came and went
//! before, and a refused answer must never leave a subscriber without media.
//!
//! Sizes are of the JSON signaling messages, as they travel over the WebSocket. The
//! simulated browser is str0m with every codec it knows, so its answers are about the
//! size of Chromium's (docs/large-meetings.md, "Offers that fit", has both).

mod common;

use std::time::Duration;

use common::{KeyframePolicy, World};
use lanmeet_proto::{ErrorCode, ServerMessage, TrackKind, MAX_SDP_MESSAGE_BYTES};

/// The subscribe offer a viewer gets for 50 VP8 publishers (camera and microphone
/// each) stays under this many bytes (measured: 95.2 KB; 236.6 KB before offers were
/// trimmed to the codecs and header extensions in use).
const OFFER_LIMIT_50: usize = 100 * 1024;
/// ... and the answer under this (measured: 76.8 KB; 216.9 KB before).
const ANSWER_LIMIT_50: usize = 84 * 1024;

/// A room of `n` publishers (microphone and camera each, VP8, no frames sent) and a
/// viewer who joins last.
fn room_with_viewer(n: usize) -> World {
    let mut world = World::new(7);
    for i in 0..n {
        let name = format!("p{i}");
        world.join("big", &name);
        world.publish(&name, KeyframePolicy::OnRequest);
        world.stop_media(&name);
    }
    // Tracks count as published once the publish connections are up.
    world.run_for(Duration::from_secs(1));
    world.join("big", "viewer");
    world
}

#[test]
fn the_offer_for_50_vp8_publishers_carries_only_opus_vp8_and_the_extensions_in_use() {
    let world = room_with_viewer(50);
    let viewer = world.client("viewer");
    assert_eq!(
        viewer.sdp_sizes.len(),
        1,
        "one offer for everything published"
    );
    let (offer, answer) = viewer.sdp_sizes[0];
    eprintln!("50 publishers: offer {offer} bytes, answer {answer} bytes");
    assert_eq!(
        viewer.tracks.len(),
        100,
        "every camera and microphone offered"
    );
    assert!(
        offer < OFFER_LIMIT_50,
        "offer {offer} bytes, limit {OFFER_LIMIT_50}"
    );
    assert!(
        answer < ANSWER_LIMIT_50,
        "answer {answer} bytes, limit {ANSWER_LIMIT_50}"
    );
    assert!(answer < MAX_SDP_MESSAGE_BYTES / 2);

    let sdp = &viewer.last_offer;
    let sections: Vec<&str> = sdp.split("\r\nm=").skip(1).collect();
    assert_eq!(sections.len(), 100);
    for section in &sections {
        let rtpmaps: Vec<&str> = section
            .lines()
            .filter_map(|l| l.strip_prefix("a=rtpmap:"))
            .map(|l| l.split_once(' ').map_or(l, |(_, codec)| codec))
            .collect();
        let extmaps = section
            .lines()
            .filter(|l| l.starts_with("a=extmap:"))
            .count();
        if section.starts_with("audio") {
            assert_eq!(rtpmaps, ["opus/48000/2"], "{section}");
        } else {
            assert_eq!(rtpmaps, ["VP8/90000", "rtx/90000"], "{section}");
            assert!(!section.contains("goog-remb"), "{section}");
        }
        // Audio level or video orientation, transport-wide sequence number, absolute
        // send time, MID.
        assert_eq!(extmaps, 4, "{section}");
        assert!(!section.contains("rtp-stream-id"), "{section}");
    }
}

#[test]
fn offers_grow_by_under_a_kilobyte_per_track() {
    let mut sizes = Vec::new();
    for n in [10, 25] {
        let world = room_with_viewer(n);
        let (offer, answer) = world.client("viewer").sdp_sizes[0];
        eprintln!("{n} publishers: offer {offer} bytes, answer {answer} bytes");
        sizes.push((n, offer, answer));
    }
    let (n0, o0, a0) = sizes[0];
    let (n1, o1, a1) = sizes[1];
    let tracks = 2 * (n1 - n0);
    assert!((o1 - o0) / tracks < 1000, "{sizes:?}");
    assert!((a1 - a0) / tracks < 1000, "{sizes:?}");
}

#[test]
fn the_offer_stays_bounded_through_200_joins_and_leaves_and_media_still_flows() {
    let mut world = World::new(8);
    world.join("big", "viewer");
    let live = 5;
    let total = 200;
    let mut largest = 0;
    for i in 0..total {
        let name = format!("p{i}");
        world.join("big", &name);
        world.publish(&name, KeyframePolicy::Every(30));
        if i + live < total {
            // Only the last ones keep sending, so the simulation stays cheap.
            world.stop_media(&name);
        }
        world.run_for(Duration::from_millis(100));
        if i >= live {
            world.leave(&format!("p{}", i - live));
        }
        let viewer = world.client("viewer");
        let (offer, answer) = *viewer.sdp_sizes.last().expect("offers came");
        largest = largest.max(offer.max(answer));
    }
    let viewer = world.client("viewer");
    let (offer, answer) = *viewer.sdp_sizes.last().expect("offers came");
    eprintln!(
        "after {total} joins and leaves: offer {offer} bytes, answer {answer} bytes, \
         largest {largest}, {} offers, {} new connections",
        viewer.sdp_sizes.len(),
        viewer.new_subscribe_connections
    );
    // Five live publishers are 10 tracks of under 1 KB each; stopped sections may add
    // 16 more (and at most a quarter of the live ones in larger rooms) before the
    // connection is replaced.
    assert!(largest < 30_000, "largest offer or answer {largest} bytes");
    assert!(viewer.new_subscribe_connections >= 5);
    assert!(
        viewer.new_subscribe_connections <= total / 5,
        "{} new connections",
        viewer.new_subscribe_connections
    );
    assert_eq!(viewer.tracks.len(), 2 * live);

    // The connection that results carries everyone still there.
    let before = world.now();
    world.run_for(Duration::from_secs(3));
    for i in total - live..total {
        let publisher = world.id(&format!("p{i}"));
        let frames = |kind| {
            world
                .client("viewer")
                .received
                .iter()
                .filter(|f| f.at > before && f.track_owner == Some(publisher))
                .filter(|f| f.kind == Some(kind) && f.intact)
                .count()
        };
        assert!(
            frames(TrackKind::Video) > 30 && frames(TrackKind::Audio) > 50,
            "p{i}: {} video and {} audio frames",
            frames(TrackKind::Video),
            frames(TrackKind::Audio)
        );
    }
}

/// The `bad_sdp` errors `name` got.
fn sdp_errors(world: &World, name: &str) -> Vec<String> {
    world
        .client(name)
        .other_signals
        .iter()
        .filter_map(|m| match m {
            ServerMessage::Error {
                code: ErrorCode::BadSdp,
                message,
                fatal: false,
            } => Some(message.clone()),
            _ => None,
        })
        .collect()
}

/// Intact video frames of `publisher` that `subscriber` received after `since`.
fn video_frames_since(
    world: &World,
    subscriber: &str,
    publisher: &str,
    since: std::time::Instant,
) -> usize {
    let owner = world.id(publisher);
    world
        .client(subscriber)
        .received
        .iter()
        .filter(|f| f.at > since && f.track_owner == Some(owner))
        .filter(|f| f.kind == Some(TrackKind::Video) && f.intact)
        .count()
}

#[test]
fn a_refused_answer_is_explained_and_followed_by_an_offer_for_a_new_connection() {
    let mut world = World::new(9);
    world.join("lab", "alice");
    world.join("lab", "bob");
    // Bob's browser mangles its next answer.
    world.client_mut("bob").refuse_answers = 1;
    world.publish("alice", KeyframePolicy::Every(30));
    world.run_for(Duration::from_millis(500));

    let errors = sdp_errors(&world, "bob");
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(errors[0].contains("new offer"), "{errors:?}");
    let bob = world.client("bob");
    assert_eq!(bob.sdp_sizes.len(), 2, "the refused offer, then a new one");
    assert_eq!(bob.new_subscribe_connections, 1);
    assert_eq!(bob.tracks.len(), 2);

    let since = world.now();
    world.run_for(Duration::from_secs(2));
    assert!(video_frames_since(&world, "bob", "alice", since) > 30);
    let r = world.report("bob", "alice");
    assert!(r.audio.received > 50, "{r:?}");
}

#[test]
fn answers_that_keep_failing_get_two_retries_then_wait_for_a_change() {
    let mut world = World::new(10);
    world.join("lab", "alice");
    world.join("lab", "bob");
    world.client_mut("bob").refuse_answers = 100;
    world.publish("alice", KeyframePolicy::Every(30));
    world.run_for(Duration::from_secs(2));
    // The first offer and two retries, each answered badly; then nothing.
    assert_eq!(world.client("bob").sdp_sizes.len(), 3);
    let errors = sdp_errors(&world, "bob");
    assert_eq!(errors.len(), 3, "{errors:?}");
    assert!(errors[2].contains("Giving up"), "{errors:?}");

    // Bob's browser recovers; the next change in the room brings a working offer.
    world.client_mut("bob").refuse_answers = 0;
    world.join("lab", "carol");
    world.publish("carol", KeyframePolicy::Every(30));
    world.run_for(Duration::from_millis(500));
    let bob = world.client("bob");
    // One new connection (carol's tracks may take one offer or two on it).
    assert!(bob.sdp_sizes.len() >= 4);
    assert_eq!(bob.new_subscribe_connections, 3);
    assert_eq!(sdp_errors(&world, "bob").len(), 3, "no further failure");
    assert_eq!(bob.tracks.len(), 4, "alice's and carol's tracks");
    let since = world.now();
    world.run_for(Duration::from_secs(2));
    for publisher in ["alice", "carol"] {
        let n = video_frames_since(&world, "bob", publisher, since);
        assert!(n > 30, "{publisher}: {n} frames");
    }
}

#[test]
fn an_answer_refused_by_signaling_as_too_large_brings_a_new_offer() {
    let mut world = World::new(11);
    world.join("lab", "alice");
    world.join("lab", "bob");
    world.client_mut("bob").oversized_answers = 1;
    world.publish("alice", KeyframePolicy::Every(30));
    world.run_for(Duration::from_millis(500));
    let bob = world.client("bob");
    assert_eq!(bob.sdp_sizes.len(), 2, "the refused offer, then a new one");
    assert_eq!(bob.new_subscribe_connections, 1);
    // Signaling sends the error (too_large); the SFU adds none of its own.
    assert!(sdp_errors(&world, "bob").is_empty());
    let since = world.now();
    world.run_for(Duration::from_secs(2));
    assert!(video_frames_since(&world, "bob", "alice", since) > 30);
}

#[test]
fn the_first_section_is_made_inactive_not_stopped() {
    // The viewer's first section tags its BUNDLE group. Stopping it would take its mid
    // out of the group, and Chromium then sometimes closed the whole transport; so it
    // stays in the group, inactive.
    let mut world = World::new(10);
    world.join("lab", "viewer");
    for name in ["first", "second", "third"] {
        world.join("lab", name);
        world.publish(name, KeyframePolicy::Every(30));
        world.run_for(Duration::from_millis(300));
    }
    let sections = |w: &World| -> Vec<String> {
        w.client("viewer")
            .last_offer
            .split("m=")
            .skip(1)
            .map(|m| m.to_string())
            .collect()
    };
    let bundle = |w: &World| -> String {
        let offer = &w.client("viewer").last_offer;
        let line = offer.lines().find(|l| l.starts_with("a=group:BUNDLE"));
        line.expect("a BUNDLE group").to_string()
    };
    let first_mid = |m: &str| -> String {
        let line = m.lines().find(|l| l.starts_with("a=mid:"));
        line.expect("a mid")
            .trim_start_matches("a=mid:")
            .to_string()
    };
    let tag = first_mid(&sections(&world)[0]);
    assert!(bundle(&world).starts_with(&format!("a=group:BUNDLE {tag} ")));

    // Someone other than the first leaves: their sections stop (port 0).
    world.leave("second");
    world.run_for(Duration::from_millis(300));
    assert!(sections(&world)
        .iter()
        .any(|m| m.starts_with("audio 0 ") || m.starts_with("video 0 ")));

    // The first leaves: the first section stays, inactive, and still tags the group.
    world.leave("first");
    world.run_for(Duration::from_millis(300));
    let all = sections(&world);
    assert!(
        !all[0].starts_with("audio 0 ") && !all[0].starts_with("video 0 "),
        "{}",
        all[0]
    );
    assert!(all[0].contains("a=inactive"), "{}", all[0]);
    assert!(
        bundle(&world).starts_with(&format!("a=group:BUNDLE {tag} ")),
        "{}",
        bundle(&world)
    );
    let viewer = world.client("viewer");
    assert_eq!(viewer.new_subscribe_connections, 0);
    assert_eq!(viewer.tracks.len(), 2, "{:?}", viewer.tracks);
    let since = world.now();
    world.run_for(Duration::from_secs(2));
    assert!(video_frames_since(&world, "viewer", "third", since) > 30);
}
