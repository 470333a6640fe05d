#!/usr/bin/env bash
# A sustained ingest run as BENCHMARKS.md records them: a fresh data dir, `sightline serve` with
# its defaults (durable acks with fsync), `sightline loadgen` for SECS seconds on the same
# machine, then the loadgen report, the server's CPU in cores, its peak RSS (VmHWM) and the data
# dir's size.
#
#   benches/sustained.sh BIN SIGNAL SECS            # SIGNAL: traces | logs | metrics | mix
#   PERF=1 benches/sustained.sh BIN traces 300      # + 30 s of `perf record --call-graph dwarf`
#                                                   #   from minute 2 into $PERF_OUT
#
# BIN is a release build (`cargo build --release`). Quote medians of several runs: these
# machines are noisy. Fold a profile with `benches/perf_frames.py`.
set -euo pipefail
BIN=$1 SIGNAL=$2 SECS=$3
PERF_OUT=${PERF_OUT:-/tmp/sightline-perf.data}
DIR=$(mktemp -d /tmp/sightline-bench.XXXX)
"$BIN" serve --data-dir "$DIR/data" --otlp-grpc-addr 127.0.0.1:14317 \
  --otlp-http-addr 127.0.0.1:14318 --http-addr 127.0.0.1:18080 > "$DIR/server.log" 2>&1 &
SERVER=$!
trap 'kill $SERVER 2>/dev/null || true; rm -rf "$DIR"' EXIT
for _ in $(seq 1 150); do
  curl -s -o /dev/null http://127.0.0.1:18080/ && break
  sleep 0.2
done
cpu() { awk '{print $14 + $15}' "/proc/$SERVER/stat"; }
CPU0=$(cpu) T0=$(date +%s.%N)
"$BIN" loadgen --signal "$SIGNAL" --duration-secs "$SECS" \
  --endpoint http://127.0.0.1:14317 > "$DIR/loadgen.log" 2>&1 &
LOADGEN=$!
if [ "${PERF:-0}" = 1 ]; then
  sleep 120
  perf record -F 99 --call-graph dwarf,16384 -o "$PERF_OUT" -p "$SERVER" -- sleep 30 \
    > /dev/null 2>&1
fi
wait $LOADGEN
CPU1=$(cpu) T1=$(date +%s.%N)
grep -A8 "loadgen report" "$DIR/loadgen.log"
TICKS=$(getconf CLK_TCK)
echo "server cores: $(echo "($CPU1 - $CPU0) / $TICKS / ($T1 - $T0)" | bc -l | cut -c1-5)" \
  " $(grep VmHWM "/proc/$SERVER/status")"
kill $SERVER
wait $SERVER 2>/dev/null || true
echo "data dir: $(du -sb "$DIR/data" | cut -f1) bytes"
