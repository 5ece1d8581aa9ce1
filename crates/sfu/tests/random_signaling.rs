//! Scenario: signaling in a random order. For each seed, up to five simulated browsers
//! join, publish, leave (and others join in their place), change their views, and now
//! and then refuse a subscribe answer, with random pauses between, on the virtual clock.
//! After things settle, every browser present must hold exactly the tracks of everyone
//! else present who publishes, with no offer left unanswered, and receive their media.
//!
//! The model is quinn's `random_interaction` tests: a seeded list of operations, so a
//! failure names the seed that reproduces it (`RANDOM_SIGNALING_SEED=n` runs one).

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use common::{KeyframePolicy, World};
use lanmeet_proto::{ParticipantId, TrackKind};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// Browsers at most in the room at once.
const SLOTS: usize = 5;
/// Operations per seed.
const OPERATIONS: usize = 24;
/// Refused answers at most per browser: after two refusals in a row the server offers
/// again only on the next change, so more could leave a browser legitimately waiting.
const REFUSALS: usize = 1;

/// One browser's place in the scenario.
#[derive(Default, Clone)]
struct Slot {
    /// Its current name, while present.
    name: Option<String>,
    /// Whether it publishes camera and microphone.
    publishing: bool,
    /// Answers it has been told to refuse.
    refusals: usize,
    /// Whose tiles its latest view hides.
    hidden: Vec<String>,
}

/// Runs one seed's scenario and checks the settled state. Returns a description of what
/// is wrong, if anything.
fn run(seed: u64) -> Result<(), String> {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut world = World::new(seed);
    let mut slots = vec![Slot::default(); SLOTS];
    let mut generation = 0;
    let mut log = Vec::new();
    for _ in 0..OPERATIONS {
        let i = rng.gen_range(0..SLOTS);
        let slot = &mut slots[i];
        match (slot.name.clone(), rng.gen_range(0..10)) {
            (None, _) => {
                generation += 1;
                let name = format!("s{i}g{generation}");
                world.join("lab", &name);
                log.push(format!("{name} joins"));
                slot.name = Some(name);
                slot.publishing = false;
                slot.refusals = 0;
                slot.hidden.clear();
            }
            (Some(name), 0..=3) if !slot.publishing => {
                world.publish(&name, KeyframePolicy::Every(15));
                log.push(format!("{name} publishes"));
                slot.publishing = true;
            }
            (Some(name), 0..=1) => {
                world.leave(&name);
                log.push(format!("{name} leaves"));
                slot.name = None;
            }
            (Some(name), 2..=3) if slot.refusals < REFUSALS => {
                world.client_mut(&name).refuse_answers += 1;
                log.push(format!("{name} will refuse its next answer"));
                slot.refusals += 1;
            }
            (Some(name), _) => {
                // A view names the tiles the page shows: the video it has been given.
                let held: Vec<ParticipantId> = world
                    .client(&name)
                    .tracks
                    .iter()
                    .filter(|t| t.kind == TrackKind::Video)
                    .map(|t| t.participant)
                    .collect();
                let others: Vec<String> = slots
                    .iter()
                    .filter_map(|s| s.name.clone())
                    .filter(|n| *n != name && held.contains(&world.id(n)))
                    .collect();
                let tiles: Vec<(String, u32, u32)> = others
                    .into_iter()
                    .map(|n| match rng.gen_range(0..3) {
                        0 => (n, 0, 0),
                        1 => (n, 320, 180),
                        _ => (n, 1280, 720),
                    })
                    .collect();
                let view: Vec<(&str, u32, u32)> =
                    tiles.iter().map(|(n, w, h)| (n.as_str(), *w, *h)).collect();
                world.set_view(&name, &view);
                slots[i].hidden = tiles
                    .iter()
                    .filter(|(_, w, _)| *w == 0)
                    .map(|(n, _, _)| n.clone())
                    .collect();
                log.push(format!("{name} views {tiles:?}"));
            }
        }
        let pause = Duration::from_millis(rng.gen_range(0..400));
        world.run_for(pause);
    }
    world.run_for(Duration::from_secs(3));

    let present: Vec<&Slot> = slots.iter().filter(|s| s.name.is_some()).collect();
    let publishers: Vec<(ParticipantId, &str)> = present
        .iter()
        .filter(|s| s.publishing)
        .filter_map(|s| s.name.as_deref())
        .map(|n| (world.id(n), n))
        .collect();
    let since = world.now();
    world.run_for(Duration::from_secs(2));
    let fail = |what: String| Err(format!("seed {seed}: {what}\n  operations: {log:#?}"));
    for slot in &present {
        let name = slot.name.as_deref().unwrap_or_default();
        let me = world.id(name);
        let client = world.client(name);
        let want: BTreeSet<(ParticipantId, bool)> = publishers
            .iter()
            .filter(|(id, _)| *id != me)
            .flat_map(|(id, _)| [(*id, false), (*id, true)])
            .collect();
        let have: BTreeSet<(ParticipantId, bool)> = client
            .tracks
            .iter()
            .map(|t| (t.participant, t.kind == TrackKind::Video))
            .collect();
        // (participant, is video) pairs.
        if have != want {
            return fail(format!("{name} holds tracks {have:?}, want {want:?}"));
        }
        if client.tracks.len() != want.len() {
            return fail(format!(
                "{name} holds duplicate tracks: {:?}",
                client.tracks
            ));
        }
        if world.sfu().is_negotiating(me) {
            return fail(format!("{name}'s subscribe offer was never answered"));
        }
        // Media flows from everyone it should hear: audio always (fewer than the
        // top-N limit here), and video for every publisher not hidden in its view.
        for (id, publisher) in publishers.iter().filter(|(id, _)| *id != me) {
            let frames = |kind| {
                client
                    .received
                    .iter()
                    .filter(|f| f.at > since && f.track_owner == Some(*id))
                    .filter(|f| f.kind == Some(kind) && f.intact)
                    .count()
            };
            let audio = frames(TrackKind::Audio);
            if audio < 50 {
                return fail(format!(
                    "{name} got {audio} audio frames from {publisher} in 2 s"
                ));
            }
            let hidden = slot.hidden.iter().any(|h| h == publisher);
            let video = frames(TrackKind::Video);
            if !hidden && video < 20 {
                return fail(format!(
                    "{name} got {video} video frames from {publisher} in 2 s"
                ));
            }
        }
    }
    Ok(())
}

/// Runs `seeds`, or only the one in `RANDOM_SIGNALING_SEED`.
fn run_seeds(seeds: std::ops::Range<u64>) {
    let only: Option<u64> = std::env::var("RANDOM_SIGNALING_SEED")
        .ok()
        .and_then(|s| s.parse().ok());
    let failures: Vec<String> = seeds
        .filter(|s| only.is_none_or(|o| o == *s))
        .filter_map(|s| run(s).err())
        .collect();
    assert!(
        failures.is_empty(),
        "{} seeds failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

// Several tests, so the seeds run on several threads.
#[test]
fn random_signaling_seeds_0_to_49() {
    run_seeds(0..50);
}

#[test]
fn random_signaling_seeds_50_to_99() {
    run_seeds(50..100);
}

#[test]
fn random_signaling_seeds_100_to_149() {
    run_seeds(100..150);
}

#[test]
fn random_signaling_seeds_150_to_199() {
    run_seeds(150..200);
}
