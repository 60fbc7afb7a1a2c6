#!/usr/bin/env bash
# Runs the fuzz targets (fuzz/: cargo-fuzz and libFuzzer) for a bounded time each, starting
# from their committed corpora (fuzz/corpus/TARGET/); fails on the first crash, whose input
# libFuzzer leaves in fuzz/artifacts/TARGET/ (replay it: cargo fuzz run TARGET FILE).
#   scripts/fuzz.sh                  # every target, 20 s each
#   scripts/fuzz.sh 600 mentions     # one target for ten minutes
# cargo-fuzz (installed when absent) passes flags only a nightly compiler takes;
# RUSTC_BOOTSTRAP=1 lets the stable one take them. The instrumented build goes to
# ${CARGO_TARGET_DIR:-~/.cache/ticketflow/target}/fuzz, outside the clone, and is reused; so
# are the inputs each run finds (its corpus/ there), so later runs start further on. The
# committed corpora stay small, hand-picked seeds.
# Knob: TICKETFLOW_FUZZ_SANITIZER (default none: the targets run safe Rust; `address` adds
# AddressSanitizer at about half the speed).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../fuzz"

seconds="${1:-20}"
shift || true
export RUSTC_BOOTSTRAP=1
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/ticketflow/target}/fuzz"
sanitizer="${TICKETFLOW_FUZZ_SANITIZER:-none}"

command -v cargo-fuzz >/dev/null 2>&1 || cargo install --locked cargo-fuzz --version 0.13.2

targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    mapfile -t targets < <(cargo fuzz list)
fi

# One build of the whole fuzz workspace; each `cargo fuzz run` below then finds it fresh.
cargo fuzz build --sanitizer "$sanitizer"

for target in "${targets[@]}"; do
    found="$CARGO_TARGET_DIR/corpus/$target"
    mkdir -p "$found"
    log="$CARGO_TARGET_DIR/$target.log"
    # New inputs go to the first directory (outside the clone); the seeds are only read.
    if ! cargo fuzz run --sanitizer "$sanitizer" "$target" "$found" "corpus/$target" -- \
        -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -dict=dict \
        -print_final_stats=1 >"$log" 2>&1; then
        tail -n 80 "$log" >&2
        printf 'fuzz: %s failed; its input is in fuzz/artifacts/%s/ (whole log: %s)\n' \
            "$target" "$target" "$log" >&2
        exit 1
    fi
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
    printf 'fuzz: %-16s %ss, %s inputs, no crash\n' "$target" "$seconds" "$runs" >&2
done
