//! Scenario: a publisher renegotiates its publish connection again and again (as a
//! browser does when screen sharing starts and stops). Each offer is answered on the
//! existing connection: no new connection (and no new DTLS certificate) is built, and
//! its camera keeps reaching the others without a break.

mod common;

use std::time::Duration;

use common::{KeyframePolicy, World};

#[test]
fn renegotiation_reuses_the_publish_connection_and_media_keeps_flowing() {
    let mut world = World::new(41);
    for name in ["alice", "bob"] {
        world.join("lab", name);
    }
    world.publish("alice", KeyframePolicy::Every(60));
    world.run_for(Duration::from_secs(2));
    assert_eq!(world.sfu().stats().publish_connections_built, 1);
    let mut received = world.report("bob", "alice").video.received;
    assert!(received > 30, "media flows before: {received}");
    for round in 0..3 {
        world.renegotiate_publish("alice");
        world.run_for(Duration::from_secs(1));
        let now = world.report("bob", "alice").video.received;
        assert!(
            now > received + 20,
            "round {round}: video went on ({received} → {now})"
        );
        received = now;
    }
    assert_eq!(
        world.sfu().stats().publish_connections_built,
        1,
        "every renegotiation used the first connection"
    );
}
