#!/usr/bin/env bash
# Builds release binaries and runs the standard benchmark workloads against lanmeet, the
# no-crypto relay (ceiling) and the peers mediasoup and Janus, then writes BENCHMARKS.md.
# Lecture and capacity steps interleave the targets (each step runs against every target
# in turn, a fresh server each), so load from elsewhere falls on all of them alike.
# Publishers send simulcast like the browser (Janus: one layer; lanmeet also runs the
# capacity steps with one layer for that ratio); capacity steps are repeated (BENCH_QUICK: once) and must pass
# loss < 0.5% and p99 < 50 ms in every repeat; lanmeet's own forwarding delay comes from
# its /metrics (--metrics-listen 10.77.0.1:9100, read by the load generator).
#
#   sudo bash bench/run.sh                      # everything (about 30 minutes)
#   BENCH_TARGETS=lanmeet,relay bash bench/run.sh
#   BENCH_QUICK=1 bash bench/run.sh             # shorter meeting run
#   BENCH_TARGETS=lanmeet BENCH_WORKLOADS=capacity BENCH_SERVER_BIN=/tmp/lanmeet-old \
#     BENCH_OUT=/tmp/old.json bash bench/run.sh   # compare a server build; no BENCHMARKS.md
#   BENCH_REPORT_ONLY=1 python3 bench/bench.py  # rewrite BENCHMARKS.md from last-results.json
#   BENCH_TARGETS=lanmeet BENCH_WORKLOADS=stations bash bench/run.sh   # viewers of one station
#     only: rewrites the Stations section and row of BENCHMARKS.md, keeps the rest;
#     BENCH_CONDITIONS="..." is written under it (say how the machine was shared)
#
# Waits while Chromium e2e tests run (they assert frame rates); waits up to 5 minutes in
# all for other people's compilers, then measures and names the affected workloads.
# On a machine others keep busy: `BENCH_IGNORE_BUSY=1 chrt -r 50 bash bench/run.sh ...`
# measures at real-time priority without waiting (it slows their builds and browsers);
# round-robin, not FIFO: under `chrt -f` the load generator's threads of equal priority
# starve each other, and its mediasoup participants never finish signaling.
# Janus gets a config folder generated per run (never /etc/janus); its last log is kept in
# /tmp/lmb-janus-last.log.
#
# Needs root (network namespaces), python3, taskset; Janus from `apt-get install janus`;
# mediasoup's worker, built by bench/mediasoup/build.sh (Debian packages and npm only,
# about 10 minutes) on the first run; BENCH_LECTURE_STEPS=100,200 limits the lecture;
# perf for the profile. Creates namespaces lmb-srv and lmb-cli joined by a veth pair and
# removes them on exit, also when interrupted.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -p lanmeet-server -p lanmeet-loadgen
cleanup() { ip netns del lmb-srv 2>/dev/null || true; ip netns del lmb-cli 2>/dev/null || true; }
trap cleanup EXIT INT TERM
python3 bench/bench.py "$@"
