#!/usr/bin/env bash
# A chunked /primes job under an I/O flood: for each number of connections (1, 50, 500), start
# examples/blocking_server in chunked mode, once with fixed chunks (Strategy::Adaptive, 500 us)
# and once holding a share of the loop (--chunk-share, Strategy::Share), run wrk against /home
# while one client requests /primes over and over, and print /home's p99 latency and the median
# time of a /primes request.
#
# Needs wrk and curl (Debian: apt-get install -y wrk curl). Not part of .ci/run.
# Settings (environment): DURATION (default 6s), THREADS (2), NTH (300000), SHARE (50),
# CONNECTIONS ("1 50 500"), ROUNDS (1; the whole table again, to see the noise), KEEP_WRK (a path
# prefix: keep wrk's full output there).
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION=${DURATION:-6s}
THREADS=${THREADS:-2}
NTH=${NTH:-300000}
SHARE=${SHARE:-50}
CONNECTIONS=${CONNECTIONS:-"1 50 500"}

SCRIPT=benches/wrk_share.sh
# shellcheck source=benches/wrk_common.sh
source benches/wrk_common.sh

# The median of the numbers in file $1 (one per line), or "-" if there are none.
median() {
    sort -g "$1" | awk '{ v[NR] = $1 } END { if (NR == 0) print "-"; else print v[int((NR + 1) / 2)] }'
}

echo "wrk -t$THREADS -d$DURATION --latency /home, one client looping on /primes?nth=$NTH"
machine
printf '%-12s %-22s %12s %12s %14s %10s\n' connections chunks "/home req/s" "/home p99" "/primes median" "/primes n"

for round in $(seq "${ROUNDS:-1}"); do
for conns in $CONNECTIONS; do
    for variant in fixed share; do
        args=(--mode chunked --port 0 --idle-timeout-ms 60000)
        label="fixed 500us"
        if [[ $variant == share ]]; then
            args+=(--chunk-share "$SHARE")
            label="share $SHARE% (>=500us)"
        fi
        "$BIN" "${args[@]}" > "$WORK/server.out" 2>&1 &
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
        : > "$WORK/primes.times"
        (
            while curl -s --max-time 60 -o /dev/null -w '%{time_total}\n' \
                "$URL/primes?nth=$NTH" >> "$WORK/primes.times"; do :; done
        ) &
        PRIMES_PID=$!
        sleep 0.2 # let the first search start before the load does
        threads=$((conns < THREADS ? conns : THREADS))
        wrk -t"$threads" -c"$conns" -d"$DURATION" --latency "$URL/home" > "$WORK/wrk.out" || true
        kill "$PRIMES_PID" 2> /dev/null || true
        wait "$PRIMES_PID" 2> /dev/null || true
        PRIMES_PID=""
        [[ -n "${KEEP_WRK:-}" ]] && cp "$WORK/wrk.out" "$KEEP_WRK.$conns.$variant"
        rps=$(awk '/Requests\/sec/ { print $2 }' "$WORK/wrk.out")
        p99=$(awk '$1 == "99%" { print $2 }' "$WORK/wrk.out")
        # Only the requests that ran under load: the first started 0.2 s before wrk (it is
        # dropped), the one cut short by the kill printed nothing.
        tail -n +2 "$WORK/primes.times" > "$WORK/primes.loaded"
        n=$(wc -l < "$WORK/primes.loaded")
        med="$(median "$WORK/primes.loaded")s"
        [[ $n -eq 0 ]] && med="none in $DURATION"
        printf '%-12s %-22s %12s %12s %14s %10s\n' "$conns" "$label" "$rps" "$p99" "$med" "$n"
        kill "$SERVER_PID" 2> /dev/null || true
        wait "$SERVER_PID" 2> /dev/null || true
        SERVER_PID=""
    done
done
done
