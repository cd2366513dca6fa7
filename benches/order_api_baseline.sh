#!/usr/bin/env bash
# Builds the order API's server as it was before group commit (the tree
# at BASELINE, taken from this repository's history), and prints the path
# of its binary. The order API bench puts the same load on it and on
# today's server in the same run, round for round, so the disk's speed
# that day weighs on both sides of the ratio (`benches/order_api.rs`).
#
# The tree and its build are kept under target/, so only the first run
# builds it (some minutes on two cores). Prints nothing, and exits 0, when
# the history is not at hand (a source archive with no `.git`).
set -euo pipefail
cd "$(dirname "$0")/.."

# The parent of 07d373a ("SQLite group commit"): the tree whose order API
# answered 300 orders a second on the day group commit was measured.
BASELINE=20466c87af16ded02af5704634d7571b15281a75

if ! git cat-file -e "$BASELINE^{commit}" 2>/dev/null; then
    echo "order API baseline skipped: commit $BASELINE is not in this checkout's history" >&2
    exit 0
fi
root="$PWD/target/order-api-baseline"
src="$root/$BASELINE"
if [ ! -d "$src" ]; then
    # Extracted beside it and moved into place whole, so an interrupted
    # extraction is never taken for the tree.
    rm -rf "$src.partial"
    mkdir -p "$src.partial"
    git archive "$BASELINE" | tar -x -C "$src.partial"
    mv "$src.partial" "$src"
fi
(cd "$src" && CARGO_TARGET_DIR="$root/target" cargo build --quiet --release --locked --example order_api) >&2
echo "$root/target/release/examples/order_api"
