//! Scenario: who may send a screen. The SFU takes a screen only from a participant that
//! signaling gave a presenter's seat (`Sfu::set_presenting`), whatever a publish offer's
//! `tracks` labels say: a second video labelled `screen` from someone who never asked
//! (while another participant presents, so beyond `--max-presenters`) is refused, as is
//! a second screen from a presenter; and a screen kept on the connection after its share
//! ended is no longer forwarded.

mod common;

use std::time::Duration;

use common::{payload, KeyframePolicy, World};
use lanmeet_proto::{ErrorCode, ServerMessage, TrackKind, TrackSource};

use TrackSource::{Camera, Microphone, Screen};

/// The screens `subscriber` was offered, by owner.
fn screens_offered(world: &World, subscriber: &str) -> Vec<lanmeet_proto::ParticipantId> {
    world
        .client(subscriber)
        .tracks
        .iter()
        .filter(|t| t.source == Screen)
        .map(|t| t.participant)
        .collect()
}

/// The `wrong_state` refusals `name` got.
fn refusals(world: &World, name: &str) -> Vec<String> {
    world
        .client(name)
        .other_signals
        .iter()
        .filter_map(|m| match m {
            ServerMessage::Error {
                code: ErrorCode::WrongState,
                message,
                ..
            } => Some(message.clone()),
            _ => None,
        })
        .collect()
}

#[test]
fn a_screen_labelled_in_an_offer_without_the_presenters_seat_is_refused() {
    let mut world = World::new(11);
    for name in ["grace", "mallory", "bob"] {
        world.join("lab", name);
    }
    world.publish("bob", KeyframePolicy::Every(60));
    // Grace holds the only presenter's seat and shares her screen.
    world.set_presenting("grace", true);
    world.publish_declared(
        "grace",
        KeyframePolicy::Every(60),
        &[payload::SINGLE],
        1,
        &[Microphone, Camera, Screen],
    );
    world.run_for(Duration::from_secs(2));
    let grace = world.id("grace");
    assert_eq!(screens_offered(&world, "bob"), [grace]);
    assert!(refusals(&world, "grace").is_empty());

    // Mallory never asked for the seat, and labels a second video `screen`.
    world.publish_declared(
        "mallory",
        KeyframePolicy::Every(60),
        &[payload::SINGLE],
        1,
        &[Microphone, Camera, Screen],
    );
    world.run_for(Duration::from_secs(2));
    assert_eq!(
        screens_offered(&world, "bob"),
        [grace],
        "only the presenter's screen reaches the room"
    );
    let refused = refusals(&world, "mallory");
    assert_eq!(refused.len(), 1, "{refused:?}");
    assert!(refused[0].contains("screen_share"), "{refused:?}");
    let mallory = world.id("mallory");
    assert!(
        !world
            .client("bob")
            .tracks
            .iter()
            .any(|t| t.participant == mallory),
        "the refused offer published nothing"
    );

    // A presenter gets one screen, not two.
    world.set_presenting("mallory", true);
    world.publish_declared(
        "mallory",
        KeyframePolicy::Every(60),
        &[payload::SINGLE],
        2,
        &[Microphone, Camera, Screen, Screen],
    );
    world.run_for(Duration::from_secs(1));
    let refused = refusals(&world, "mallory");
    assert_eq!(refused.len(), 2, "{refused:?}");
    assert_eq!(screens_offered(&world, "bob"), [grace]);
}

#[test]
fn a_screen_kept_after_the_share_ended_is_not_forwarded() {
    let mut world = World::new(12);
    for name in ["grace", "bob"] {
        world.join("lab", name);
    }
    // Grace's video section is her screen (the harness sends on it).
    world.set_presenting("grace", true);
    world.publish_declared(
        "grace",
        KeyframePolicy::Every(30),
        &[payload::SINGLE],
        0,
        &[Microphone, Screen],
    );
    world.run_for(Duration::from_secs(3));
    let grace = world.id("grace");
    let video_frames = |world: &World| {
        world
            .client("bob")
            .received
            .iter()
            .filter(|f| f.track_owner == Some(grace) && f.kind == Some(TrackKind::Video))
            .count()
    };
    let shared = video_frames(&world);
    assert!(
        shared > 30,
        "the screen reached Bob while Grace presented: {shared} frames"
    );

    // She gives up the seat but her browser keeps sending on the screen section.
    world.set_presenting("grace", false);
    world.run_for(Duration::from_millis(200));
    let after_stop = video_frames(&world);
    world.run_for(Duration::from_secs(3));
    assert_eq!(
        video_frames(&world),
        after_stop,
        "nothing of the screen is forwarded once the seat is given up"
    );
    let audio = world
        .client("bob")
        .received
        .iter()
        .filter(|f| f.track_owner == Some(grace) && f.kind == Some(TrackKind::Audio))
        .count();
    assert!(
        audio > 100,
        "her microphone still reaches Bob: {audio} frames"
    );

    // Taking the seat again (a new share on the kept section) brings it back.
    world.set_presenting("grace", true);
    world.run_for(Duration::from_secs(3));
    assert!(
        video_frames(&world) > after_stop + 30,
        "the screen is forwarded again"
    );
}
