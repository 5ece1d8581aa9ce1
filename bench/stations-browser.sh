#!/usr/bin/env bash
# Start and switch times of stations in the browser, from a release build: runs
# tests/e2e/stations.test.mjs with LANMEET_STATION_RUNS fresh pages (default 10), each
# timing a click on a station in the list to its first frame shown and Next station to
# the other station's picture, writes the runs to bench/stations-browser.json and
# rewrites the Stations section of BENCHMARKS.md with their median and worst.
#
#   bash bench/stations-browser.sh
#   LANMEET_STATION_RUNS=3 BENCH_CONDITIONS="..." bash bench/stations-browser.sh
#
# On a machine others keep busy, run it under `chrt -f 50` and say so in
# BENCH_CONDITIONS (written under the figures).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -p lanmeet-server -p lanmeet-loadgen
export LANMEET_STATION_RUNS="${LANMEET_STATION_RUNS:-10}"
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
node --test tests/e2e/stations.test.mjs 2>&1 | tee "$log"
python3 - "$log" <<'PY'
import datetime, json, os, subprocess, sys
runs = {"station_start_ms": [], "station_switch_ms": []}
with open(sys.argv[1]) as f:
    for line in f:
        parts = line.split("METRIC ", 1)
        if len(parts) == 2:
            name, value = parts[1].split()[:2]
            if name in runs:
                runs[name].append(float(value))
# The first viewer's start is timed from opening the page; the runs are the last ones.
n = int(os.environ["LANMEET_STATION_RUNS"])
root = os.getcwd()
commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
out = {
    "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
    "commit": commit,
    "start_ms": runs["station_start_ms"][-n:],
    "switch_ms": runs["station_switch_ms"][-n:],
    "conditions": os.environ.get("BENCH_CONDITIONS",
        "Release build, server and headless Chromium (one browser process, a fresh page per run) on this machine's loopback; stations are 10 s 320x240 VP8 at 15 fps with a key frame every second (`tests/e2e/stations.test.mjs`)."),
}
with open(os.path.join(root, "bench", "stations-browser.json"), "w") as f:
    json.dump(out, f, indent=1)
print("start ms:", out["start_ms"], "switch ms:", out["switch_ms"])
PY
BENCH_REPORT_ONLY=stations python3 bench/bench.py
