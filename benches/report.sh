#!/usr/bin/env bash
# Runs every benchmark and prints their ratios: each against a baseline
# measured in the same run, on the same machine. Wall-clock ratios move
# with the machine's load; the instruction counts below them (callgrind)
# do not, so both are printed. `--instructions` prints the counts alone.
set -euo pipefail
cd "$(dirname "$0")/.."

# The executable named NAME that `cargo ARGS...` builds, as cargo reports it.
built() {
    local name=$1
    shift
    cargo "$@" --message-format=json 2>/dev/null |
        python3 -c 'import json, sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m.get("executable") and m["target"]["name"] == sys.argv[1]:
        print(m["executable"])' "$name" | tail -n 1
}

echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2 / 1048576}' /proc/meminfo), $(rustc --version)"
echo
if [ "${1:-}" != "--instructions" ]; then
    # The order API's baseline, measured in the same run: the tree before
    # group commit, built once under target/, and today's server beside it.
    baseline_server=$(benches/order_api_baseline.sh) || {
        echo "order API baseline skipped: its build failed" >&2
        baseline_server=
    }
    if [ -n "$baseline_server" ]; then
        ORDER_API_SERVER=$(built order_api build --release --example order_api)
        export ORDER_API_SERVER ORDER_API_BASELINE_SERVER="$baseline_server"
    else
        unset ORDER_API_SERVER ORDER_API_BASELINE_SERVER
    fi
    for bench in overhead behaviors throughput durable order_api; do
        cargo bench --quiet --bench "$bench" 2>/dev/null
        echo
    done
    python3 benches/compile_cost.py
    echo
fi

if ! command -v valgrind >/dev/null; then
    echo "instruction counts skipped: valgrind is not installed (apt-get install valgrind)"
    exit 0
fi

# The bench binary cargo built, by bench name.
binary() {
    built "$1" bench --bench "$1" --no-run
}

# Instructions in one process running CASE of BIN ITERS times.
collected() {
    WORKFLOW_BENCH_CASE="$2" WORKFLOW_BENCH_ITERS="$3" \
        valgrind --tool=callgrind --callgrind-out-file=/dev/null "$1" 2>&1 >/dev/null |
        awk '/Collected/ {print $NF}'
}

# Instructions per iteration: two runs, the difference cancels setup.
per_iter() {
    local n=2000 one two
    one=$(collected "$1" "$2" "$n")
    two=$(collected "$1" "$2" $((2 * n)))
    echo $(((two - one) / n))
}

# Instruction counts measured so far, by "bench case".
declare -A COUNTS

# BASE / CASE as a ratio with two decimals.
ratio() {
    awk -v a="$1" -v b="$2" 'BEGIN { if (b == 0) print "n/a"; else printf "%.2f", a / b }'
}

# Prints BASELINE's count, then each case's count and ratio against it.
compare() {
    local title=$1 bench=$2 bin base base_count case count
    bin=$(binary "$bench")
    base=$3
    shift 3
    base_count=$(per_iter "$bin" "$base")
    COUNTS["$bench $base"]=$base_count
    echo "$title (instructions per run, callgrind)"
    printf '  %-44s %12d\n' "$base" "$base_count"
    for case in "$@"; do
        count=$(per_iter "$bin" "$case")
        COUNTS["$bench $case"]=$count
        printf '  %-44s %12d   ratio %s\n' "$case" "$count" "$(ratio "$count" "$base_count")"
    done
    echo
}

compare "10-step workflow" overhead hand workflow chain bare floor
# The floor keeps by hand what the engine keeps for every step
# (benches/common/step_floor.rs): what no shape of the engine goes under.
printf '  against the floor: #[workflow] %s, chain %s; the floor against hand-written recording %s\n\n' \
    "$(ratio "${COUNTS["overhead workflow"]}" "${COUNTS["overhead floor"]}")" \
    "$(ratio "${COUNTS["overhead chain"]}" "${COUNTS["overhead floor"]}")" \
    "$(ratio "${COUNTS["overhead floor"]}" "${COUNTS["overhead hand"]}")"
compare "behaviors on the happy path" behaviors tower ours plain bare
# What the behaviors add: ours over the plain chain, tower over the bare call.
ours=$((COUNTS["behaviors ours"] - COUNTS["behaviors plain"]))
tower=$((COUNTS["behaviors tower"] - COUNTS["behaviors bare"]))
printf '  added by the behaviors: ours %d over the plain chain, tower %d over the bare call   ratio %s\n\n' \
    "$ours" "$tower" "$(ratio "$ours" "$tower")"
compare "one run, spawned and awaited" throughput spawn runner
compare "a 3-step run, durable on the in-memory store" durable plain memory
