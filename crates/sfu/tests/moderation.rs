//! Scenario: a moderator's mute is enforced by the SFU, not asked of the client. A
//! participant whose microphone is blocked (`Sfu::set_blocked`) keeps sending, yet its
//! audio stops reaching every subscriber within one packet time (20 ms) and comes back
//! as soon as the block is lifted; a blocked camera resumes with a keyframe. A viewer
//! (`Sfu::set_may_publish(false)`) gets its publish offer refused and publishes nothing.

mod common;

use std::time::{Duration, Instant};

use common::{KeyframePolicy, World};
use lanmeet_proto::{ErrorCode, ParticipantId, ServerMessage, TrackKind, TrackSource};

/// One audio packet's time: the harness (like browsers) sends audio every 20 ms.
const PACKET_TIME: Duration = Duration::from_millis(20);

/// When `subscriber` received `owner`'s frames of `kind`.
fn arrivals(
    world: &World,
    subscriber: &str,
    owner: ParticipantId,
    kind: TrackKind,
) -> Vec<Instant> {
    world
        .client(subscriber)
        .received
        .iter()
        .filter(|f| f.track_owner == Some(owner) && f.kind == Some(kind))
        .map(|f| f.at)
        .collect()
}

#[test]
fn a_muted_microphone_stops_reaching_everyone_within_one_packet_and_resumes() {
    let mut world = World::new(21);
    for name in ["grace", "bob", "carol"] {
        world.join("lab", name);
    }
    world.publish("grace", KeyframePolicy::Every(30));
    world.run_for(Duration::from_secs(3));
    let grace = world.id("grace");
    for subscriber in ["bob", "carol"] {
        let heard = arrivals(&world, subscriber, grace, TrackKind::Audio).len();
        assert!(
            heard > 50,
            "{subscriber} hears Grace before the mute: {heard}"
        );
    }

    world.set_blocked("grace", TrackSource::Microphone, true);
    let muted_at = world.now();
    world.run_for(Duration::from_secs(2));
    for subscriber in ["bob", "carol"] {
        let late: Vec<Duration> = arrivals(&world, subscriber, grace, TrackKind::Audio)
            .into_iter()
            .filter(|at| *at > muted_at)
            .map(|at| at - muted_at)
            .collect();
        assert!(
            late.iter().all(|d| *d <= PACKET_TIME),
            "{subscriber} got Grace's audio {late:?} after the mute"
        );
        let video = arrivals(&world, subscriber, grace, TrackKind::Video)
            .into_iter()
            .filter(|at| *at > muted_at + PACKET_TIME)
            .count();
        assert!(
            video > 20,
            "{subscriber} still sees Grace's camera: {video}"
        );
    }
    assert!(
        world
            .client("grace")
            .source
            .as_ref()
            .is_some_and(|s| s.audio_frames > 200),
        "Grace's browser kept sending all along"
    );

    world.set_blocked("grace", TrackSource::Microphone, false);
    let unmuted_at = world.now();
    world.run_for(Duration::from_secs(1));
    for subscriber in ["bob", "carol"] {
        let back: Vec<Instant> = arrivals(&world, subscriber, grace, TrackKind::Audio)
            .into_iter()
            .filter(|at| *at > unmuted_at)
            .collect();
        assert!(
            back.len() > 30,
            "{subscriber} hears Grace again: {}",
            back.len()
        );
        let first = back[0] - unmuted_at;
        assert!(
            first <= 2 * PACKET_TIME,
            "{subscriber}: audio back after {first:?}"
        );
    }
}

#[test]
fn a_blocked_camera_stops_and_resumes_with_a_keyframe() {
    let mut world = World::new(22);
    for name in ["grace", "bob"] {
        world.join("lab", name);
    }
    // Keyframes only on request: resuming needs the SFU to ask for one.
    world.publish("grace", KeyframePolicy::OnRequest);
    world.run_for(Duration::from_secs(3));
    let grace = world.id("grace");
    assert!(arrivals(&world, "bob", grace, TrackKind::Video).len() > 30);

    world.set_blocked("grace", TrackSource::Camera, true);
    let blocked_at = world.now();
    world.run_for(Duration::from_secs(2));
    let during = arrivals(&world, "bob", grace, TrackKind::Video)
        .into_iter()
        .filter(|at| *at > blocked_at + Duration::from_millis(40))
        .count();
    assert_eq!(during, 0, "no camera frame after the block");
    let audio = arrivals(&world, "bob", grace, TrackKind::Audio)
        .into_iter()
        .filter(|at| *at > blocked_at)
        .count();
    assert!(audio > 50, "her microphone still reaches Bob: {audio}");

    world.set_blocked("grace", TrackSource::Camera, false);
    let allowed_at = world.now();
    world.run_for(Duration::from_secs(1));
    let after: Vec<Instant> = arrivals(&world, "bob", grace, TrackKind::Video)
        .into_iter()
        .filter(|at| *at > allowed_at)
        .collect();
    assert!(
        after.len() > 10,
        "the camera is back: {} frames",
        after.len()
    );
    assert!(
        after[0] - allowed_at < Duration::from_millis(300),
        "the first frame came {:?} after the block was lifted",
        after[0] - allowed_at
    );
}

#[test]
fn a_viewers_publish_offer_is_refused_and_nothing_it_sends_is_forwarded() {
    let mut world = World::new(23);
    for name in ["vera", "bob"] {
        world.join("lab", name);
    }
    world.set_may_publish("vera", false);
    world.publish("vera", KeyframePolicy::Every(30));
    world.run_for(Duration::from_secs(2));
    let refused: Vec<&String> = world
        .client("vera")
        .other_signals
        .iter()
        .filter_map(|m| match m {
            ServerMessage::Error {
                code: ErrorCode::Forbidden,
                message,
                ..
            } => Some(message),
            _ => None,
        })
        .collect();
    assert_eq!(refused.len(), 1, "{:?}", world.client("vera").other_signals);
    let vera = world.id("vera");
    assert!(
        !world
            .client("bob")
            .tracks
            .iter()
            .any(|t| t.participant == vera),
        "nothing of the viewer is offered"
    );
    assert!(world
        .client("bob")
        .received
        .iter()
        .all(|f| f.track_owner != Some(vera)));

    // A participant who published and is then made a viewer goes silent at once.
    world.publish("bob", KeyframePolicy::Every(30));
    world.run_for(Duration::from_secs(2));
    let bob = world.id("bob");
    assert!(arrivals(&world, "vera", bob, TrackKind::Audio).len() > 30);
    world.set_may_publish("bob", false);
    let demoted_at = world.now();
    world.run_for(Duration::from_secs(1));
    let late = world
        .client("vera")
        .received
        .iter()
        .filter(|f| f.track_owner == Some(bob) && f.at > demoted_at + PACKET_TIME)
        .count();
    assert_eq!(late, 0, "nothing of Bob after he became a viewer");
}
