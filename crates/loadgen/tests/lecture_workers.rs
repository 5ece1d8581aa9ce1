//! A lecture spread over two media workers, over real sockets: the server in this
//! process with `--workers 2 --fanout-spill 2`, the `lanmeet-loadgen` binary as one
//! simulcast publisher and ten viewers. The room's first two members stay on its
//! worker; the other viewers are placed on the least loaded one, so both workers carry
//! viewers and the publisher's worker hands every packet to the other. Every viewer
//! must get audio and video, with nothing lost on loopback.

use lanmeet_server::config::Config;
use serde_json::Value;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lecture_over_two_workers_reaches_every_viewer_without_loss() {
    let dir = std::env::temp_dir().join(format!("lanmeet-lecture-workers-{}", std::process::id()));
    let config = Config {
        listen: "127.0.0.1:0".parse().expect("addr"),
        data_dir: dir.clone(),
        http: true,
        udp_port: 0,
        public_ips: vec!["127.0.0.1".parse().expect("ip")],
        workers: 2,
        fanout_spill: 2,
        ..Config::default()
    };
    let server = lanmeet_server::start(config).await.expect("server starts");

    let url = format!("http://{}", server.addr);
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_lanmeet-loadgen"))
        .args(["--target", "lanmeet", "--server", &url, "--rooms", "1"])
        .args(["--participants", "1", "--viewers", "10"])
        .args(["--duration", "6", "--warmup", "2", "--join-timeout", "15"])
        .args(["--layers", "3", "--small-tiles", "0.5", "--json"])
        .output()
        .await
        .expect("lanmeet-loadgen starts");
    let stdout = String::from_utf8_lossy(&output.stdout);
    println!("{stdout}");
    assert!(
        output.status.success(),
        "lanmeet-loadgen failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let last = stdout.lines().last().expect("a report");
    let report: Value = serde_json::from_str(last).expect("the last line is the JSON report");
    let num = |path: &str| {
        report
            .pointer(path)
            .and_then(Value::as_f64)
            .unwrap_or_else(|| panic!("{path} in the report"))
    };
    assert_eq!(num("/join_failures"), 0.0, "{}", report["join_errors"]);
    // 10 viewers x (audio + video) of the one publisher.
    assert_eq!(num("/streams_expected"), 20.0);
    assert_eq!(num("/streams_silent"), 0.0, "every viewer gets the lecture");
    assert_eq!(num("/packets_lost"), 0.0, "loss {:.3}%", num("/loss_pct"));
    assert!(num("/packets_received") > 1000.0);

    // Both workers forwarded to their own viewers; the publisher's handed the packets
    // over once each.
    let stats: Vec<_> = server
        .registry
        .workers()
        .iter()
        .map(|w| w.worker_stats())
        .collect();
    // Workers copy their counters every 500 ms.
    tokio::time::sleep(std::time::Duration::from_millis(700)).await;
    let stats: Vec<_> = if stats.iter().all(|s| s.sfu.packets_forwarded() > 0) {
        stats
    } else {
        server
            .registry
            .workers()
            .iter()
            .map(|w| w.worker_stats())
            .collect()
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

    server.shutdown().await.expect("clean shutdown");
    let _ = std::fs::remove_dir_all(dir);
}
