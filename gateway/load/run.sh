#!/usr/bin/env bash
# Load test of the gateway example with wrk (Debian package `wrk`), against the fake upstream
# answering after 500 ms. From the repository root: bash benches/gateway_load/run.sh
# Not run by CI. Prints wrk's report for exact hits, semantic hits and misses.
set -euo pipefail
cd "$(dirname "$0")/../.."
DURATION=${DURATION:-15s}
cargo build --release --example gateway --example fake_upstream
target/release/examples/fake_upstream --listen 127.0.0.1:18000 --delay-ms 500 &
UP=$!
target/release/examples/gateway --listen 127.0.0.1:18080 --upstream http://127.0.0.1:18000/v1 &
GW=$!
trap 'kill $GW $UP 2>/dev/null' EXIT
sleep 1
URL=http://127.0.0.1:18080/v1/chat/completions
outcomes() { curl -s http://127.0.0.1:18080/metrics | grep -E '^paracache_gateway_requests_total' | tr '\n' ' '; echo; }
curl -s -o /dev/null "$URL" -H 'content-type: application/json' -H 'authorization: Bearer load-test' \
  -d '{"model":"m","temperature":0,"messages":[{"role":"user","content":"How do I reset my password?"}]}'
echo "== exact hits (the prompt stored first)"
wrk -t2 -c32 -d"$DURATION" --latency -s benches/gateway_load/exact.lua "$URL"
echo "== warm the 100 prompts for the semantic run"
wrk -t1 -c100 -d2s -s benches/gateway_load/warm.lua "$URL" > /dev/null
outcomes
echo "== semantic hits"
wrk -t2 -c32 -d"$DURATION" --latency -s benches/gateway_load/semantic.lua "$URL"
outcomes
echo "== misses (each one a 500 ms upstream call)"
wrk -t2 -c64 -d"$DURATION" --latency -s benches/gateway_load/miss.lua "$URL"
outcomes
