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
    let mut home = format!("{scheme}://{host}:{port}/");
    if ip.is_unspecified() {
        for (i, lan) in lanmeet_server::net::local_ipv4s().into_iter().enumerate() {
            say!("  open on your network: {scheme}://{lan}:{port}/");
            if i == 0 {
                home = format!("{scheme}://{lan}:{port}/");
            }
        }
    }
    print_qr(&home);
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

/// The home page as a QR code, for a phone's camera: only when standard output is a
/// terminal (not in a log file, a pipe or a test harness). The same code as the invite
/// dialog's, for the home page rather than a room.
fn print_qr(url: &str) {
    use std::io::IsTerminal;
    if !std::io::stdout().is_terminal() {
        return;
    }
    if let Some(text) = terminal_qr(url) {
        say!("  or scan to open it on a phone:\n{text}");
    }
}

/// `url` as a QR code in Unicode half blocks (two modules per character), light on dark
/// as terminals mostly are, with the quiet zone; `None` if it does not fit a QR code.
fn terminal_qr(url: &str) -> Option<String> {
    use qrcode::render::unicode::Dense1x2;
    let code = qrcode::QrCode::new(url.as_bytes()).ok()?;
    Some(
        code.render::<Dense1x2>()
            .dark_color(Dense1x2::Light)
            .light_color(Dense1x2::Dark)
            .quiet_zone(true)
            .build(),
    )
}

#[cfg(test)]
mod tests {
    use super::terminal_qr;

    #[test]
    fn the_terminal_qr_code_is_square_half_blocks() {
        let text = terminal_qr("https://192.168.1.20:8443/").expect("a URL fits a QR code");
        let lines: Vec<&str> = text.lines().collect();
        let width = lines[0].chars().count();
        // Version 2 (25 modules) with a 4-module quiet zone on each side: 33 modules,
        // two rows per line.
        assert_eq!(width, 33, "{text}");
        assert_eq!(lines.len(), 17, "{text}");
        assert!(text
            .chars()
            .all(|c| matches!(c, ' ' | '\u{2580}' | '\u{2584}' | '\u{2588}' | '\n')));
    }
}
