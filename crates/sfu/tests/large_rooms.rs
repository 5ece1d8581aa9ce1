//! Scenario: large meetings. The subscribe offer (and the browser's answer) must stay
//! small enough for signaling however many people are in the room and however many came
//! and went before.

mod common;

use std::time::Duration;

use common::{KeyframePolicy, World};

/// A room of `n` publishers (microphone and camera each, VP8) and a viewer who joins
/// last: the sizes of the viewer's first subscribe offer and its answer, as JSON bytes.
fn viewer_sizes(n: usize) -> (usize, usize) {
    let mut world = World::new(7);
    for i in 0..n {
        let name = format!("p{i}");
        world.join("big", &name);
        world.publish(&name, KeyframePolicy::OnRequest);
        world.stop_media(&name);
    }
    // Tracks count as published once the publish connections are up.
    world.run_for(Duration::from_secs(1));
    world.join("big", "viewer");
    let sizes = &world.client("viewer").sdp_sizes;
    assert_eq!(sizes.len(), 1, "one offer for everything already published");
    sizes[0]
}

#[test]
fn measure() {
    for n in [10, 25, 50] {
        let (offer, answer) = viewer_sizes(n);
        eprintln!("SIZES n={n} offer={offer} answer={answer}");
    }
}

/// A viewer stays while `total` publishers come and go, at most `live` at a time: the
/// sizes of the viewer's latest offer and answer.
fn churn_sizes(total: usize, live: usize) -> (usize, usize, usize) {
    let mut world = World::new(8);
    world.join("big", "viewer");
    for i in 0..total {
        let name = format!("p{i}");
        world.join("big", &name);
        world.publish(&name, KeyframePolicy::OnRequest);
        world.stop_media(&name);
        world.run_for(Duration::from_millis(200));
        if i >= live {
            world.leave(&format!("p{}", i - live));
        }
    }
    let sizes = &world.client("viewer").sdp_sizes;
    let (o, a) = *sizes.last().expect("offers");
    (o, a, sizes.len())
}

#[test]
fn measure_churn() {
    let (o, a, n) = churn_sizes(200, 5);
    eprintln!("CHURN offer={o} answer={a} offers={n}");
}
