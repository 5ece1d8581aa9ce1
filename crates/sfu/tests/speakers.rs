//! Scenario: who is speaking. The SFU reads the audio level each browser puts in its
//! audio packets and tells everyone in the room who the active speaker is: the talker,
//! not someone who coughs, and nobody once the talker leaves. Another room is never told.

mod common;

use std::time::{Duration, Instant};

use common::{KeyframePolicy, World};
use lanmeet_proto::ParticipantId;

/// The announcements `name` received after `since`.
fn heard(world: &World, name: &str, since: Instant) -> Vec<Option<ParticipantId>> {
    world
        .client(name)
        .speakers
        .iter()
        .filter(|(at, _)| *at >= since)
        .map(|(_, id)| *id)
        .collect()
}

#[test]
fn the_talker_is_announced_to_the_room_with_hysteresis() {
    let mut world = World::new(21);
    let started = world.now();
    for name in ["alice", "bob", "carol"] {
        world.join("lab", name);
    }
    world.join("other", "dave");
    for name in ["alice", "bob", "carol", "dave"] {
        world.publish(name, KeyframePolicy::Every(90));
        world.set_audio_level(name, -75);
    }
    world.run_for(Duration::from_secs(2));
    for name in ["alice", "bob", "carol"] {
        assert!(heard(&world, name, started).is_empty(), "nobody talks yet");
    }

    // Alice talks: within a second everyone in the room hears it, once.
    let t = world.now();
    world.set_audio_level("alice", -25);
    world.run_for(Duration::from_secs(1));
    let alice = world.id("alice");
    for name in ["alice", "bob", "carol"] {
        assert_eq!(heard(&world, name, t), [Some(alice)], "{name}");
    }

    // Bob coughs for 200 ms while Alice goes on: the highlight stays on Alice.
    let t = world.now();
    world.set_audio_level("bob", -5);
    world.run_for(Duration::from_millis(200));
    world.set_audio_level("bob", -75);
    world.run_for(Duration::from_secs(1));
    assert!(
        heard(&world, "carol", t).is_empty(),
        "a cough moved the speaker"
    );

    // Alice stops, Bob talks: Bob within 1.5 s.
    let t = world.now();
    world.set_audio_level("alice", -75);
    world.set_audio_level("bob", -30);
    world.run_for(Duration::from_millis(1500));
    let bob = world.id("bob");
    for name in ["alice", "bob", "carol"] {
        assert_eq!(heard(&world, name, t), [Some(bob)], "{name}");
    }

    // Bob leaves mid-sentence: the others hear there is no speaker.
    let t = world.now();
    world.leave("bob");
    world.run_for(Duration::from_millis(300));
    for name in ["alice", "carol"] {
        assert_eq!(heard(&world, name, t), [None], "{name}");
    }

    // The other room, with one quiet member, heard nothing all along.
    assert!(world.client("dave").speakers.is_empty());
}
