#!/usr/bin/env bash
# High availability (issue 26), measured on this box:
#
#  1. cluster_load with one dispatcher and with a group of three on Raft
#     (FABRIC_BENCH_DISPATCHERS=3), side by side, interleaved, as a ratio;
#  2. failover: three `fabric dispatcher` processes and a worker; ten times,
#     kill -9 the leader and time from the kill to the first acknowledged
#     submit (`fabric submit`, which follows the new leader), then restart the
#     killed one; prints p50 and max.
#
#   benches/ha.sh
#
# Knobs (env): FABRIC_HA_PAIRS (default 4) pairs of cluster_load runs,
# FABRIC_BENCH_TASKS per run (default 5000), FABRIC_HA_KILLS (default 10),
# FABRIC_HA_LOG (the dispatchers' FABRIC_LOG, default warn), FABRIC_HA_KEEP=1
# (keep their logs).
# Built in release; every wait is bounded.
set -euo pipefail
root=$(git rev-parse --show-toplevel)
cd "$root"
pairs=${FABRIC_HA_PAIRS:-4}
kills=${FABRIC_HA_KILLS:-10}
export FABRIC_BENCH_TASKS=${FABRIC_BENCH_TASKS:-5000}
export FABRIC_BENCH_SECONDS=${FABRIC_BENCH_SECONDS:-0}

echo "building cluster_load (release) and fabric..." >&2
bench=$(cargo bench -p fabric-benches --bench cluster_load --no-run --message-format=json 2>/dev/null |
    grep -o '"executable":"[^"]*cluster_load[^"]*"' | tail -1 | cut -d'"' -f4)
# The failover part times elections and timeouts, not CPU: the dev build
# the tests use does (FABRIC_HA_RELEASE=1 builds and uses the release one).
if [[ -n ${FABRIC_HA_RELEASE:-} ]]; then
    cargo build --release -p fabric-cli >&2
    fabric=$root/target/release/fabric
else
    cargo build -p fabric-cli >&2
    fabric=$root/target/debug/fabric
fi

rate() { # dispatchers -> tasks/s
    FABRIC_BENCH_DISPATCHERS=$1 timeout 600 "$bench" | grep 'end to end, closed loop' | awk '{print $6}'
}
declare -a one=() three=()
for ((i = 0; i < pairs; i++)); do
    if ((i % 2 == 0)); then a=$(rate 1); b=$(rate 3); else b=$(rate 3); a=$(rate 1); fi
    one+=("$a"); three+=("$b")
    echo "pair $((i + 1)): 1 dispatcher $a tasks/s, 3 dispatchers $b tasks/s" >&2
done
((pairs > 0)) && python3 - "${one[*]}" "${three[*]}" <<'PY'
import math, sys
one = [float(x) for x in sys.argv[1].split()]
three = [float(x) for x in sys.argv[2].split()]
r = math.exp(sum(math.log(b / a) for a, b in zip(one, three)) / len(one))
print(f"cluster_load: 1 dispatcher {sorted(one)[len(one)//2]:.0f} tasks/s (median), "
      f"3 dispatchers {sorted(three)[len(three)//2]:.0f} tasks/s; ratio 3/1 {r:.3f} (geometric mean of {len(one)} pairs)")
PY

# Failover.
dir=$(mktemp -d /tmp/fabric-ha.XXXXXX)
pids=()
cleanup() {
    kill -9 "${pids[@]}" 2>/dev/null || true
    pkill -9 -f "$dir" 2>/dev/null || true
    if [[ -n ${FABRIC_HA_KEEP:-} ]]; then echo "logs kept in $dir" >&2; else rm -rf "$dir"; fi
}
trap cleanup EXIT
port() { python3 -c 'import socket; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
declare -a key addr
for i in 0 1 2; do
    key[$i]=$("$fabric" admin node-key --data-dir "$dir/d$i")
    addr[$i]=127.0.0.1:$(port)
done
start() { # i
    local i=$1 peers=()
    for j in 0 1 2; do [[ $j != "$i" ]] && peers+=(--peer "${key[$j]}@${addr[$j]}"); done
    FABRIC_LOG=${FABRIC_HA_LOG:-warn} "$fabric" dispatcher --data-dir "$dir/d$i" --listen "${addr[$i]}" --no-mdns --no-api \
        --cluster "$dir/d$i.toml" "${peers[@]}" >"$dir/d$i.log" 2>&1 &
    pid[$i]=$!
    pids+=("$!")
}
declare -a pid
for i in 0 1 2; do start "$i"; done
for i in 0 1 2; do
    for _ in $(seq 1 600); do grep -q '^ready' "$dir/d$i.log" && break; sleep 0.1; done
done
"$fabric" worker --join "$(cat "$dir/d0/join-token")" --dispatcher "${addr[0]}" \
    --peer "${key[1]}@${addr[1]}" --peer "${key[2]}@${addr[2]}" --slots 2 --data-dir "$dir/w" >"$dir/w.log" 2>&1 &
pids+=("$!")
# A wasm32-wasip1 module the tests build (any module does: only the
# submit's acknowledgement is timed).
wasm=$(ls "$root"/target/guests/wasm32-wasip1/release/*.wasm 2>/dev/null | head -1)
[[ -n $wasm ]] || { echo "no example guest built: run cargo build -p fabric-tests first" >&2; exit 1; }
leader() {
    for i in 0 1 2; do
        if timeout 5 "$fabric" --cluster "$dir/d$i.toml" admin members --json 2>/dev/null |
            python3 -c 'import json,sys; sys.exit(0 if any(m["this"] and m["role"]=="leader" for m in json.load(sys.stdin)) else 1)'; then
            echo "$i"; return
        fi
    done
    return 1
}
declare -a took
for ((k = 0; k < kills; k++)); do
    l=""
    for _ in $(seq 1 100); do l=$(leader) && break; sleep 0.2; done
    [[ -n $l ]] || { echo "no leader" >&2; exit 1; }
    other=$(((l + 1) % 3))
    kill -9 "${pid[$l]}"
    t0=$(date +%s%N)
    ok=""
    for _ in $(seq 1 200); do
        if timeout 10 "$fabric" --cluster "$dir/d$other.toml" submit "$wasm" >/dev/null 2>&1; then ok=1; break; fi
    done
    t1=$(date +%s%N)
    [[ -n $ok ]] || { echo "no submit acknowledged after the kill" >&2; exit 1; }
    took+=($(((t1 - t0) / 1000000)))
    echo "kill $((k + 1)): member $l; first acknowledged submit after ${took[-1]} ms" >&2
    start "$l"
    for _ in $(seq 1 600); do grep -c '^ready' "$dir/d$l.log" >/dev/null && break; sleep 0.1; done
    sleep 3
done
python3 - "${took[*]}" <<'PY'
import sys
t = sorted(int(x) for x in sys.argv[1].split())
print(f"failover over {len(t)} kills of the leader: p50 {t[len(t)//2]} ms, max {t[-1]} ms (kill -9 to the first acknowledged submit)")
PY
