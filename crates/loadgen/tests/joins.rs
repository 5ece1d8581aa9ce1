//! Joining under load: 100 participants (10 rooms of 2 publishers and 8 viewers, the
//! publishers in simulcast) join the real server in this process within 10 seconds, while
//! those already in send and receive media. Every one of them must get media, and the
//! time from opening its WebSocket to its first media packet (p95) stays within a bound
//! generous for a shared 2-core machine running a debug build (the goal, under 1 s, is
//! measured by `bench/run.sh` and written to BENCHMARKS.md).

use lanmeet_server::config::Config;
use serde_json::Value;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hundred_participants_joining_within_ten_seconds_all_get_media_quickly() {
    let dir = std::env::temp_dir().join(format!("lanmeet-loadgen-joins-{}", std::process::id()));
    let config = Config {
        listen: "127.0.0.1:0".parse().expect("addr"),
        data_dir: dir.clone(),
        http: true,
        udp_port: 0,
        public_ips: vec!["127.0.0.1".parse().expect("ip")],
        workers: 1,
        // Every participant comes from 127.0.0.1.
        max_connections_per_ip: 1000,
        join_burst: 1000,
        join_rate: 1000.0,
        ..Config::default()
    };
    let server = lanmeet_server::start(config).await.expect("server starts");

    let url = format!("http://{}", server.addr);
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_lanmeet-loadgen"))
        .args(["--target", "lanmeet", "--server", &url, "--json"])
        .args(["--rooms", "10", "--participants", "2", "--viewers", "8"])
        .args(["--join-spread", "10", "--join-timeout", "20"])
        .args(["--duration", "2", "--warmup", "0.5"])
        // Light media, so that a debug build on a busy machine keeps up: what is under
        // test is joining, not throughput.
        .args(["--video-kbps", "150", "--fps", "10", "--audio-pps", "20"])
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
    assert_eq!(num("/joined"), 100.0);
    assert_eq!(num("/join_ms/count"), 100.0, "everyone expects media");
    assert_eq!(num("/join_ms/without_media"), 0.0, "everyone got media");
    let p95 = num("/join_ms/p95");
    println!("join to first media: p95 {p95:.0} ms");
    assert!(
        p95 > 0.0 && p95 < 5000.0,
        "join to first media p95 {p95:.0} ms"
    );

    server.shutdown().await.expect("clean shutdown");
    let _ = std::fs::remove_dir_all(dir);
}
