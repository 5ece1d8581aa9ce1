//! Scenario: one publisher, five subscribers in its room, and a second room next door.
//! Everyone in the room sees and hears the publisher, intact and in order; nobody next
//! door receives anything from it, and the rooms do not leak into each other.

mod common;

use std::time::Duration;

use common::{KeyframePolicy, World};

const SUBSCRIBERS: [&str; 5] = ["bob", "carol", "dave", "erin", "frank"];

#[test]
fn every_subscriber_gets_every_frame_and_the_next_room_gets_none() {
    let mut world = World::new(1);
    world.join("standup", "alice");
    for name in SUBSCRIBERS {
        world.join("standup", name);
    }
    world.join("retro", "grace");
    world.join("retro", "heidi");

    // A browser's camera: a key frame every two seconds, and whenever asked.
    world.publish("alice", KeyframePolicy::Every(60));
    world.publish("grace", KeyframePolicy::Every(60));
    world.run_for(Duration::from_secs(10));
    world.stop_media("alice");
    world.stop_media("grace");
    // Let the last frames arrive.
    world.run_for(Duration::from_secs(1));

    let alice = world
        .client("alice")
        .source
        .as_ref()
        .expect("alice publishes");
    assert!(
        alice.video.len() >= 290,
        "alice's camera ran for ~10 s at 30 fps, produced {}",
        alice.video.len()
    );
    for name in SUBSCRIBERS {
        let r = world.report(name, "alice");
        assert!(
            r.video.clean(),
            "{name}: alice's video damaged: {:?}",
            r.video
        );
        assert!(
            r.audio.clean(),
            "{name}: alice's audio damaged: {:?}",
            r.audio
        );
        assert!(
            r.video.first_is_keyframe,
            "{name}: first video frame is not a key frame: {:?}",
            r.video
        );
        assert!(
            r.video.ratio() >= 0.95 && r.video.expected >= 250,
            "{name}: too few video frames: {:?}",
            r.video
        );
        assert!(
            r.audio.ratio() >= 0.95 && r.audio.expected >= 400,
            "{name}: too few audio frames: {:?}",
            r.audio
        );
        let joined_to_video = r.video.first_at.expect("some video") - world_start(&world);
        assert!(
            joined_to_video < Duration::from_secs(1),
            "{name}: video took {joined_to_video:?} to appear"
        );
        assert_eq!(
            world.report(name, "grace").total_frames,
            0,
            "{name} received frames from grace, who is in another room"
        );
    }
    // No one is even offered a track from the other room (a tile for a stranger).
    let standup: Vec<_> = SUBSCRIBERS
        .iter()
        .chain(&["alice"])
        .map(|n| world.id(n))
        .collect();
    let retro = [world.id("grace"), world.id("heidi")];
    for name in SUBSCRIBERS.iter().chain(&["alice", "grace", "heidi"]) {
        let c = world.client(name);
        let others: &[_] = if retro.contains(&c.id) {
            &standup
        } else {
            &retro
        };
        for (_, tracks) in &c.offers {
            assert!(
                tracks.iter().all(|t| !others.contains(&t.participant)),
                "{name} was offered a track from another room: {tracks:?}"
            );
        }
    }
    let r = world.report("heidi", "grace");
    assert!(
        r.video.clean() && r.video.ratio() >= 0.95,
        "heidi: {:?}",
        r.video
    );
    assert!(
        r.audio.clean() && r.audio.ratio() >= 0.95,
        "heidi: {:?}",
        r.audio
    );
    assert_eq!(
        world.report("heidi", "alice").total_frames,
        0,
        "heidi received frames from alice, who is in another room"
    );
    // Nobody receives their own media back.
    assert_eq!(world.report("alice", "alice").total_frames, 0);
    assert!(
        world.client("alice").received.is_empty(),
        "alice subscribes to nobody"
    );

    for name in SUBSCRIBERS.iter().chain(&["alice", "grace", "heidi"]) {
        let c = world.client(name);
        assert!(!c.media_failed, "{name}'s media failed");
        assert!(
            c.other_signals.is_empty(),
            "{name} got {:?}",
            c.other_signals
        );
    }
}

/// When the scenario began (all joins happen at the start).
fn world_start(world: &World) -> std::time::Instant {
    world.now() - world.elapsed()
}
