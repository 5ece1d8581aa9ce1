//! `lanmeet`: parse the command line, start the server, print where to find it, run
//! until Ctrl-C.

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
        _ = tokio::signal::ctrl_c() => {
            eprintln!("shutting down");
            server.shutdown().await
        }
    }
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
    println!("lanmeet ready at {scheme}://{host}:{port}/");
    if ip.is_unspecified() {
        for lan in lanmeet_server::net::local_ipv4s() {
            println!("  open on your network: {scheme}://{lan}:{port}/");
        }
    }
    let ports: Vec<String> = server.udp_ports.iter().map(|p| p.to_string()).collect();
    println!("  media over UDP port(s) {}", ports.join(", "));
}
