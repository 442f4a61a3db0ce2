#!/usr/bin/env bash
# Load test of the paracache gateway with wrk (Debian package `wrk`), against the fake upstream
# answering after 500 ms. Not run by CI. Four phases, each measuring what its name says, and after
# each the change in the gateway's request counters by outcome, which confirms it:
#   exact    one stored prompt asked again and again            -> exact hits
#   alias    100 stored prompts asked in lower case, each phrasing answered semantically once
#            before the phase                                     -> alias hits (exact tier)
#   semantic 100 stored prompts, each request a phrasing never sent before -> semantic hits
#   miss     a new random prompt each time                       -> misses (500 ms upstream calls)
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

# The gateway's counters as "name value" lines: requests by outcome, upstream calls and errors.
counters() {
  curl -s http://127.0.0.1:18080/metrics | awk '
    /^paracache_gateway_requests_total\{/ { match($0, /outcome="[^"]*"/); print substr($0, RSTART + 9, RLENGTH - 10), $2 }
    /^paracache_gateway_upstream_seconds_count/ { print "upstream_calls", $2 }
    /^paracache_gateway_upstream_errors_total/ { print "upstream_errors", $2 }'
}
# What changed in the counters since $1 (a counters() snapshot), as "name +delta" pairs.
changed() {
  counters | awk -v before="$1" '
    BEGIN { n = split(before, lines, "\n"); for (i = 1; i <= n; i++) { split(lines[i], f, " "); old[f[1]] = f[2] } }
    { d = $2 - old[$1]; if (d != 0) printf "%s +%d  ", $1, d } END { print "" }'
}
phase() { # name, connections, script
  local before
  before=$(counters)
  echo "== $1"
  wrk -t2 -c"$2" -d"$DURATION" --latency -s "$LOAD/$3" "$URL"
  echo "-- counters during $1: $(changed "$before")"
}

curl -s -o /dev/null "$URL" -H 'content-type: application/json' -H 'authorization: Bearer load-test' \
  -d '{"model":"m","temperature":0,"messages":[{"role":"user","content":"How do I reset my password?"}]}'
phase "exact hits (the prompt stored first)" 32 exact.lua

echo "== warm: store the 100 prompts, then ask each in lower case once (a semantic hit that makes it an alias)"
before=$(counters)
wrk -t1 -c100 -d2s -s "$LOAD/warm.lua" "$URL" > /dev/null
# One connection for a second: each lower-case phrasing is asked in turn, many times over.
wrk -t1 -c1 -d1s -s "$LOAD/alias.lua" "$URL" > /dev/null
echo "-- counters during warm: $(changed "$before")"

phase "alias hits (100 stored prompts, asked in lower case again)" 32 alias.lua
phase "semantic hits (100 stored prompts, a phrasing never sent before each time)" 32 semantic.lua
phase "misses (a new prompt each time, each one a 500 ms upstream call)" 64 miss.lua
