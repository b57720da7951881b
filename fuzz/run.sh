#!/usr/bin/env bash
# Fuzzes each target in fuzz/fuzz_targets for SECONDS (default 60), starting from the committed
# seeds in fuzz/corpus/<target>/. Installs cargo-fuzz if it is missing, builds the demo module
# libraries the targets load, and exits non-zero at the first crash (the input is saved under
# fuzz/artifacts/<target>/; the output says how to replay it). fuzz/README.md has the details.
#
#   fuzz/run.sh 60                 what CI runs after the tests
#   fuzz/run.sh 3600 logic         one target for an hour
#
# Stable Rust only: the targets are built without a sanitizer (`--sanitizer none`), which needs
# no nightly flag. SANITIZER=address builds them with AddressSanitizer instead, through
# RUSTC_BOOTSTRAP=1 (a separate, slower build).
set -euo pipefail

seconds=${1:-60}
shift || true
case $seconds in
    '' | *[!0-9]*) echo "usage: fuzz/run.sh SECONDS [TARGET...]" >&2; exit 2 ;;
esac
fuzz_dir=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$fuzz_dir")
cd "$root"

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "== installing cargo-fuzz"
    cargo install cargo-fuzz --locked
fi

sanitizer=${SANITIZER:-none}
build=(--fuzz-dir "$fuzz_dir" --sanitizer "$sanitizer")
if [ "$sanitizer" != none ]; then
    export RUSTC_BOOTSTRAP=1
fi

targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    for file in "$fuzz_dir"/fuzz_targets/*.rs; do
        name=$(basename "$file" .rs)
        targets+=("$name")
    done
fi

echo "== building the demo modules the targets load, and the targets (sanitizer: $sanitizer)"
cargo build -p activity -p mall -p player
cargo fuzz build "${build[@]}"

# New inputs go to a scratch folder, so the committed seeds stay as they are.
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT

# libFuzzer's output without a line per new input and without its dictionary advice.
quiet() {
    grep --line-buffered -v -E -e '^#[0-9]+[[:space:]]+(NEW|REDUCE)' -e 'NEW_FUNC' -e 'Uses: ' -e '^###### ' || true
}

for target in "${targets[@]}"; do
    corpus=$fuzz_dir/corpus/$target
    found=$scratch/$target
    mkdir -p "$found"
    echo "== fuzzing $target for ${seconds}s, from $(find "$corpus" -type f | wc -l) seeds"
    started=$(date +%s)
    status=0
    cargo fuzz run "${build[@]}" "$target" "$found" "$corpus" -- \
        -max_total_time="$seconds" -max_len=4096 -timeout=10 \
        -dict="$fuzz_dir/json.dict" -print_final_stats=1 2>&1 | quiet || status=$?
    echo "== $target: exit $status after $(($(date +%s) - started))s, $(find "$found" -type f | wc -l) new inputs"
    if [ "$status" -ne 0 ]; then
        echo "== $target found a failure: the input is in fuzz/artifacts/$target/" >&2
        exit "$status"
    fi
done
echo "== fuzzing passed: ${targets[*]}"
