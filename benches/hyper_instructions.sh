#!/bin/bash
# Instructions per request of one hyper server (benches/hyper.rs, HYPER_BENCH_SERVE), under
# callgrind, for a fixed number of requests sent by wrk (hyper_count.lua).
#   benches/hyper_instructions.sh BENCH_BINARY loop|tokio CONNECTIONS REQUESTS SECONDS
# prints the requests wrk counted and the server process's instructions. Run it with two
# request counts and divide the differences (start-up and in-flight requests cancel out);
# SECONDS must be long enough for REQUESTS under valgrind (wrk waits that long regardless).
set -euo pipefail
BIN=$1; SIDE=$2; C=$3; N=$4; D=$5
DIR=$(mktemp -d)
trap 'rm -rf "$DIR"' EXIT
HYPER_BENCH_SERVE=$SIDE HYPER_BENCH_SECS=$((D + 4)) timeout $((D + 60)) \
    valgrind --tool=callgrind --callgrind-out-file="$DIR/cg.out" "$BIN" >"$DIR/serve.log" 2>"$DIR/vg.log" &
VPID=$!
for _ in $(seq 1 100); do grep -q listening "$DIR/serve.log" && break; sleep 0.5; done
ADDR=$(sed -n 's/listening on //p' "$DIR/serve.log")
WRK_REQUESTS=$N timeout $((D + 20)) wrk -t1 -c"$C" -d"${D}s" -s "$(dirname "$0")/hyper_count.lua" \
    "$ADDR/home" >"$DIR/wrk.log"
REQ=$(sed -n 's/^ *\([0-9]*\) requests in.*/\1/p' "$DIR/wrk.log")
wait $VPID
echo "$SIDE c=$C requests=$REQ instructions=$(grep -m1 '^summary:' "$DIR/cg.out" | cut -d' ' -f2)"
