//! Scenario: people come and go. When someone leaves, everyone else's subscribe
//! connection is renegotiated without the leaver's tracks and the leaver's media stops
//! reaching them, even if the leaver's browser keeps sending; the others' media keeps
//! flowing through the renegotiation. When the last one leaves, the room is gone.

mod common;

use std::time::Duration;

use common::{KeyframePolicy, World, SERVER_ADDR};

#[test]
fn leaver_disappears_from_everyone_and_the_last_one_out_closes_the_room() {
    let mut world = World::new(20);
    for name in ["alice", "bob", "carol"] {
        world.join("lab", name);
    }
    for name in ["alice", "bob", "carol"] {
        world.publish(name, KeyframePolicy::Every(60));
    }
    world.run_for(Duration::from_secs(3));
    for (sub, publ) in [
        ("alice", "carol"),
        ("bob", "carol"),
        ("alice", "bob"),
        ("bob", "alice"),
    ] {
        let r = world.report(sub, publ);
        assert!(
            r.video.received > 60 && r.audio.received > 100,
            "{sub} from {publ}: {r:?}"
        );
    }
    let carol = world.id("carol");
    for name in ["alice", "bob"] {
        let tracks = &world.client(name).tracks;
        assert_eq!(
            tracks.len(),
            4,
            "{name} sees two people's audio and video: {tracks:?}"
        );
        assert_eq!(tracks.iter().filter(|t| t.participant == carol).count(), 2);
    }

    // Carol closes her laptop lid: signaling notices, her browser does not (it keeps
    // sending).
    let left_at = world.now();
    let dropped_before = world.sfu().stats().datagrams_dropped;
    world.leave("carol");
    assert_eq!(world.sfu().participant_count(), 2);
    assert_eq!(world.sfu().room_count(), 1);
    world.run_for(Duration::from_secs(3));

    for (name, other) in [("alice", "bob"), ("bob", "alice")] {
        let c = world.client(name);
        let (offered_at, tracks) = c.offers.last().expect("offers arrived");
        assert!(
            *offered_at >= left_at,
            "{name} got no new offer after carol left"
        );
        assert!(
            tracks.iter().all(|t| t.participant != carol),
            "{name}'s new track map still lists carol: {tracks:?}"
        );
        assert_eq!(
            tracks.len(),
            2,
            "{name} still sees {other}'s two tracks: {tracks:?}"
        );
        let late: Vec<_> = c
            .received
            .iter()
            .filter(|f| f.at > left_at && f.track_owner == Some(carol))
            .collect();
        assert!(
            late.is_empty(),
            "{name} received carol's frames after she left: {late:?}"
        );
        let from_carol = world.report(name, "carol");
        assert!(
            from_carol.video.clean() && from_carol.audio.clean(),
            "{name}: {from_carol:?}"
        );
        // The renegotiation did not disturb the others' media.
        let r = world.report(name, other);
        assert!(
            r.video.clean() && r.audio.clean(),
            "{name} from {other}: {r:?}"
        );
        assert!(
            r.video.ratio() >= 0.95 && r.audio.ratio() >= 0.95,
            "{name} from {other}: {r:?}"
        );
        assert!(
            world.now() - r.video.last_at.expect("video") < Duration::from_millis(100),
            "{name}'s video of {other} froze"
        );
    }
    // A leave asks no publisher for a keyframe: running subscriptions need none.
    for name in ["alice", "bob"] {
        let source = world.client(name).source.as_ref().expect("publishing");
        assert!(
            source.keyframe_requests.iter().all(|t| *t < left_at),
            "{name} was asked for a keyframe because carol left"
        );
    }
    assert!(
        world.sfu().stats().datagrams_dropped > dropped_before + 100,
        "carol's browser kept sending; the SFU must have dropped it"
    );

    // Dave joins afterwards: he never hears of carol.
    world.join("lab", "dave");
    world.run_for(Duration::from_secs(2));
    let dave = world.client("dave");
    assert!(dave
        .offers
        .iter()
        .all(|(_, t)| t.iter().all(|t| t.participant != carol)));
    assert_eq!(
        dave.tracks.len(),
        4,
        "dave sees alice and bob: {:?}",
        dave.tracks
    );
    for publ in ["alice", "bob"] {
        let r = world.report("dave", publ);
        assert!(
            r.video.clean() && r.video.first_is_keyframe && r.video.received > 40,
            "{r:?}"
        );
    }

    for name in ["alice", "bob", "dave"] {
        world.leave(name);
    }
    assert_eq!(world.sfu().participant_count(), 0);
    assert_eq!(world.sfu().room_count(), 0);
    let server_sent = world.net.sent_from.get(&SERVER_ADDR).copied();
    world.run_for(Duration::from_secs(5));
    assert_eq!(
        world.net.sent_from.get(&SERVER_ADDR).copied(),
        server_sent,
        "an empty SFU keeps sending"
    );
    for name in ["alice", "bob", "carol", "dave"] {
        let c = world.client(name);
        assert!(
            c.other_signals.is_empty(),
            "{name} got {:?}",
            c.other_signals
        );
    }
}
