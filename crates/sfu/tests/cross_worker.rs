//! Scenarios: one room's members spread over two media workers (two `Sfu`s, wired by
//! the harness as the server wires its worker threads). The publisher's worker hands
//! each packet once to the other worker, which forwards it to its own subscribers:
//! every subscriber on either worker gets every frame, once and in order; layer choice
//! by view works on the other worker; a subscriber's key frame request there reaches
//! the publisher through the same limiter as a local one; a publisher leaving takes its
//! tracks off the other worker; the last subscriber leaving a worker stops the relay.

mod common;

use std::time::{Duration, Instant};

use common::{KeyframePolicy, World};
use lanmeet_proto::TrackKind;
use lanmeet_sfu::RelayControl;

/// Alice publishes on worker 0 with Bob there too; Carol and Dave are on worker 1.
fn lecture(seed: u64, policy: KeyframePolicy) -> World {
    let mut world = World::with_workers(seed, 2, |_| {});
    world.join_on(0, "hall", "alice");
    world.publish("alice", policy);
    world.join_on(0, "hall", "bob");
    world.join_on(1, "hall", "carol");
    world.join_on(1, "hall", "dave");
    world
}

/// The encoding of the latest video frame `subscriber` received from `publisher`
/// since `since`.
fn latest_layer(world: &World, subscriber: &str, publisher: &str, since: Instant) -> Option<u8> {
    let owner = world.id(publisher);
    world
        .client(subscriber)
        .received
        .iter()
        .rev()
        .take_while(|f| f.at >= since)
        .find(|f| f.kind == Some(TrackKind::Video) && f.track_owner == Some(owner))
        .and_then(|f| f.label)
        .map(|l| l.encoding)
}

/// Runs until `subscriber`'s latest frame of `publisher` is of `layer`; panics after
/// `limit`.
fn wait_for_layer(world: &mut World, subscriber: &str, publisher: &str, layer: u8) {
    let start = world.now();
    let limit = Duration::from_secs(5);
    let reached = world.run_until_cond(limit, |w| {
        latest_layer(w, subscriber, publisher, start) == Some(layer)
    });
    assert!(
        reached,
        "{subscriber} did not get layer {layer} of {publisher} within {limit:?}; it has {:?}",
        latest_layer(world, subscriber, publisher, start)
    );
}

/// Key frame requests delivered from worker 1 to worker 0.
fn relayed_requests(world: &World) -> usize {
    world
        .relay_controls
        .iter()
        .filter(|(from, to, c)| {
            (*from, *to) == (1, 0) && matches!(c, RelayControl::KeyframeRequest { .. })
        })
        .count()
}

#[test]
fn subscribers_on_both_workers_get_every_frame_once_and_in_order() {
    let mut world = lecture(61, KeyframePolicy::Every(60));
    world.run_for(Duration::from_secs(5));

    for sub in ["bob", "carol", "dave"] {
        let r = world.report(sub, "alice");
        assert!(r.video.clean() && r.audio.clean(), "{sub}: {r:?}");
        assert!(r.video.first_is_keyframe, "{sub}: {r:?}");
        assert!(
            r.video.ratio() >= 0.99 && r.audio.ratio() >= 0.99,
            "{sub} lost frames: {r:?}"
        );
        assert!(
            r.video.received > 100 && r.audio.received > 200,
            "{sub} got too little: {r:?}"
        );
    }
    // Each packet crossed once, whatever the number of subscribers on worker 1.
    let (home, other) = (world.sfu_of(0).stats(), world.sfu_of(1).stats());
    assert!(home.relayed_out > 0);
    assert!(
        home.relayed_out <= home.packets_in(),
        "{} packets relayed for {} received",
        home.relayed_out,
        home.packets_in()
    );
    assert_eq!(other.relayed_in, home.relayed_out);
    assert_eq!(other.packets_in(), 0, "nobody publishes on worker 1");
    assert!(
        other.packets_forwarded() >= 2 * other.relayed_in * 9 / 10,
        "worker 1 forwards to both of its subscribers: {other:?}"
    );
    // Worker 1 sends to its own subscribers; worker 0 does not send to them.
    assert_eq!(world.sfu_of(0).participant_count(), 2);
    assert_eq!(world.sfu_of(1).participant_count(), 2);
}

#[test]
fn a_subscriber_on_the_other_worker_gets_the_layer_that_fits_its_tile() {
    let mut world = World::with_workers(62, 2, |_| {});
    world.join_on(0, "hall", "alice");
    world.join_on(1, "hall", "carol");
    world.publish_simulcast("alice", KeyframePolicy::OnRequest);
    world.run_for(Duration::from_secs(2));
    // Before its page reports tiles, a new subscriber gets the top layer (3).
    wait_for_layer(&mut world, "carol", "alice", 3);
    for (tile, layer) in [((320, 180), 1), ((640, 360), 2), ((1280, 720), 3)] {
        world.set_view("carol", &[("alice", tile.0, tile.1)]);
        wait_for_layer(&mut world, "carol", "alice", layer);
    }
    // Intact and in order (a switch may repeat the old layer's last picture as the new
    // layer's key frame, so a picture may come twice).
    let r = world.report("carol", "alice").video;
    assert!(
        r.corrupted == 0 && r.misattributed == 0 && r.out_of_order == 0,
        "{r:?}"
    );
    // The publisher only sends key frames when asked: every switch on worker 1 was a
    // request that crossed back.
    assert!(relayed_requests(&world) >= 3, "{:?}", world.relay_controls);
}

