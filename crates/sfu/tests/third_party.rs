//! What a client written from docs/PROTOCOL.md alone may send wrong in a publish offer,
//! and the clear, short errors it gets: SDP that does not parse (no parser dump in the
//! message), a `sendrecv` section (a publish connection only sends), and a `tracks`
//! entry naming a section the offer does not have. None of them builds a connection.
//! And a subscriber that decodes only H.264 next to a VP8 publisher: it is sent nothing
//! it cannot decode, and is told why (`video_state` paused `codec`).

mod common;

use std::time::Duration;

use common::{KeyframePolicy, World};
use lanmeet_proto::{
    ErrorCode, MediaSignal, PauseReason, PublishedTrack, ServerMessage, TrackKind, TrackSource,
};

/// The `bad_sdp` errors `name` got.
fn outcome(world: &World, name: &str) -> Vec<String> {
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

fn declared(mids: &[String]) -> Vec<PublishedTrack> {
    mids.iter()
        .zip([TrackSource::Microphone, TrackSource::Camera])
        .map(|(mid, source)| PublishedTrack {
            mid: mid.clone(),
            source,
        })
        .collect()
}

#[test]
fn unparsable_sdp_gets_a_short_message_without_the_parser_dump() {
    let mut world = World::new(1);
    world.join("r", "ann");
    let garbage = format!(
        "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\nm=video {}\r\n",
        "x".repeat(3000)
    );
    world.send_signal(
        "ann",
        MediaSignal::PublishOffer {
            sdp: garbage,
            tracks: Vec::new(),
        },
    );
    let errors = outcome(&world, "ann");
    assert_eq!(
        errors,
        vec!["The publish offer is not valid SDP".to_string()]
    );
}

#[test]
fn a_sendrecv_publish_offer_is_refused() {
    let mut world = World::new(2);
    world.join("r", "ann");
    let (sdp, mids) = world.make_publish_offer("ann");
    let sendrecv = sdp.replace("a=sendonly", "a=sendrecv");
    assert_ne!(sendrecv, sdp);
    world.send_signal(
        "ann",
        MediaSignal::PublishOffer {
            sdp: sendrecv,
            tracks: declared(&mids),
        },
    );
    let errors = outcome(&world, "ann");
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(
        errors[0].contains(&format!(
            "Section {} of the publish offer is sendrecv",
            mids[0]
        )),
        "{errors:?}"
    );
}

#[test]
fn a_tracks_entry_naming_an_absent_mid_is_refused() {
    let mut world = World::new(3);
    world.join("r", "ann");
    let (sdp, mids) = world.make_publish_offer("ann");
    let mut tracks = declared(&mids);
    tracks[1].mid = "no-such-mid".into();
    world.send_signal("ann", MediaSignal::PublishOffer { sdp, tracks });
    let errors = outcome(&world, "ann");
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(errors[0].contains("\"no-such-mid\""), "{errors:?}");
    assert!(errors[0].len() < 300, "{errors:?}");

    // The same offer with the right tracks is answered.
    let (sdp, mids) = world.make_publish_offer("ann");
    world.send_signal(
        "ann",
        MediaSignal::PublishOffer {
            sdp,
            tracks: declared(&mids),
        },
    );
    assert_eq!(outcome(&world, "ann"), errors, "no new error");
}

/// Frames of `kind` from `publisher` that `subscriber` received.
fn frames_from(world: &World, subscriber: &str, publisher: &str, kind: TrackKind) -> usize {
    let from = world.id(publisher);
    world
        .client(subscriber)
        .received
        .iter()
        .filter(|f| f.track_owner == Some(from) && f.kind == Some(kind) && f.intact)
        .count()
}

#[test]
fn an_h264_only_subscriber_gets_no_vp8_and_is_told_why() {
    let mut world = World::new(4);
    world.join_h264_only("r", "hal");
    world.join("r", "bob");
    world.join("r", "ann");
    // Ann's camera is VP8, as every browser sends it.
    world.publish("ann", KeyframePolicy::Every(30));
    world.run_for(Duration::from_secs(3));

    let ann = world.id("ann");
    assert!(
        frames_from(&world, "bob", "ann", TrackKind::Video) > 20,
        "Bob decodes Ann's VP8"
    );
    assert!(
        frames_from(&world, "hal", "ann", TrackKind::Audio) > 20,
        "Hal hears Ann"
    );
    assert_eq!(
        frames_from(&world, "hal", "ann", TrackKind::Video),
        0,
        "nothing in a codec Hal's answer did not accept"
    );
    let states: Vec<_> = world
        .client("hal")
        .video_states
        .iter()
        .filter(|s| s.1 == ann)
        .map(|s| (s.2, s.3))
        .collect();
    assert_eq!(
        states,
        vec![(None, Some(PauseReason::Codec))],
        "Hal is told once why Ann's video does not come"
    );
    // Bob is never told that.
    assert!(world
        .client("bob")
        .video_states
        .iter()
        .all(|s| s.3 != Some(PauseReason::Codec)));
}
