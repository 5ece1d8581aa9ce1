#!/usr/bin/env bash
# Runs every test of lanmeet: Rust unit, scenario and server tests, the client's type
# check, and the end-to-end tests in headless Chromium and Firefox ESR. Installs what is
# missing on a fresh Debian machine (chromium, firefox-esr and xvfb via apt-get, npm
# packages via npm ci) and fails loudly
# when it cannot: the browser tests are never skipped.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '\n==> %s\n' "$*"; }
as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

if ! command -v chromium >/dev/null 2>&1; then
  log "installing chromium (apt-get)"
  as_root apt-get update -q
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium
fi
command -v chromium >/dev/null || { echo "chromium is required for the browser tests" >&2; exit 1; }

# The Firefox leg (tests/e2e/firefox.test.mjs) drives Debian's firefox-esr; its screen
# share captures a virtual X display (Xvfb), as headless Firefox has no fake screen.
if ! command -v firefox-esr >/dev/null 2>&1 || ! command -v Xvfb >/dev/null 2>&1; then
  log "installing firefox-esr and xvfb (apt-get)"
  as_root apt-get update -q
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q firefox-esr xvfb
fi
command -v firefox-esr >/dev/null || { echo "firefox-esr is required for the browser tests" >&2; exit 1; }

# The bandwidth test puts a browser in a network namespace behind a tc limit (ip, tc).
if ! command -v ip >/dev/null 2>&1 || ! command -v tc >/dev/null 2>&1; then
  log "installing iproute2 (apt-get)"
  as_root apt-get update -q
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q iproute2
fi

# A server test runs lanmeet under a frozen wall clock (faketime) to show that
# participant ids never repeat across restarts.
if ! command -v faketime >/dev/null 2>&1; then
  log "installing faketime (apt-get)"
  as_root apt-get update -q
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q faketime
fi

# Station tests make their media (WebM VP8/Opus, Ogg Opus) with ffmpeg.
if ! command -v ffmpeg >/dev/null 2>&1; then
  log "installing ffmpeg (apt-get)"
  as_root apt-get update -q
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q ffmpeg
fi

if [ ! -d node_modules/playwright-core ] || [ ! -d node_modules/puppeteer-core ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  log "installing npm packages (npm ci)"
  npm ci --no-audit --no-fund
fi

log "cargo test (release)"
cargo test --release --workspace --locked

log "checking the browser client's JSDoc types"
npx --no-install tsc -p web/jsconfig.json

log "checking the browser tests' JSDoc types"
npx --no-install tsc -p tests/e2e/jsconfig.json

log "browser client logic without a browser (grid pages and layout)"
node --test tests/web/

log "the mediasoup benchmark peer's SDP handling (no mediasoup needed)"
node --test bench/mediasoup/sdp.test.mjs

log "end-to-end tests in headless Chromium and Firefox ESR"
cargo build --release --locked -p lanmeet-server -p lanmeet-loadgen
LANMEET_BIN="$PWD/target/release/lanmeet" LANMEET_LOADGEN_BIN="$PWD/target/release/lanmeet-loadgen" \
  node --test --test-concurrency=1 tests/e2e/
log "all tests passed"
