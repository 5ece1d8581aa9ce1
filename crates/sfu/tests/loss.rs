//! Scenario: a lossy network. With a share of the packets lost on the way to a
//! subscriber, or on the way from the publisher, the video still arrives complete:
//! receivers NACK what is missing and the sender (the SFU towards subscribers, the
//! browser towards the SFU) retransmits it over RTX.

mod common;

use std::time::Duration;

use common::{KeyframePolicy, Leg, Link, Path, World};
use lanmeet_proto::TrackKind;
use lanmeet_sfu::str0m::media::Mid;

/// How long media runs under loss.
const RUN: Duration = Duration::from_secs(20);

/// Packets per RTX SSRC seen by `name`'s connection `leg`, for the RTX stream of the
/// video track `mid` (`received` picks the receive side).
fn rtx_packets(world: &mut World, name: &str, leg: Leg, mid: Mid, received: bool) -> u64 {
    let conn = world.client_mut(name).conn(leg).expect("connected");
    let ssrc = if received {
        conn.rx_rtx_ssrc(mid)
    } else {
        conn.tx_rtx_ssrc(mid)
    }
    .expect("video is negotiated with RTX");
    let counts = if received {
        &conn.wire.rtp_rx
    } else {
        &conn.wire.rtp_tx
    };
    counts.get(&ssrc).copied().unwrap_or(0)
}

/// The mid of `publisher`'s video in `subscriber`'s subscribe connection.
fn video_mid(world: &World, subscriber: &str, publisher: &str) -> Mid {
    let id = world.id(publisher);
    let track = world
        .client(subscriber)
        .tracks
        .iter()
        .find(|t| t.participant == id && t.kind == TrackKind::Video)
        .expect("subscribed to the video");
    Mid::from(track.mid.as_str())
}

#[test]
fn subscriber_downlink_loss_is_repaired_by_the_sfu() {
    let mut world = World::new(10);
    world.join("lab", "alice");
    world.join("lab", "bob");
    world.join("lab", "carol");
    world.publish("alice", KeyframePolicy::Every(300));
    world.run_for(Duration::from_secs(1));

    // Bob's wifi turns bad: one in ten packets the SFU sends him is lost. Carol's is fine.
    world.set_link("bob", Path::SubscribeDown, Link::lossy(0.10));
    let lost_before = world.net.lost;
    world.run_for(RUN);
    world.stop_media("alice");
    world.run_for(Duration::from_secs(2));
    assert!(
        world.net.lost - lost_before > 80,
        "the network lost only {} datagrams",
        world.net.lost - lost_before
    );

    let bob = world.report("bob", "alice");
    assert!(bob.video.clean(), "bob: {:?}", bob.video);
    assert!(
        bob.video.ratio() >= 0.99,
        "bob lost video frames despite retransmission: {:?}",
        bob.video
    );
    let carol = world.report("carol", "alice");
    assert!(
        carol.video.clean() && carol.video.ratio() >= 0.99,
        "carol: {:?}",
        carol.video
    );
    // Audio is not retransmitted (nor is it in browsers): losses stay losses, but what
    // arrives is intact.
    assert!(bob.audio.clean(), "bob: {:?}", bob.audio);
    assert!(bob.audio.ratio() >= 0.8, "bob: {:?}", bob.audio);

    // The repair really happened on the wire, and only where needed.
    let mid = video_mid(&world, "bob", "alice");
    let bob_conn = world.client("bob").subscribe.as_ref().expect("subscribed");
    let nacks = bob_conn.wire.nacks_sent;
    assert!(nacks > 10, "bob sent only {nacks} NACKs");
    let rtx = rtx_packets(&mut world, "bob", Leg::Subscribe, mid, true);
    assert!(rtx > 30, "bob received only {rtx} retransmissions");
    let carol_mid = video_mid(&world, "carol", "alice");
    // Carol lost nothing, so she got no repairs; what arrives on her RTX stream is the
    // bandwidth estimator's probing at the start (old packets resent as probes), which
    // goes on until her estimate covers what her tiles ask for.
    let carol_rtx = rtx_packets_or_zero(&mut world, "carol", carol_mid);
    assert!(
        carol_rtx * 2 < rtx,
        "carol got {carol_rtx} retransmissions without loss (bob: {rtx})"
    );
    // The SFU repaired bob's loss from its own cache: alice was not asked to resend.
    let alice = world.client("alice").publish.as_ref().expect("publishing");
    assert_eq!(alice.wire.nacks_received, 0, "the publisher saw NACKs");
}

/// RTX packets carol received, zero when str0m has not set up an RTX stream at all.
fn rtx_packets_or_zero(world: &mut World, name: &str, mid: Mid) -> u64 {
    let conn = world
        .client_mut(name)
        .conn(Leg::Subscribe)
        .expect("connected");
    match conn.rx_rtx_ssrc(mid) {
        Some(ssrc) => conn.wire.rtp_rx.get(&ssrc).copied().unwrap_or(0),
        None => 0,
    }
}

#[test]
fn publisher_uplink_loss_is_repaired_end_to_end() {
    let mut world = World::new(11);
    world.join("lab", "alice");
    world.join("lab", "bob");
    world.join("lab", "carol");
    world.publish("alice", KeyframePolicy::Every(300));
    world.run_for(Duration::from_secs(1));

    // Alice's uplink loses 5%: every subscriber misses the same packets unless the SFU
    // gets them retransmitted by alice's browser and forwards the repair.
    world.set_link("alice", Path::PublishUp, Link::lossy(0.05));
    world.run_for(RUN);
    world.stop_media("alice");
    world.run_for(Duration::from_secs(2));

    for name in ["bob", "carol"] {
        let r = world.report(name, "alice");
        assert!(r.video.clean(), "{name}: {:?}", r.video);
        assert!(
            r.video.ratio() >= 0.99,
            "{name} lost video frames despite retransmission: {:?}",
            r.video
        );
    }
    let alice = world.client("alice").publish.as_ref().expect("publishing");
    let nacks = alice.wire.nacks_received;
    assert!(nacks > 10, "alice received only {nacks} NACKs from the SFU");
    let mid = world
        .client("alice")
        .source
        .as_ref()
        .expect("publishing")
        .video_mid;
    let rtx = rtx_packets(&mut world, "alice", Leg::Publish, mid, false);
    assert!(rtx > 20, "alice retransmitted only {rtx} packets");
}

#[test]
fn loss_both_ways_with_delay() {
    let mut world = World::new(12);
    world.join("lab", "alice");
    world.join("lab", "bob");
    world.publish("alice", KeyframePolicy::Every(300));
    world.run_for(Duration::from_secs(1));

    // A congested LAN: 20 ms each way, 5% loss on every link, feedback included.
    let bad = Link {
        loss: 0.05,
        delay: Duration::from_millis(20),
        ..Link::default()
    };
    for name in ["alice", "bob"] {
        for path in [
            Path::PublishUp,
            Path::PublishDown,
            Path::SubscribeUp,
            Path::SubscribeDown,
        ] {
            world.set_link(name, path, bad);
        }
    }
    world.run_for(RUN);
    world.stop_media("alice");
    world.run_for(Duration::from_secs(2));

    let r = world.report("bob", "alice");
    assert!(r.video.clean(), "bob: {:?}", r.video);
    assert!(r.video.ratio() >= 0.98, "bob: {:?}", r.video);
}
