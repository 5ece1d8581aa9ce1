//! Scenario: three participants publish camera and microphone on a clean network. The
//! SFU's counters agree exactly with what the clients put on and took off the wire: every
//! RTP packet the publishers sent is counted as received, every packet the subscribers
//! received is counted as forwarded, and the classes add up (audio and camera only).

mod common;

use std::time::Duration;

use common::{KeyframePolicy, World};
use lanmeet_sfu::MediaClass;

const NAMES: [&str; 3] = ["alice", "bob", "carol"];

fn wire_total(world: &World, name: &str, subscribe: bool) -> u64 {
    let client = world.client(name);
    let conn = if subscribe {
        client.subscribe.as_ref()
    } else {
        client.publish.as_ref()
    };
    let wire = &conn.expect("connected").wire;
    if subscribe {
        wire.rtp_rx.values().sum()
    } else {
        wire.rtp_tx.values().sum()
    }
}

#[test]
fn counters_match_what_the_clients_sent_and_received() {
    let mut world = World::new(7);
    for name in NAMES {
        world.join("lab", name);
    }
    for name in NAMES {
        world.publish(name, KeyframePolicy::Every(60));
    }
    world.run_for(Duration::from_secs(5));
    for name in NAMES {
        world.stop_media(name);
    }
    world.run_for(Duration::from_secs(1));

    let stats = world.sfu().stats();
    let sent: u64 = NAMES.iter().map(|n| wire_total(&world, n, false)).sum();
    let received: u64 = NAMES.iter().map(|n| wire_total(&world, n, true)).sum();
    println!(
        "publishers sent {sent}, SFU received {}; subscribers received {received}, SFU forwarded {}",
        stats.packets_in(),
        stats.packets_forwarded()
    );
    assert!(sent > 1000, "media flowed: {sent} packets");
    assert_eq!(
        stats.packets_in(),
        sent,
        "every packet sent is counted once"
    );
    assert_eq!(
        stats.packets_forwarded(),
        received,
        "every packet received was counted as forwarded"
    );
    // Each packet goes to the two others.
    assert_eq!(stats.packets_forwarded(), 2 * stats.packets_in());
    let forwarded = |class| *stats.forwarded.get(class);
    let (audio, camera, screen) = (
        forwarded(MediaClass::Audio),
        forwarded(MediaClass::Camera),
        forwarded(MediaClass::Screen),
    );
    assert_eq!(
        audio.packets + camera.packets + screen.packets,
        stats.packets_forwarded()
    );
    assert_eq!(screen.packets, 0, "nobody presents");
    assert!(audio.packets > 0 && camera.packets > 0);
    assert!(camera.bytes > audio.bytes);
    assert_eq!((stats.rooms, stats.participants), (1, 3));
    // Everyone was told of the two others' videos, at some layer, none paused or hidden.
    for (id, report) in world.sfu().participant_stats() {
        let layers: u16 = report.video_layers.iter().sum();
        assert_eq!(
            (layers, report.video_paused, report.video_hidden),
            (2, 0, 0),
            "{id}: {report:?}"
        );
    }
    let tracks = |class| *stats.tracks.get(class);
    assert_eq!(
        (tracks(MediaClass::Audio), tracks(MediaClass::Camera)),
        (3, 3)
    );
}
