//! `lanmeet`: parse the command line, start the server, print where to find it, run
//! until Ctrl-C or SIGTERM, then shut down gracefully (participants are told that the
//! server is restarting and rejoin by themselves when it is back).

use clap::Parser;
use lanmeet_server::config::{Cli, Command, Config};
use tracing_subscriber::EnvFilter;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info,str0m=warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let Command::Serve(args) = Cli::parse().command;
    let config = Config::from_args(args)?;
    let mut server = lanmeet_server::start(config).await?;
    print_urls(&server);
    tokio::select! {
        r = server.wait() => r,
        signal = stop_signal() => {
            eprintln!("{signal}: shutting down (participants rejoin when the server is back)");
            server.shutdown().await
        }
    }
}

/// Waits for Ctrl-C (SIGINT) or SIGTERM (what systemd and `kill` send); names it.
async fn stop_signal() -> &'static str {
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("cannot listen for SIGTERM: {e}");
            let _ = tokio::signal::ctrl_c().await;
            return "Ctrl-C";
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => "Ctrl-C",
        _ = term.recv() => "SIGTERM",
    }
}

/// `println!` that never panics: a closed standard output (a harness that stopped
/// reading after the "ready" line) must not take the server down.
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write;
        let _ = writeln!(std::io::stdout().lock(), $($arg)*);
    }};
}

/// Tells the user (and test harnesses, which wait for the "ready" line) where to go.
fn print_urls(server: &lanmeet_server::RunningServer) {
    let scheme = server.scheme;
    let port = server.addr.port();
    let ip = server.addr.ip();
    let host = if ip.is_unspecified() {
        "localhost".to_string()
    } else {
        ip.to_string()
    };
    say!("lanmeet ready at {scheme}://{host}:{port}/");
    if ip.is_unspecified() {
        for lan in lanmeet_server::net::local_ipv4s() {
            say!("  open on your network: {scheme}://{lan}:{port}/");
        }
    }
    let ports: Vec<String> = server.udp_ports.iter().map(|p| p.to_string()).collect();
    say!("  media over UDP port(s) {}", ports.join(", "));
    match &server.admin_password_file {
        Some(path) => say!(
            "  admin dashboard: {scheme}://{host}:{port}/admin (password in {})",
            path.display()
        ),
        None => {
            say!("  admin dashboard: {scheme}://{host}:{port}/admin (password as configured)")
        }
    }
    if let Some(addr) = server.metrics_addr {
        say!("  metrics without password: http://{addr}/metrics");
    }
}
