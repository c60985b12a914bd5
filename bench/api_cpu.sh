#!/bin/bash
# Gateway CPU per API call of `pushgate load push`, for the process and for its
# event-loop thread (utime+stime from /proc/PID/stat and /proc/PID/task/PID/stat).
#
#   bench/api_cpu.sh CHECKOUT simple 2000 16        # CHECKOUT holds a .venv
#   bench/api_cpu.sh CHECKOUT multiple 20 4 [TARGETS]
#
# A fresh `pushgate serve` (rate limit off, new database) per run; 50 calls
# warm it up before the measured ones.
set -u
REPO=$1; TYPE=$2; COUNT=$3; CONC=$4; TARGETS=${5:-1000}
D=$(mktemp -d /tmp/api_cpu.XXXX)
"$REPO/.venv/bin/pushgate" serve --db "$D/p.db" --api-port 0 --ws-port 0 --tcp-port 0 \
    --app load:loadkey:s --rate-limit 0 --log-level warning > "$D/out" 2> "$D/err" &
PID=$!
for _ in $(seq 100); do grep -q '^api=' "$D/out" && break; sleep 0.2; done
API=$(grep '^api=' "$D/out" | cut -d= -f2)
load() {
    "$REPO/.venv/bin/pushgate" load push --api "$API" --key loadkey --type "$TYPE" \
        --targets "$TARGETS" "$@" > /dev/null
}
cpu() { awk '{print $14+$15}' "$1"; }
load --count 50 --concurrency 4
T0=$(cpu /proc/$PID/stat); L0=$(cpu /proc/$PID/task/$PID/stat)
load --count "$COUNT" --concurrency "$CONC"
T1=$(cpu /proc/$PID/stat); L1=$(cpu /proc/$PID/task/$PID/stat)
TCK=$(getconf CLK_TCK)
echo "$REPO $TYPE: server CPU per call $(( (T1 - T0) * 1000000 / TCK / COUNT )) us," \
    "event loop $(( (L1 - L0) * 1000000 / TCK / COUNT )) us"
kill $PID; wait $PID 2>/dev/null; rm -rf "$D"
