#!/usr/bin/env bash
# Past one machine: M blocking_server processes (one loop each) on loopback behind HAProxy, and
# the same measurement as `cargo bench --bench cluster` (tests/support/pitfall.rs) through it:
# /home p50/p99/max while k = 0 .. M+1 heavy /primes run at once, once per balancing algorithm.
#
# The crate distributes nothing itself: past one machine, users run several processes behind a
# real load balancer. HAProxy's `roundrobin` is as blind to a blocked process as Node.js's
# cluster is to a blocked worker; `leastconn` counts each server's open connections, and a
# process stuck in a search holds that search's connection, so new requests go elsewhere.
#
# Needs haproxy (Debian: `apt-get install -y haproxy`); run as root, the script installs it.
# Stops everything it started (servers, HAProxy) on exit, also on Ctrl-C.
#
#   bash benches/balanced.sh                  # M=2, --mode sync, roundrobin and leastconn
#   M=3 MODE=chunked BALANCE=leastconn bash benches/balanced.sh
set -euo pipefail

M=${M:-2}
MODE=${MODE:-sync}
BALANCE=${BALANCE:-roundrobin leastconn}
NTH=${NTH:-1000000}
case "$M" in '' | *[!0-9]* | 0) echo "balanced.sh: M must be a whole number >= 1, got '$M'" >&2; exit 2 ;; esac
case "$MODE" in sync | chunked | offload) ;; *) echo "balanced.sh: MODE must be sync, chunked or offload, got '$MODE'" >&2; exit 2 ;; esac

if ! command -v haproxy > /dev/null; then
    if [ "$(id -u)" = 0 ] && command -v apt-get > /dev/null; then
        echo "balanced.sh: installing haproxy (apt-get install -y haproxy)" >&2
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q haproxy > /dev/null
    else
        echo "balanced.sh: needs haproxy; install it with: sudo apt-get install -y haproxy" >&2
        exit 1
    fi
fi

cd "$(dirname "$0")/.."
cargo build --release --quiet --example blocking_server
cargo bench --quiet --bench cluster --no-run 2> /dev/null
BIN=target/release/examples/blocking_server

WORK=$(mktemp -d)
PIDS=()   # the servers
HAPROXY=""
cleanup() {
    for pid in $HAPROXY "${PIDS[@]}"; do
        kill -TERM "$pid" 2> /dev/null || true
    done
    for pid in $HAPROXY "${PIDS[@]}"; do
        wait "$pid" 2> /dev/null || true
    done
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Waits (at most 10 s) for `listening on http://ADDR` in file $1 and prints ADDR.
listening_addr() {
    for _ in $(seq 100); do
        if addr=$(grep -m1 -o 'listening on http://[^ ]*' "$1" 2> /dev/null); then
            echo "${addr#listening on http://}"
            return 0
        fi
        sleep 0.1
    done
    echo "balanced.sh: no 'listening on' line in $1" >&2
    return 1
}

SERVERS=""
for i in $(seq "$M"); do
    "$BIN" --mode "$MODE" --max-heavy 64 > "$WORK/server$i.out" 2>&1 &
    PIDS+=($!)
    SERVERS+="    server s$i $(listening_addr "$WORK/server$i.out")"$'\n'
done
LB_PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')

echo "HAProxy $(haproxy -v | head -1 | awk '{print $3}') on 127.0.0.1:$LB_PORT in front of $M x blocking_server --mode $MODE"
for balance in $BALANCE; do
    cat > "$WORK/haproxy.cfg" << EOF
global
    maxconn 4096
defaults
    mode http
    timeout connect 5s
    timeout client 120s
    timeout server 120s
frontend web
    bind 127.0.0.1:$LB_PORT
    default_backend servers
backend servers
    balance $balance
$SERVERS
EOF
    haproxy -db -f "$WORK/haproxy.cfg" > "$WORK/haproxy.out" 2>&1 &
    HAPROXY=$!
    for _ in $(seq 100); do
        if python3 -c "import socket; socket.create_connection(('127.0.0.1', $LB_PORT), 1)" 2> /dev/null; then
            break
        fi
        sleep 0.1
    done
    CLUSTER_BENCH_ADDR="127.0.0.1:$LB_PORT" \
        CLUSTER_BENCH_LABEL="haproxy $balance, ${M}x$MODE" \
        CLUSTER_BENCH_MAX_K=$((M + 1)) \
        CLUSTER_BENCH_NTH="$NTH" \
        cargo bench --quiet --bench cluster
    kill -TERM "$HAPROXY"
    wait "$HAPROXY" 2> /dev/null || true
    HAPROXY=""
    echo
done
