#!/usr/bin/env bash
# Load test of the paracache gateway with wrk (Debian package `wrk`), against the fake upstream
# answering after 500 ms. Not run by CI. Prints wrk's report for exact hits, semantic hits and
# misses, and the gateway's request counters after each phase.
#
# From the repository (workspace) root:
#   bash gateway/load/run.sh
#   DURATION=30s bash gateway/load/run.sh      # longer phases (default 15s)
#
# It builds both binaries of the paracache-gateway package in release mode and runs them on
# 127.0.0.1:18000 (fake upstream) and 127.0.0.1:18080 (gateway, default flags: HashEmbedder,
# threshold 0.85, no snapshot); both are stopped on exit.
set -euo pipefail
cd "$(dirname "$0")/../.."
DURATION=${DURATION:-15s}
LOAD=gateway/load
cargo build --release -p paracache-gateway --bins
target/release/fake_upstream --listen 127.0.0.1:18000 --delay-ms 500 &
UP=$!
target/release/paracache-gateway --listen 127.0.0.1:18080 --upstream http://127.0.0.1:18000/v1 &
GW=$!
trap 'kill $GW $UP 2>/dev/null' EXIT
sleep 1
URL=http://127.0.0.1:18080/v1/chat/completions
outcomes() { curl -s http://127.0.0.1:18080/metrics | grep -E '^paracache_gateway_requests_total' | tr '\n' ' '; echo; }
curl -s -o /dev/null "$URL" -H 'content-type: application/json' -H 'authorization: Bearer load-test' \
  -d '{"model":"m","temperature":0,"messages":[{"role":"user","content":"How do I reset my password?"}]}'
echo "== exact hits (the prompt stored first)"
wrk -t2 -c32 -d"$DURATION" --latency -s "$LOAD/exact.lua" "$URL"
echo "== warm the 100 prompts for the semantic run"
wrk -t1 -c100 -d2s -s "$LOAD/warm.lua" "$URL" > /dev/null
outcomes
echo "== semantic hits"
wrk -t2 -c32 -d"$DURATION" --latency -s "$LOAD/semantic.lua" "$URL"
outcomes
echo "== misses (each one a 500 ms upstream call)"
wrk -t2 -c64 -d"$DURATION" --latency -s "$LOAD/miss.lua" "$URL"
outcomes
