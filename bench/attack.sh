#!/usr/bin/env bash
# Usage: bench/attack.sh <lanmeet binary> <attack binary> <attack> [port]
# (attack binary: cargo build --release -p lanmeet-server --example attack;
# environment: WORKERS (2), NOFILE (1024), EXTRA (more server flags)).
# Starts the server (plain HTTP on 127.0.0.1, soft open-file limit 1024 as on a default
# desktop), runs one attack against it, prints the attack's report, stops the server.
set -euo pipefail
bin=$1 attack=$2 kind=$3 port=${4:-18443}
data=$(mktemp -d /tmp/lanmeet-attack-XXXX)
(ulimit -Sn ${NOFILE:-1024}; exec "$bin" serve --http --listen 127.0.0.1:$port --data-dir "$data" \
   --udp-port 0 --workers ${WORKERS:-2} --public-ip 127.0.0.1 --chat-burst 1000 --chat-rate 1000 ${EXTRA:-}) \
   >"$data/out.log" 2>"$data/err.log" &
pid=$!
for _ in $(seq 100); do grep -q "ready at" "$data/out.log" 2>/dev/null && break; sleep 0.1; done
"$attack" "$kind" 127.0.0.1:$port $pid || true
kill -TERM $pid; wait $pid || true
grep -iE "open-file" "$data/err.log" | head -2 || true; echo "server log: removed (does not read) $(grep -c "does not read\|a send timed out" "$data/err.log"), no join in time $(grep -c "no join in time" "$data/err.log"), frame over the limit $(grep -c "frame over the limit" "$data/err.log")"
rm -rf "$data"
