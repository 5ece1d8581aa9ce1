//! Helpers shared by the load generator's tests: the real server in this process, and
//! the `lanmeet-loadgen` binary run against it with its JSON report read back.
#![allow(dead_code)]

use std::path::PathBuf;

use lanmeet_server::config::Config;
use lanmeet_server::RunningServer;
use serde_json::Value;
use tokio::process::Command;

/// A server started by [`start_server`], with the data folder it removes on shutdown.
pub struct TestServer {
    /// The running server.
    pub server: RunningServer,
    dir: PathBuf,
}

impl TestServer {
    /// The server's base URL, as `--server` takes it.
    pub fn url(&self) -> String {
        format!("http://{}", self.server.addr)
    }

    /// Shuts the server down cleanly and removes its data folder.
    pub async fn shutdown(self) {
        self.server.shutdown().await.expect("clean shutdown");
        let _ = std::fs::remove_dir_all(self.dir);
    }
}

/// Starts a server on 127.0.0.1 (ephemeral ports, one media worker, a fresh data folder
/// named after `tag`), after `adjust` has changed its config.
pub async fn start_server(tag: &str, adjust: impl FnOnce(&mut Config)) -> TestServer {
    let dir = std::env::temp_dir().join(format!("lanmeet-loadgen-{tag}-{}", std::process::id()));
    let mut config = Config {
        listen: "127.0.0.1:0".parse().expect("addr"),
        data_dir: dir.clone(),
        http: true,
        udp_port: 0,
        public_ips: vec!["127.0.0.1".parse().expect("ip")],
        workers: 1,
        ..Config::default()
    };
    adjust(&mut config);
    let server = lanmeet_server::start(config).await.expect("server starts");
    TestServer { server, dir }
}

/// Runs `lanmeet-loadgen --target lanmeet --server <server> --json` with the arguments
/// `args` adds, and returns its JSON report (the last line of its output); panics if it
/// fails.
pub async fn run_loadgen(
    server: &TestServer,
    args: impl FnOnce(&mut Command) -> &mut Command,
) -> Value {
    let mut command = Command::new(env!("CARGO_BIN_EXE_lanmeet-loadgen"));
    command.args(["--target", "lanmeet", "--server", &server.url(), "--json"]);
    let output = args(&mut command)
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
    serde_json::from_str(last).expect("the last line is the JSON report")
}

/// The number at `path` (a JSON pointer) in `report`; panics if there is none.
#[track_caller]
pub fn num(report: &Value, path: &str) -> f64 {
    match report.pointer(path).and_then(Value::as_f64) {
        Some(n) => n,
        None => panic!("no number at {path} in the report"),
    }
}
