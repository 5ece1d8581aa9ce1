//! Scenario: a camera that only sends a key frame when asked (after its first one), as
//! a browser's encoder does between its rare periodic key frames. A late joiner must
//! still get a picture at once: the SFU asks the publisher for a key frame, and the
//! late joiner's first frame is that key frame — never an undecodable delta frame.

mod common;

use std::time::Duration;

use common::{KeyframePolicy, Link, Path, World};

#[test]
fn late_subscriber_triggers_a_keyframe_and_starts_on_it() {
    let mut world = World::new(2);
    world.join("lab", "alice");
    // Alice is on a slow link, so her key frame comes a while after the SFU asks: in
    // between, the SFU must hold back her delta frames from a new subscriber.
    let slow = Link {
        loss: 0.0,
        delay: Duration::from_millis(100),
        ..Link::default()
    };
    world.set_link("alice", Path::PublishUp, slow);
    world.set_link("alice", Path::PublishDown, slow);
    world.publish("alice", KeyframePolicy::OnRequest);
    world.run_for(Duration::from_secs(3));

    let sent_before = world
        .client("alice")
        .source
        .as_ref()
        .expect("publishing")
        .video
        .clone();
    assert!(sent_before.len() >= 60, "alice's camera is running");
    assert_eq!(
        sent_before.iter().filter(|f| f.keyframe).count(),
        1,
        "alone in the room, alice sends only her first key frame"
    );

    for (late, after) in [
        ("bob", Duration::from_secs(3)),
        ("carol", Duration::from_secs(4)),
    ] {
        let joined_at = world.now();
        let requests_before = world.sfu().stats().keyframe_requests;
        world.join("lab", late);
        world.run_for(after);

        let source = world.client("alice").source.as_ref().expect("publishing");
        assert!(
            source.keyframe_requests.iter().any(|t| *t >= joined_at),
            "alice was not asked for a key frame when {late} joined"
        );
        assert!(world.sfu().stats().keyframe_requests > requests_before);
        let first_key_after_join = source
            .video
            .iter()
            .find(|f| f.keyframe && f.at >= joined_at)
            .expect("alice answered the request with a key frame");

        let r = world.report(late, "alice");
        assert!(r.video.clean(), "{late}: {:?}", r.video);
        assert!(
            r.video.first_is_keyframe,
            "{late} started on a delta frame: {:?}",
            r.video
        );
        assert_eq!(
            r.video.first,
            Some(first_key_after_join.counter),
            "{late} must start on the key frame made for it"
        );
        let wait = r.video.first_at.expect("some video") - joined_at;
        assert!(
            wait < Duration::from_millis(500),
            "{late} waited {wait:?} for a picture"
        );
        assert!(r.video.ratio() >= 0.95, "{late}: {:?}", r.video);
        // Audio needs no key frame: it starts at once.
        assert!(
            r.audio.clean() && r.audio.ratio() >= 0.95,
            "{late}: {:?}",
            r.audio
        );
        assert!(r.audio.first_at.expect("some audio") - joined_at < Duration::from_millis(500));
    }
}

#[test]
fn subscriber_keyframe_request_reaches_the_publisher() {
    let mut world = World::new(3);
    world.join("lab", "alice");
    world.join("lab", "bob");
    world.publish("alice", KeyframePolicy::OnRequest);
    world.run_for(Duration::from_secs(2));

    let asked_at = world.now();
    world.request_keyframe("bob", "alice");
    world.run_for(Duration::from_millis(500));

    let source = world.client("alice").source.as_ref().expect("publishing");
    assert!(
        source.keyframe_requests.iter().any(|t| *t >= asked_at),
        "bob's PLI was not relayed to alice"
    );
    let key = source
        .video
        .iter()
        .find(|f| f.keyframe && f.at >= asked_at)
        .expect("alice answered with a key frame")
        .counter;
    let got_key = world.client("bob").received.iter().any(|f| {
        f.label
            .is_some_and(|l| l.keyframe && l.counter == key && f.at >= asked_at)
    });
    assert!(got_key, "bob did not receive the key frame he asked for");
}
