//! A lecture spread over two media workers, over real sockets: the server in this
//! process with `--workers 2 --fanout-spill 2`, the `lanmeet-loadgen` binary as one
//! simulcast publisher and ten viewers. The room's first two members stay on its
//! worker; the other viewers are placed on the least loaded one, so both workers carry
//! viewers and the publisher's worker hands every packet to the other. Every viewer
//! must get audio and video, with nothing lost on loopback.

mod common;

use std::time::{Duration, Instant};

use common::{num, run_loadgen, start_server};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lecture_over_two_workers_reaches_every_viewer_without_loss() {
    let server = start_server("lecture-workers", |config| {
        config.workers = 2;
        config.fanout_spill = 2;
    })
    .await;

    let report = run_loadgen(&server, |cmd| {
        cmd.args(["--rooms", "1", "--participants", "1", "--viewers", "10"])
            .args(["--duration", "6", "--warmup", "2", "--join-timeout", "15"])
            .args(["--layers", "3", "--small-tiles", "0.5"])
    })
    .await;
    assert_eq!(
        num(&report, "/join_failures"),
        0.0,
        "{}",
        report["join_errors"]
    );
    // 10 viewers x (audio + video) of the one publisher.
    assert_eq!(num(&report, "/streams_expected"), 20.0);
    assert_eq!(
        num(&report, "/streams_silent"),
        0.0,
        "every viewer gets the lecture"
    );
    assert_eq!(
        num(&report, "/packets_lost"),
        0.0,
        "loss {:.3}%",
        num(&report, "/loss_pct")
    );
    assert!(num(&report, "/packets_received") > 1000.0);

    // Both workers forwarded to their own viewers; the publisher's handed the packets
    // over once each. Workers copy their counters every 500 ms: wait for a copy that
    // holds the lecture.
    let workers = server.server.registry.workers();
    let deadline = Instant::now() + Duration::from_secs(5);
    let stats = loop {
        let stats: Vec<_> = workers.iter().map(|w| w.worker_stats()).collect();
        if stats.iter().all(|s| s.sfu.packets_forwarded() > 500) || Instant::now() > deadline {
            break stats;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    for (i, s) in stats.iter().enumerate() {
        println!(
            "worker {i}: in {}, forwarded {}, relayed out {}, relayed in {}, participants {}",
            s.sfu.packets_in(),
            s.sfu.packets_forwarded(),
            s.sfu.relayed_out,
            s.sfu.relayed_in,
            s.sfu.participants
        );
        assert!(
            s.sfu.packets_forwarded() > 500,
            "worker {i} forwarded: {s:?}"
        );
    }
    let (home, other) = if stats[0].sfu.packets_in() > 0 {
        (&stats[0], &stats[1])
    } else {
        (&stats[1], &stats[0])
    };
    assert!(home.sfu.relayed_out > 0 && home.sfu.relayed_out <= home.sfu.packets_in());
    assert!(other.sfu.relayed_in > 0);
    assert_eq!(other.sfu.packets_in(), 0, "the publisher is on one worker");
    assert_eq!(home.relay_batches_dropped, 0);

    server.shutdown().await;
}
