#!/usr/bin/env bash
# Load test of examples/blocking_server with wrk: for each mode (sync, chunked, offload), start
# the server (release build), run wrk against /home while one client requests /primes over and
# over, print wrk's requests/s and latency percentiles, then stop the server.
#
# Needs wrk and curl (Debian: apt-get install -y wrk curl). Not part of .ci/run.
# Settings (environment): DURATION (default 5s), CONNECTIONS (16), THREADS (2), NTH (300000),
# MODES ("sync chunked offload").
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION=${DURATION:-5s}
CONNECTIONS=${CONNECTIONS:-16}
THREADS=${THREADS:-2}
NTH=${NTH:-300000}
MODES=${MODES:-"sync chunked offload"}

SCRIPT=benches/wrk.sh
# shellcheck source=benches/wrk_common.sh
source benches/wrk_common.sh

echo "wrk -t$THREADS -c$CONNECTIONS -d$DURATION --latency /home, one client looping on /primes?nth=$NTH"
machine

for mode in $MODES; do
    echo
    echo "=== mode $mode"
    "$BIN" --mode "$mode" --port 0 > "$WORK/server.out" 2>&1 &
    SERVER_PID=$!
    URL=""
    for _ in $(seq 100); do
        URL=$(sed -n 's/^listening on \(http:[^ ]*\).*/\1/p' "$WORK/server.out")
        [[ -n "$URL" ]] && break
        sleep 0.1
    done
    if [[ -z "$URL" ]]; then
        echo "the server did not start:" >&2
        cat "$WORK/server.out" >&2
        exit 1
    fi

    # One client, one /primes request at a time, for as long as wrk runs.
    (
        n=0
        while curl -s --max-time 60 -o /dev/null "$URL/primes?nth=$NTH"; do
            n=$((n + 1))
            echo "$n" > "$WORK/primes.count"
        done
    ) &
    PRIMES_PID=$!
    sleep 0.2 # let the first search start before the load does

    wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" --latency "$URL/home" | tee "$WORK/wrk.out" \
        | grep -E 'Requests/sec|Latency |^ +(50|75|90|99)%|requests in|timeout|Non-2xx' || true
    echo "/primes?nth=$NTH answered during the run: $(cat "$WORK/primes.count" 2> /dev/null || echo 0)"

    kill "$PRIMES_PID" 2> /dev/null || true
    wait "$PRIMES_PID" 2> /dev/null || true
    PRIMES_PID=""
    kill "$SERVER_PID" 2> /dev/null || true
    wait "$SERVER_PID" 2> /dev/null || true
    SERVER_PID=""
    rm -f "$WORK/primes.count"
done
