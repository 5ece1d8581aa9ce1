//! `lanmeet-relay ADDR:PORT`: the minimal no-crypto UDP relay used as the benchmark
//! ceiling (see `lanmeet_loadgen::relay`).

fn main() -> anyhow::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "0.0.0.0:9000".to_string());
    let addr = addr
        .parse()
        .map_err(|e| anyhow::anyhow!("usage: lanmeet-relay ADDR:PORT ({e})"))?;
    lanmeet_loadgen::relay::serve(addr)
}
