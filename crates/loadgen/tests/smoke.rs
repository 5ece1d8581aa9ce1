//! The `lanmeet-loadgen` binary against the real server in this process: one room of four
//! publishing participants for ten seconds, with bandwidth estimation on (the default),
//! publishing simulcast as the browser does and reporting their views, half of them as
//! small tiles. It checks that the whole path works (flags, signaling, ICE, DTLS-SRTP,
//! layer selection, forwarding, measurement, the JSON report on the last line), that
//! small tiles get the lowest layer and large ones the top layer, that nothing is lost
//! on loopback, and that forwarded media is not held back: since estimation went in,
//! str0m's pacer held what exceeded each subscriber's estimate (p99 700 ms, max 1 s in
//! this room). The bounds are generous for a shared 2-core machine; BENCHMARKS.md has
//! the real figures.

mod common;

use common::{num, run_loadgen, start_server};
use serde_json::Value;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_participants_hear_and_see_each_other_in_real_time_on_the_layer_their_tiles_need() {
    // A free port for the password-less /metrics listener.
    let metrics = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port");
    let server = start_server("smoke", |c| c.metrics_listen = Some(metrics)).await;
    let pid = std::process::id().to_string();
    let report = run_loadgen(&server, |cmd| {
        cmd.args(["--rooms", "1"])
            // The warm-up lets each subscriber's bandwidth estimate climb to the top layer.
            .args(["--participants", "4", "--duration", "10", "--warmup", "3"])
            .args(["--layers", "3", "--small-tiles", "0.5"])
            .args(["--join-timeout", "15", "--server-pid", &pid])
            .args(["--server-metrics", &format!("http://{metrics}/metrics")])
            // A 720p camera's rate: four of them are far above the estimate a new
            // subscriber starts from (800 kbit/s).
            .args(["--video-kbps", "1500"])
    })
    .await;
    let num = |path: &str| num(&report, path);

    assert_eq!(num("/join_failures"), 0.0, "{}", report["join_errors"]);
    // The server's own arrival-to-send delay was read from /metrics over the window (a
    // histogram that is not cumulative is refused).
    assert!(num("/server_delay_ms/samples") > 1000.0);
    let server_p50 = num("/server_delay_ms/p50");
    assert!(
        server_p50 > 0.0 && server_p50 <= num("/server_delay_ms/p99"),
        "server delay p50 {server_p50} ms"
    );
    // 4 subscribers x 3 other publishers x (audio + video).
    assert_eq!(num("/streams_expected"), 24.0);
    assert_eq!(
        num("/streams_silent"),
        0.0,
        "every subscriber hears every publisher"
    );
    // Loopback loses nothing, and NACKs would repair what it did.
    assert_eq!(num("/packets_lost"), 0.0, "loss {:.3}%", num("/loss_pct"));
    assert!(num("/packets_received") > 1000.0);

    // Subscribers 1 and 3 show small tiles (320x180): the lowest layer (q, 180 px) fits,
    // so they get nothing else. Subscribers 0 and 2 show large ones (1280x720): the top
    // layer (f) once their bandwidth estimate allows it, well before the window opens.
    let layers = |path: &str| -> Vec<f64> {
        report
            .pointer(path)
            .and_then(Value::as_array)
            .unwrap_or_else(|| panic!("{path} in the report"))
            .iter()
            .filter_map(Value::as_f64)
            .collect()
    };
    let small = layers("/layer_packets_small_tiles");
    let large = layers("/layer_packets_large_tiles");
    println!("video packets per layer (q, h, f): small tiles {small:?}, large tiles {large:?}");
    assert_eq!(small.len(), 3, "three layers published");
    let total = |l: &[f64]| l.iter().sum::<f64>();
    assert!(small[0] > 0.0, "small tiles get the low layer");
    assert!(
        small[1] + small[2] <= 0.01 * total(&small),
        "small tiles get nothing but the low layer: {small:?}"
    );
    assert!(
        large[2] >= 0.9 * total(&large) && large[2] > 0.0,
        "large tiles get the top layer: {large:?}"
    );
    // Everyone got media within a few seconds of opening its socket.
    let join_p95 = num("/join_ms/p95");
    assert!(join_p95 < 5000.0, "join to media p95 {join_p95:.0} ms");
    assert_eq!(num("/join_ms/without_media"), 0.0);
    assert!(num("/latency_ms/samples") > 1000.0, "latency measured");
    assert!(num("/latency_ms/p50") > 0.0);
    let p99 = num("/latency_ms/p99");
    assert!(p99 < 50.0, "one-way latency p99 {p99:.1} ms");
    // One packet's worst time says more about the machine's scheduler than about the
    // server (117 ms seen once with both cores busy elsewhere); p99 above is the bound
    // that catches a pacer holding media back.
    let max = num("/latency_ms/max");
    assert!(max < 250.0, "a packet took {max:.1} ms");
    assert!(num("/forwarded_pps") > 100.0);
    assert!(num("/server_rss_mb") > 0.0);

    // The server's forwarded-packet counter (lanmeet_forwarded_packets_total) agrees with
    // what the load generator's subscribers received over the whole run. Workers copy
    // their counters every 500 ms: wait until two reads 600 ms apart agree (the media
    // has stopped, so the figure is final).
    let forwarded = || -> u64 {
        server
            .server
            .registry
            .workers()
            .iter()
            .map(|w| w.stats().packets_forwarded())
            .sum()
    };
    let mut last = forwarded();
    loop {
        tokio::time::sleep(std::time::Duration::from_millis(600)).await;
        let now = forwarded();
        if now == last {
            break;
        }
        last = now;
    }
    let received = num("/packets_received_total");
    let counted = last as f64;
    println!("server forwarded {counted}, load generator received {received}");
    assert!(received > 0.0);
    assert!(
        (counted - received).abs() <= 0.02 * received,
        "the forwarded counter ({counted}) is within 2% of what arrived ({received})"
    );

    server.shutdown().await;
}
