//! Scenario: the SFU's socket is open to the whole LAN, so anything may arrive on it.
//! Thousands of garbage datagrams — random bytes, truncated or bit-flipped STUN, DTLS
//! and SRTP, some spoofing the real participants' addresses — must neither panic the
//! SFU nor disturb the call going on at the same time.

mod common;

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use common::{KeyframePolicy, World};
use rand::rngs::StdRng;
use rand::Rng;

/// Garbage datagrams fed in.
const GARBAGE: usize = 4000;
/// Simulated time between two of them (4000 × 2.5 ms = 10 s).
const GAP: Duration = Duration::from_micros(2500);

#[test]
fn garbage_datagrams_neither_panic_nor_disturb_media() {
    let mut world = World::new(30);
    world.join("lab", "alice");
    world.join("lab", "bob");
    world.publish("alice", KeyframePolicy::Every(60));
    world.publish("bob", KeyframePolicy::Every(60));
    world.run_for(Duration::from_secs(2));

    let spoofable = [
        world.client("alice").publish_addr,
        world.client("alice").subscribe_addr,
        world.client("bob").publish_addr,
        world.client("bob").subscribe_addr,
    ];
    let dropped_before = world.sfu().stats().datagrams_dropped;
    for _ in 0..GARBAGE {
        let (from, bytes) = garbage(&mut world, &spoofable);
        world.inject(from, &bytes);
        world.run_for(GAP);
    }
    world.stop_media("alice");
    world.stop_media("bob");
    world.run_for(Duration::from_secs(1));

    for (sub, publ) in [("alice", "bob"), ("bob", "alice")] {
        let r = world.report(sub, publ);
        assert!(
            r.video.clean() && r.audio.clean(),
            "{sub} from {publ}: {r:?}"
        );
        assert!(
            r.video.ratio() >= 0.95 && r.audio.ratio() >= 0.95,
            "{sub} from {publ}: {r:?}"
        );
        assert!(r.video.expected > 300, "{sub} from {publ}: {r:?}");
        let c = world.client(sub);
        assert!(!c.media_failed, "{sub}'s media failed");
        assert!(
            c.other_signals.is_empty(),
            "{sub} got {:?}",
            c.other_signals
        );
    }
    assert_eq!(world.sfu().participant_count(), 2);
    assert!(
        world.sfu().stats().datagrams_dropped > dropped_before + GARBAGE as u64 / 4,
        "most garbage from unknown addresses must be dropped: {:?}",
        world.sfu().stats()
    );
}

/// One garbage datagram and the address it claims to come from.
fn garbage(world: &mut World, spoofable: &[SocketAddr]) -> (SocketAddr, Vec<u8>) {
    // A real datagram recently on the wire, to mutate.
    let n = world.net.recent.len();
    let i = world.net.rng().gen_range(0..n.max(1));
    let recent = world.net.recent.get(i).map(|d| (d.from, d.bytes.clone()));
    let rng = world.net.rng();
    let from = if rng.gen_bool(0.5) {
        spoofable[rng.gen_range(0..spoofable.len())]
    } else {
        let ip = Ipv4Addr::new(10, rng.gen(), rng.gen(), rng.gen());
        SocketAddr::new(ip.into(), rng.gen_range(1..=u16::MAX))
    };
    let bytes = match rng.gen_range(0..6) {
        0 => random_bytes(rng, 0..1500),
        // STUN: binding request header with the magic cookie, then junk.
        1 => with_prefix(rng, &[0x00, 0x01, 0x00, 0x40, 0x21, 0x12, 0xa4, 0x42]),
        // DTLS handshake and application data records (DTLS 1.2).
        2 => with_prefix(rng, &[0x16, 0xfe, 0xfd, 0x00, 0x00]),
        3 => with_prefix(rng, &[0x17, 0xfe, 0xfd, 0x00, 0x01]),
        // RTP (VP8-ish payload type) and RTCP (PLI).
        4 => {
            let pt = rng.gen_range(96..128);
            with_prefix(rng, &[0x80, pt, 0x00, 0x01])
        }
        _ => match recent {
            // A real datagram, truncated or with flipped bits, from its real sender or
            // a spoofed one.
            Some((real_from, mut bytes)) => {
                mutate(rng, &mut bytes);
                let from = if rng.gen_bool(0.5) { real_from } else { from };
                return (from, bytes);
            }
            None => random_bytes(rng, 0..100),
        },
    };
    (from, bytes)
}

fn random_bytes(rng: &mut StdRng, len: std::ops::Range<usize>) -> Vec<u8> {
    let n = rng.gen_range(len);
    (0..n).map(|_| rng.gen()).collect()
}

/// `prefix`, cut short at a random point or followed by random bytes.
fn with_prefix(rng: &mut StdRng, prefix: &[u8]) -> Vec<u8> {
    let mut v = prefix[..rng.gen_range(0..=prefix.len())].to_vec();
    if v.len() == prefix.len() {
        v.extend(random_bytes(rng, 0..200));
    }
    v
}

/// Truncates, flips bits, or both.
fn mutate(rng: &mut StdRng, bytes: &mut Vec<u8>) {
    if rng.gen_bool(0.5) {
        bytes.truncate(rng.gen_range(0..=bytes.len()));
    }
    if !bytes.is_empty() && rng.gen_bool(0.7) {
        for _ in 0..rng.gen_range(1..4) {
            let i = rng.gen_range(0..bytes.len());
            bytes[i] ^= 1 << rng.gen_range(0..8);
        }
    }
}

/// str0m binds an SSRC to a stream by the MID header extension before it checks SRTP
/// authentication. A replayed early packet of the publisher (it still carries the MID)
/// with one bit of its SSRC flipped, from the publisher's address, once moved the
/// publisher's audio stream onto that SSRC for good: the browser stops sending the MID
/// after the first receiver report, so its real packets never found the stream again.
#[test]
fn a_forged_ssrc_does_not_steal_a_published_stream() {
    let mut world = World::new(30);
    world.join("lab", "alice");
    world.join("lab", "bob");
    world.publish("alice", KeyframePolicy::Every(60));
    world.publish("bob", KeyframePolicy::Every(60));
    world.run_for(Duration::from_millis(300));
    let bob = world.client("bob").publish_addr;
    let mut early_audio = world
        .net
        .recent
        .iter()
        .rev()
        .find(|d| d.from == bob && d.bytes.len() > 12 && d.bytes[1] & 0x7f == 111)
        .map(|d| d.bytes.clone())
        .expect("bob's audio is flowing");
    // Long enough for receiver reports: bob's packets no longer carry the MID.
    world.run_for(Duration::from_secs(8));
    early_audio[8] ^= 0x80;
    let before = world.report("alice", "bob").audio.received;
    world.inject(bob, &early_audio);
    world.run_for(Duration::from_secs(2));
    let after = world.report("alice", "bob").audio.received;
    // 2 s of 20 ms frames.
    assert!(
        after - before >= 95,
        "alice got {} of bob's audio frames in 2 s",
        after - before
    );
    assert_eq!(world.sfu().stats().forged_rebinds_undone, 1);
}
