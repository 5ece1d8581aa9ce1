//! `lanmeet-loadgen`: parse the flags, load the server, print the report (and the JSON
//! line last with `--json`). Logs go to stderr, so stdout holds only the report. Exits
//! with status 3 (after the report) when some participants failed to join, and with an
//! error when none did.

use clap::Parser;
use lanmeet_loadgen::LoadgenArgs;
use tracing_subscriber::EnvFilter;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| "info,str0m=warn".into());
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
    let args = LoadgenArgs::parse();
    let json = args.json;
    let report = lanmeet_loadgen::run(args).await?;
    lanmeet_loadgen::print(&report, json);
    if report.join_failures > 0 {
        std::process::exit(3);
    }
    Ok(())
}
