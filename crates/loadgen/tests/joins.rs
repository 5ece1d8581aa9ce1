//! Joining under load: 100 participants (10 rooms of 2 publishers and 8 viewers, the
//! publishers in simulcast) join the real server in this process within 10 seconds, while
//! those already in send and receive media. Every one of them must get media, and the
//! time from opening its WebSocket to its first media packet (p95) stays within a bound
//! generous for a shared 2-core machine running a debug build (the goal, under 1 s, is
//! measured by `bench/run.sh` and written to BENCHMARKS.md).

mod common;

use common::{num, run_loadgen, start_server};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hundred_participants_joining_within_ten_seconds_all_get_media_quickly() {
    let server = start_server("joins", |c| {
        // Every participant comes from 127.0.0.1.
        c.max_connections_per_ip = 1000;
        c.join_burst = 1000;
        c.join_rate = 1000.0;
    })
    .await;
    let report = run_loadgen(&server, |cmd| {
        cmd.args(["--rooms", "10", "--participants", "2", "--viewers", "8"])
            .args(["--join-spread", "10", "--join-timeout", "20"])
            .args(["--duration", "2", "--warmup", "0.5"])
            // Light media, so that a debug build on a busy machine keeps up: what is under
            // test is joining, not throughput.
            .args(["--video-kbps", "150", "--fps", "10", "--audio-pps", "20"])
    })
    .await;
    let num = |path: &str| num(&report, path);
    assert_eq!(num("/join_failures"), 0.0, "{}", report["join_errors"]);
    assert_eq!(num("/joined"), 100.0);
    assert_eq!(num("/join_ms/count"), 100.0, "everyone expects media");
    assert_eq!(num("/join_ms/without_media"), 0.0, "everyone got media");
    let p95 = num("/join_ms/p95");
    println!("join to first media: p95 {p95:.0} ms");
    assert!(
        p95 > 0.0 && p95 < 5000.0,
        "join to first media p95 {p95:.0} ms"
    );

    server.shutdown().await;
}
