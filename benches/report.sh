#!/usr/bin/env bash
# Runs every benchmark and prints their ratios: each against a baseline
# measured in the same run, on the same machine.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2 / 1048576}' /proc/meminfo), $(rustc --version)"
echo
for bench in overhead behaviors throughput; do
    cargo bench --quiet --bench "$bench" 2>/dev/null
    echo
done
python3 benches/compile_cost.py