#[test]
fn a_keyframe_request_on_the_other_worker_reaches_the_publisher_once() {
    let mut world = lecture(63, KeyframePolicy::OnRequest);
    world.run_for(Duration::from_secs(3));
    for sub in ["bob", "carol", "dave"] {
        assert!(world.report(sub, "alice").video.received > 60, "{sub}");
    }
    let requests = |world: &World, since: Instant| {
        let source = world.client("alice").source.as_ref().expect("publishing");
        source
            .keyframe_requests
            .iter()
            .filter(|t| **t >= since)
            .count()
    };

    // Carol's browser alone asks: it reaches Alice, from the other worker.
    let t = world.now();
    world.request_keyframe("carol", "alice");
    world.run_for(Duration::from_millis(200));
    assert_eq!(
        requests(&world, t),
        1,
        "carol's request did not reach alice"
    );

    // All three ask at once, on both workers: one key frame request reaches Alice.
    world.run_for(Duration::from_secs(1));
    let t = world.now();
    for sub in ["carol", "dave", "bob"] {
        world.request_keyframe(sub, "alice");
    }
    world.run_for(Duration::from_millis(200));
    assert_eq!(requests(&world, t), 1, "the limiter let several through");
}

#[test]
fn a_publisher_leaving_takes_its_tracks_off_the_other_worker() {
    let mut world = lecture(64, KeyframePolicy::Every(60));
    world.join_on(1, "hall", "erin");
    world.publish("erin", KeyframePolicy::Every(60));
    world.run_for(Duration::from_secs(3));
    let alice = world.id("alice");
    let erin = world.id("erin");
    // Erin publishes on worker 1: Bob, on worker 0, gets her too.
    let r = world.report("bob", "erin");
    assert!(r.video.received > 60 && r.video.clean(), "{r:?}");
    for sub in ["carol", "dave"] {
        let tracks = &world.client(sub).tracks;
        assert_eq!(
            tracks.iter().filter(|t| t.participant == alice).count(),
            2,
            "{sub}: {tracks:?}"
        );
    }

    let left_at = world.now();
    world.leave("alice");
    world.run_for(Duration::from_secs(1));
    for sub in ["carol", "dave"] {
        let c = world.client(sub);
        let (offered_at, tracks) = c.offers.last().expect("offers arrived");
        assert!(*offered_at >= left_at, "{sub} got no new offer");
        assert!(
            tracks.iter().all(|t| t.participant != alice),
            "{sub} still has alice's tracks: {tracks:?}"
        );
        assert!(tracks.iter().any(|t| t.participant == erin), "{tracks:?}");
    }
    // Erin's media goes on to Bob.
    let t = world.now();
    world.run_for(Duration::from_secs(1));
    let got = world
        .client("bob")
        .received
        .iter()
        .filter(|f| f.at >= t && f.track_owner == Some(erin))
        .count();
    assert!(got > 50, "bob got {got} frames of erin after alice left");
}

#[test]
fn the_last_subscriber_leaving_a_worker_stops_the_relay_to_it() {
    let mut world = lecture(65, KeyframePolicy::Every(60));
    world.run_for(Duration::from_secs(2));
    let relayed = |world: &World| world.relay_packets.get(&(0, 1)).copied().unwrap_or(0);

    // Carol leaves; Dave is still on worker 1, so the relay goes on.
    world.leave("carol");
    let before = relayed(&world);
    let t = world.now();
    world.run_for(Duration::from_secs(1));
    assert!(
        relayed(&world) > before,
        "the relay stopped with dave there"
    );
    let dave = world
        .client("dave")
        .received
        .iter()
        .filter(|f| f.at >= t)
        .count();
    assert!(dave > 50, "dave got {dave} frames");

    // Dave, the last one on worker 1, leaves: nothing crosses any more.
    world.leave("dave");
    world.run_for(Duration::from_millis(100));
    let after = relayed(&world);
    world.run_for(Duration::from_secs(2));
    assert_eq!(relayed(&world), after, "still relaying to an empty worker");
    assert_eq!(world.sfu_of(1).room_count(), 0);
    assert_eq!(world.sfu_of(1).participant_count(), 0);
    // Bob, on the publisher's worker, is not touched.
    let r = world.report("bob", "alice");
    assert!(r.video.ratio() >= 0.99 && r.video.clean(), "{r:?}");
}
