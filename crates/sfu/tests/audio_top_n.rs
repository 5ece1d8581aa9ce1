//! Scenario: in a room with more talkers than a subscriber may hear, it gets only the
//! loudest few, and a talker who becomes loud takes the place of a quiet one within a
//! second, with its audio going on without a hole in the sequence numbers.

mod common;

use std::time::{Duration, Instant};

use common::{KeyframePolicy, World};
use lanmeet_proto::{ParticipantId, TrackKind};

/// Audio frames `subscriber` received from `source` after `since`.
fn audio_from(world: &World, subscriber: &str, source: ParticipantId, since: Instant) -> usize {
    world
        .client(subscriber)
        .received
        .iter()
        .filter(|f| f.at >= since && f.kind == Some(TrackKind::Audio))
        .filter(|f| f.track_owner == Some(source))
        .count()
}

#[test]
fn only_the_loudest_are_heard_and_a_new_talker_takes_a_place() {
    let mut world = World::with_config(41, |c| c.audio_top_n = 2);
    let names = ["ann", "ben", "cat", "dan", "eve"];
    for name in names {
        world.join("hall", name);
    }
    let levels = [-20, -30, -60, -70, -127];
    for (name, level) in names.iter().zip(levels) {
        world.publish(name, KeyframePolicy::Every(60));
        world.set_audio_level(name, level);
    }
    world.run_for(Duration::from_secs(3));
    let id = |n: &str| world.id(n);
    let (ann, ben, cat, dan) = (id("ann"), id("ben"), id("cat"), id("dan"));

    // Eve, listening, hears Ann and Ben (50 frames a second each) and not the others.
    let t = world.now();
    world.run_for(Duration::from_secs(2));
    assert!(audio_from(&world, "eve", ann, t) >= 95);
    assert!(audio_from(&world, "eve", ben, t) >= 95);
    assert_eq!(audio_from(&world, "eve", cat, t), 0);
    assert_eq!(audio_from(&world, "eve", dan, t), 0);
    // Ann never hears herself: her two places go to Ben and Cat.
    assert!(audio_from(&world, "ann", ben, t) >= 95);
    assert!(audio_from(&world, "ann", cat, t) >= 95);
    assert_eq!(audio_from(&world, "ann", dan, t), 0);

    // Dan starts talking loudly, Ben goes quiet: within a second Eve hears Dan instead.
    world.set_audio_level("dan", -15);
    world.set_audio_level("ben", -80);
    world.run_for(Duration::from_secs(1));
    let t = world.now();
    world.run_for(Duration::from_secs(2));
    assert!(audio_from(&world, "eve", dan, t) >= 95, "dan is not heard");
    assert_eq!(audio_from(&world, "eve", ben, t), 0, "ben is still heard");
    assert!(audio_from(&world, "eve", ann, t) >= 95);

    // Every frame Eve got from Dan after the switch followed the one before without a
    // gap in sequence numbers: her decoder sees one stream, not loss.
    let dan_frames: Vec<_> = world
        .client("eve")
        .received
        .iter()
        .filter(|f| f.track_owner == Some(dan) && f.kind == Some(TrackKind::Audio))
        .collect();
    assert!(dan_frames.iter().skip(1).all(|f| f.contiguous && f.intact));
}
