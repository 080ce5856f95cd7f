#!/usr/bin/env bash
# Peer comparison: cluster_load's shape on Fabric, Ray and Dask, run one
# after the other on this box from one invocation, then printed side by side
# (a Markdown table, for BENCHMARKS.md).
#
#   benches/peers.sh
#
# The shape (benches/cluster_load.rs): FABRIC_BENCH_TASKS trivial tasks
# (default 20000, cluster_load's own default) in a closed loop with
# FABRIC_BENCH_INFLIGHT in flight (512), in tasks/s; then an open loop for
# FABRIC_BENCH_SECONDS (5; 0 skips it) at half each system's own closed-loop
# rate (or at FABRIC_BENCH_RATE tasks/s for all three), as p50/p99 latency
# from submit to result. Fabric: a dispatcher and 2 in-process workers, every
# result flushed to disk before it is acknowledged. Ray: ray.init(num_cpus=2).
# Dask: a LocalCluster of 2 worker processes, 1 thread each. Ray and Dask
# keep their results in memory only. See benches/peers.py.
#
# Ray and Dask run from a virtualenv the script makes itself the first time
# (FABRIC_PEERS_VENV, default target/peers-venv: python3 -m venv, then
# pip install ray 'dask[distributed]'; FABRIC_PEERS_PYTHON picks the Python,
# default python3). Fabric's bench binary is built in release (cargo bench
# --no-run, as benches/ab.sh builds it) unless FABRIC_PEERS_BIN names one
# built before. Traffic stays on 127.0.0.1. Every run is bounded by its own
# phase limits and, around it, by FABRIC_PEERS_LIMIT seconds (default 900).
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
export FABRIC_BENCH_TASKS=${FABRIC_BENCH_TASKS:-20000}
export FABRIC_BENCH_INFLIGHT=${FABRIC_BENCH_INFLIGHT:-512}
export FABRIC_BENCH_SECONDS=${FABRIC_BENCH_SECONDS:-5}
venv=${FABRIC_PEERS_VENV:-${CARGO_TARGET_DIR:-$root/target}/peers-venv}
python=${FABRIC_PEERS_PYTHON:-python3}
limit=${FABRIC_PEERS_LIMIT:-900}

die() {
    echo "peers.sh: $*" >&2
    exit 1
}

# The knobs must be whole numbers: cluster_load would silently take its
# default for anything else, and the three would not run the same shape.
for knob in FABRIC_BENCH_TASKS FABRIC_BENCH_INFLIGHT FABRIC_BENCH_SECONDS FABRIC_BENCH_RATE; do
    [[ ${!knob:-0} =~ ^[0-9]+$ ]] || die "$knob must be a whole number, not '${!knob}'"
done
((FABRIC_BENCH_TASKS > 0)) || die "FABRIC_BENCH_TASKS must be at least 1"
[[ $limit =~ ^[1-9][0-9]*$ ]] || die "FABRIC_PEERS_LIMIT must be a number of seconds, not '$limit'"

# Installs python3-venv (Debian's ensurepip) the way .ci/run installs what
# it needs, if the Python has no venv support.
need_venv_module() {
    "$python" -c 'import ensurepip, venv' >/dev/null 2>&1 && return
    command -v apt-get >/dev/null || die "$python has no venv/ensurepip module and there is no apt-get to install python3-venv"
    echo "==> apt-get install python3-venv" >&2
    local sudo=()
    [[ $(id -u) -eq 0 ]] || sudo=(sudo)
    DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get update -qq
    DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq python3-venv
    "$python" -c 'import ensurepip, venv' >/dev/null 2>&1 ||
        die "$python still has no venv/ensurepip module after installing python3-venv (is $python Debian's python3?)"
}

if ! "$venv/bin/python" -c 'import ray, dask.distributed' >/dev/null 2>&1; then
    command -v "$python" >/dev/null || die "no '$python' on PATH (set FABRIC_PEERS_PYTHON)"
    need_venv_module
    echo "==> $python -m venv $venv; pip install ray 'dask[distributed]'" >&2
    "$python" -m venv "$venv" || die "could not make a virtualenv at $venv"
    "$venv/bin/pip" install -q --disable-pip-version-check ray 'dask[distributed]' ||
        die "pip install ray 'dask[distributed]' into $venv failed"
    "$venv/bin/python" -c 'import ray, dask.distributed' || die "ray or dask.distributed does not import in $venv"
fi
versions=$("$venv/bin/python" -c 'from importlib.metadata import version; print(version("ray"), version("distributed"))') ||
    die "cannot read the versions of ray and distributed in $venv"
read -r ray_version dask_version <<<"$versions"

# What the Fabric row ran: this checkout (its commit, "-dirty" with changes
# not committed) or a binary built before.
fabric_label="Fabric (FABRIC_PEERS_BIN)"
if [[ -z ${FABRIC_PEERS_BIN:-} ]]; then
    fabric_label="Fabric $(git -C "$root" describe --always --dirty 2>/dev/null || echo '(this checkout)')"
    command -v cargo >/dev/null || die "no cargo on PATH to build cluster_load (or set FABRIC_PEERS_BIN)"
    echo "==> building cluster_load in release (cargo bench --no-run)..." >&2
    FABRIC_PEERS_BIN=$(cd "$root" && cargo bench -p fabric-benches --bench cluster_load --no-run --message-format=json |
        grep -o '"executable":"[^"]*cluster_load[^"]*"' | tail -1 | cut -d'"' -f4) ||
        die "building cluster_load failed"
