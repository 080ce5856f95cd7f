#!/usr/bin/env bash
# A/B of cluster_load: this checkout against a baseline commit, run side by
# side on the same box, interleaved, and printed as a ratio.
#
#   benches/ab.sh [BASE_REV]
#
# BASE_REV defaults to 1cb3502, the last commit before the hardening of
# issue 9 (the figure "cluster_load shows no throughput lost to the fixes").
# Both bench binaries are built in release; the baseline in a git worktree
# with its own target dir (FABRIC_AB_TARGET, default target/ab-base), which
# is a full wasmtime build the first time (about 10 minutes on 2 cores).
#
# The builds run in turns on the whole box, who goes first alternating, and
# each pair of neighbouring runs is compared (the geometric mean of their
# ratios), so slow drift on a shared box falls on both alike.
#
# Knobs (env): FABRIC_AB_RUNS pairs of runs (default 8), FABRIC_BENCH_TASKS
# per run (default 10000), FABRIC_AB_BASE_BIN / FABRIC_AB_NOW_BIN to use bench
# binaries built before instead of building. Every run is bounded by the
# bench's own phase limits.
set -euo pipefail

base_rev=${1:-1cb3502}
runs=${FABRIC_AB_RUNS:-8}
export FABRIC_BENCH_TASKS=${FABRIC_BENCH_TASKS:-10000}
export FABRIC_BENCH_SECONDS=${FABRIC_BENCH_SECONDS:-0} # no half-rate phase: only the closed loop is compared
root=$(git rev-parse --show-toplevel)

# Prints the path of the cluster_load bench binary built in the current dir.
build_bench() {
    cargo bench -p fabric-benches --bench cluster_load --no-run --message-format=json 2>/dev/null |
        grep -o '"executable":"[^"]*cluster_load[^"]*"' | tail -1 | cut -d'"' -f4
}

if [[ -z ${FABRIC_AB_BASE_BIN:-} ]]; then
    tree=$(mktemp -d /tmp/fabric-ab.XXXXXX)
    trap 'git -C "$root" worktree remove --force "$tree" >/dev/null 2>&1 || true' EXIT
    git -C "$root" worktree add -q --detach "$tree" "$base_rev"
    echo "building the baseline ($base_rev) in release..." >&2
    FABRIC_AB_BASE_BIN=$(cd "$tree" && CARGO_TARGET_DIR=${FABRIC_AB_TARGET:-$root/target/ab-base} build_bench)
fi
if [[ -z ${FABRIC_AB_NOW_BIN:-} ]]; then
    echo "building this checkout in release..." >&2
    FABRIC_AB_NOW_BIN=$(cd "$root" && build_bench)
fi
for bin in "$FABRIC_AB_BASE_BIN" "$FABRIC_AB_NOW_BIN"; do
    [[ -x $bin ]] || { echo "ab.sh: no bench binary at '$bin' (did the build fail?)" >&2; exit 1; }
done

# One run of bench $1 (output to $2); prints "<tasks/s> <cpu seconds>"
# (user + sys of the whole run).
run_one() {
    local out cpu
    TIMEFORMAT='%U %S'
    if ! cpu=$( { time "$1" >"$2" 2>&1; } 2>&1); then
        echo "ab.sh: $1 failed:" >&2
        cat "$2" >&2
        return 1
    fi
    out=$(sed -n 's/.*closed loop: *\([0-9]*\) tasks.*/\1/p' "$2")
    [[ -n $out ]] || { echo "ab.sh: no closed-loop figure in the bench's output:" >&2; cat "$2" >&2; return 1; }
    echo "$out $(echo "$cpu" | awk '{print $1 + $2}')"
}

work=$(mktemp -d)
echo "run  base tasks/s  now tasks/s  now/base  base cpu s  now cpu s"
for ((i = 1; i <= runs; i++)); do
    if ((i % 2)); then
        run_one "$FABRIC_AB_BASE_BIN" "$work/base.out" >"$work/base"
        run_one "$FABRIC_AB_NOW_BIN" "$work/now.out" >"$work/now"
    else
        run_one "$FABRIC_AB_NOW_BIN" "$work/now.out" >"$work/now"
        run_one "$FABRIC_AB_BASE_BIN" "$work/base.out" >"$work/base"
    fi
    read -r base_rate base_cpu <"$work/base"
    read -r now_rate now_cpu <"$work/now"
    echo "$base_rate $now_rate $base_cpu $now_cpu" >>"$work/results"
    awk -v i="$i" '{ printf "%3d  %13s  %11s  %8.3f  %10.1f  %9.1f\n", i, $1, $2, $2 / $1, $3, $4 }' <<<"$base_rate $now_rate $base_cpu $now_cpu"
done

awk -v base_rev="$base_rev" '
    { b += $1; n += $2; lr += log($2 / $1); lr2 += log($2 / $1) ^ 2; cb += $3; cn += $4; k++; if ($2 >= $1) wins++ }
    END {
        g = exp(lr / k)
        sd = k > 1 ? sqrt((lr2 - lr * lr / k) / (k - 1)) : 0
        half = 2 * sd / sqrt(k)
        printf "\nbaseline (%s): mean %.0f tasks/s, cpu %.1f s a run\n", base_rev, b / k, cb / k
        printf "this checkout:    mean %.0f tasks/s, cpu %.1f s a run\n", n / k, cn / k
        printf "ratio now / baseline (%d pairs): %.3f (geometric mean of the pairs; about 95%% between %.3f and %.3f); now at least as fast in %d of %d\n", k, g, exp(lr / k - half), exp(lr / k + half), wins, k
    }' "$work/results"
rm -rf "$work"
