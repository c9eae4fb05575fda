# Sourced by benches/wrk.sh and benches/wrk_share.sh: checks for wrk and curl, builds the
# release server, and sets up a work folder and a cleanup that stops only the processes the
# script started (SERVER_PID, PRIMES_PID), by their ids. Expects SCRIPT (the caller's name).

for tool in wrk curl; do
    if ! command -v "$tool" > /dev/null; then
        echo "$SCRIPT: $tool is not installed (Debian: apt-get install -y $tool)" >&2
        exit 1
    fi
done

cargo build --release --quiet --example blocking_server
BIN=target/release/examples/blocking_server

WORK=$(mktemp -d)
SERVER_PID=""
PRIMES_PID=""
cleanup() {
    [[ -n "$PRIMES_PID" ]] && kill "$PRIMES_PID" 2> /dev/null || true
    [[ -n "$SERVER_PID" ]] && kill "$SERVER_PID" 2> /dev/null || true
    wait 2> /dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT

# The machine, for the figures' header.
machine() {
    echo "$(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //')"
}
