//! The load generator against the real server in this process: one room of four
//! publishing participants for ten seconds, with bandwidth estimation on (the default).
//! It checks that the whole path works (signaling, ICE, DTLS-SRTP, forwarding,
//! measurement) and that forwarded media is not held back: since estimation went in,
//! str0m's pacer held what exceeded each subscriber's estimate (p99 700 ms, max 1 s in
//! this room). The bounds are generous for a shared 2-core machine; BENCHMARKS.md has
//! the real figures.

use lanmeet_loadgen::{LoadgenArgs, Target};
use lanmeet_server::config::Config;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_participants_hear_and_see_each_other_in_real_time() {
    let dir = std::env::temp_dir().join(format!("lanmeet-loadgen-smoke-{}", std::process::id()));
    let config = Config {
        listen: "127.0.0.1:0".parse().expect("addr"),
        data_dir: dir.clone(),
        http: true,
        udp_port: 0,
        public_ips: vec!["127.0.0.1".parse().expect("ip")],
        workers: 1,
        ..Config::default()
    };
    let server = lanmeet_server::start(config).await.expect("server starts");

    let mut args = LoadgenArgs::new(format!("http://{}", server.addr));
    args.target = Target::Lanmeet;
    args.rooms = 1;
    args.participants = 4;
    args.duration = 10.0;
    args.warmup = 1.0;
    args.join_timeout = 15.0;
    // A 720p camera's rate: four of them are far above the estimate a new subscriber
    // starts from (800 kbit/s).
    args.video_kbps = 1500;
    args.server_pid = Some(std::process::id());
    let report = lanmeet_loadgen::run(args)
        .await
        .expect("load generator runs");
    println!("{report}");

    assert_eq!(report.join_failures, 0, "{:?}", report.join_errors);
    // 4 subscribers x 3 other publishers x (audio + video).
    assert_eq!(report.streams_expected, 24);
    assert_eq!(
        report.streams_silent, 0,
        "every subscriber hears every publisher"
    );
    assert!(report.loss_pct < 1.0, "loss {:.3}%", report.loss_pct);
    assert!(report.latency_ms.samples > 1000, "latency measured");
    assert!(report.latency_ms.p50 > 0.0);
    assert!(
        report.latency_ms.p99 < 50.0,
        "one-way latency p99 {:.1} ms",
        report.latency_ms.p99
    );
    assert!(
        report.latency_ms.max < 100.0,
        "a packet took {:.1} ms",
        report.latency_ms.max
    );
    assert!(report.forwarded_pps > 100.0);
    assert!(report.server_rss_mb.is_some());

    server.shutdown().await.expect("clean shutdown");
    let _ = std::fs::remove_dir_all(dir);
}