fi
[[ -x $FABRIC_PEERS_BIN ]] || die "no cluster_load bench binary at '$FABRIC_PEERS_BIN'"

work=$(mktemp -d /tmp/fabric-peers.XXXXXX)
child=
trap 'rm -rf "$work"' EXIT
# On Ctrl-C, stop the run under way: SIGTERM to the bench itself (the child
# of timeout), which lets peers.py shut Ray or Dask down before it exits.
trap '[[ -z $child ]] || { pkill -TERM -P "$child"; wait "$child" || true; }; exit 130' INT TERM

# Prints "<closed-loop tasks/s> <open-loop rate> <p50 ms> <p99 ms>" from a
# run's output: cluster_load's ("end to end, closed loop:  3233 tasks/s",
# "open loop at 1617/s (...):" and then "submit-to-recorded: p50 X ms p99 Y
# ms") or peers.py's ("ray closed loop: 1160 tasks/s (...)", "ray open loop
# at 580/s: p50 X ms p99 Y ms"); "-" for an open loop not run.
parse() {
    awk -v seconds="$FABRIC_BENCH_SECONDS" '
        function after(line, key) {
            if (!sub(".*" key " +", "", line)) return ""
            sub(/ .*/, "", line)
            return line
        }
        /closed loop: *[0-9]/ { closed = after($0, "closed loop:") }
        /open loop at [0-9]/ { rate = after($0, "open loop at"); sub(/\/s.*/, "", rate); open = 1 }
        open && p50 == "" && / p50 +[0-9]/ { p50 = after($0, "p50"); p99 = after($0, "p99") }
        END {
            if (closed == "") exit 1
            if (seconds == 0 || p50 == "") rate = p50 = p99 = "-"
            print closed, rate, p50, p99
        }' "$1" || die "no closed-loop figure in $(basename "$1")'s output (above)"
}

# Runs system $1 (the command after it), output to $work/$1, within $limit
# seconds (timeout signals the command's whole process group: Ray's and
# Dask's helper processes too), prints that output, and keeps its figures in
# $work/$1.row.
run_one() {
    local name=$1 rc=0
    shift
    echo "==> $name" >&2
    timeout --kill-after=10 "$limit" "$@" >"$work/$name" 2>&1 &
    child=$!
    wait "$child" || rc=$?
    child=
    cat "$work/$name"
    case $rc in
        0) ;;
        124) die "$name did not end within $limit s (FABRIC_PEERS_LIMIT)" ;;
        *) die "$name failed (exit $rc); its output is above" ;;
    esac
    local row
    row=$(parse "$work/$name")
    echo "$row" >"$work/$name.row"
}

started=$(date -u '+%Y-%m-%d %H:%M UTC')
load_before=$(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || echo '?')
run_one fabric "$FABRIC_PEERS_BIN"
run_one ray "$venv/bin/python" "$root/benches/peers.py" ray
run_one dask "$venv/bin/python" "$root/benches/peers.py" dask
load_after=$(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || echo '?')

open_note="then $FABRIC_BENCH_SECONDS s open loop at half each system's own closed-loop rate"
[[ ${FABRIC_BENCH_RATE:-0} == 0 ]] || open_note="then $FABRIC_BENCH_SECONDS s open loop at $FABRIC_BENCH_RATE tasks/s"
((FABRIC_BENCH_SECONDS > 0)) || open_note="no open loop (FABRIC_BENCH_SECONDS=0)"
echo
echo "peers.sh, $started, $(nproc) CPUs, load average $load_before before and $load_after after;"
echo "Fabric: $FABRIC_PEERS_BIN (built $(date -u -r "$FABRIC_PEERS_BIN" '+%Y-%m-%d %H:%M UTC'))"
echo "$FABRIC_BENCH_TASKS trivial tasks, $FABRIC_BENCH_INFLIGHT in flight (closed loop); $open_note"
echo
fmt='| %-25s | %20s | %19s | %10s | %10s | %-15s |\n'
# shellcheck disable=SC2059 # the format is the table's, kept in one place
printf "$fmt" system "closed loop, tasks/s" "open loop, tasks/s" "p50, ms" "p99, ms" "durable results"
echo "| --- | --- | --- | --- | --- | --- |"
for row in "fabric|$fabric_label|yes" "ray|Ray $ray_version|no" "dask|Dask $dask_version|no"; do
    IFS='|' read -r name label durable <<<"$row"
    read -r closed rate p50 p99 <"$work/$name.row"
    # shellcheck disable=SC2059
    printf "$fmt" "$label" "$closed" "$rate" "$p50" "$p99" "$durable"
done
echo
echo "Durable results: Fabric's are written to sled and flushed to disk before they are acknowledged; Ray's and Dask's are held in memory."
