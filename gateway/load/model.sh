#!/usr/bin/env bash
# The gateway with the real sentence-embedding model (all-MiniLM-L6-v2, feature bert) in front of
# the fake upstream answering at once, so the latencies are the gateway's own: what a semantic miss
# costs (embedding, search, upstream round trip on loopback, storing), and what a paraphrase hit
# costs end to end (embedding and search). Not run by CI. Needs Debian's wrk and the model
# (`bash .ci/fetch-model`). From the repository (workspace) root:
#   bash gateway/load/model.sh
#   GATEWAY_DIR=/path/to/other/checkout bash gateway/load/model.sh   # the same phases on another build
# Phases (DURATION each, default 15s):
#   misses, 1 connection      a new prompt of random tokens each time: one embedding per request
#   misses, 8 connections     the same, 8 at a time: concurrent embeddings (micro-batched)
#   paraphrase hits, 1 conn.  a stored English prompt with a punctuation run never sent before
#   paraphrase hits, 8 conn.  the same, 8 at a time
# After each phase, the change in the gateway's counters by outcome shows what was measured.
set -euo pipefail
cd "$(dirname "$0")/../.."
DURATION=${DURATION:-15s}
LOAD=$PWD/gateway/load
MODEL=${PARACACHE_MODEL_DIR:-$PWD/target/models/all-MiniLM-L6-v2}
DIR=${GATEWAY_DIR:-$PWD}
(cd "$DIR" && cargo build --release -p paracache-gateway --features bert --bins)
BIN=${CARGO_TARGET_DIR:-$DIR/target}/release
"$BIN/fake_upstream" --listen 127.0.0.1:18001 --delay-ms 0 &
UP=$!
"$BIN/paracache-gateway" --listen 127.0.0.1:18081 --upstream http://127.0.0.1:18001/v1 --model-dir "$MODEL" &
GW=$!
trap 'kill $GW $UP 2>/dev/null' EXIT
for _ in $(seq 50); do curl -s -o /dev/null http://127.0.0.1:18081/metrics && break; sleep 0.2; done
URL=http://127.0.0.1:18081/v1/chat/completions

counters() {
  curl -s http://127.0.0.1:18081/metrics | awk '
    /^paracache_gateway_requests_total\{/ { match($0, /outcome="[^"]*"/); print substr($0, RSTART + 9, RLENGTH - 10), $2 }
    /^paracache_gateway_upstream_seconds_count/ { print "upstream_calls", $2 }'
}
changed() {
  counters | awk -v before="$1" '
    BEGIN { n = split(before, lines, "\n"); for (i = 1; i <= n; i++) { split(lines[i], f, " "); old[f[1]] = f[2] } }
    { d = $2 - old[$1]; if (d != 0) printf "%s +%d  ", $1, d } END { print "" }'
}
phase() { # name, threads, connections, script
  local before
  before=$(counters)
  echo "== $1"
  wrk -t"$2" -c"$3" -d"$DURATION" --latency -s "$LOAD/$4" "$URL"
  echo "-- counters during $1: $(changed "$before")"
}

SEED_BASE=1000 phase "misses, 1 connection" 1 1 miss.lua
SEED_BASE=2000 phase "misses, 8 connections" 2 8 miss.lua
echo "== store the 32 English prompts"
wrk -t1 -c1 -d2s -s "$LOAD/model_store.lua" "$URL" > /dev/null
THREAD_BASE=0 phase "paraphrase hits, 1 connection" 1 1 model_paraphrase.lua
THREAD_BASE=10 phase "paraphrase hits, 8 connections" 2 8 model_paraphrase.lua
