#!/bin/bash
# The whole GPU check in one command, for a machine reached through a device tool with little time:
# probe, every program built (first and second process: the on-disk cache), the test suite with the
# probe's paths and with CLBNB_PATH=generic, the benchmarks (JSON), the demo, and a >= 1 GB
# checkpoint conversion against a plain copy. Logs go to $OUT (default /tmp/clbnb-device-run); a
# short table is printed last. Usage: bench/device_run.sh [BUILD_DIR] (default build).
set -u
build="${1:-build}"
out="${OUT:-/tmp/clbnb-device-run}"
mkdir -p "$out"
export CLBNB_CACHE_DIR="${CLBNB_CACHE_DIR:-/tmp/clbnb-device-run-cache}"
rm -rf "$CLBNB_CACHE_DIR"
cli="$build/tools/clbnb"

"$cli" devices > "$out/devices.txt" 2>&1
"$cli" build > "$out/build-first-process.txt" 2>&1
"$cli" build > "$out/build-second-process.txt" 2>&1
ctest --test-dir "$build" --timeout 400 > "$out/ctest.txt" 2>&1
CLBNB_PATH=generic ctest --test-dir "$build" --timeout 400 -R "layers|demo|cli|checkpoint|copy|kernel_dir" \
    > "$out/ctest-generic.txt" 2>&1
"$cli" bench --runs "${RUNS:-100}" --json "$out/bench.json" > "$out/bench.txt" 2>&1
"$cli" demo > "$out/demo.txt" 2>&1

# `timed LABEL CMD...`: elapsed time and peak resident memory (elapsed only without /usr/bin/time)
timed() {
    local label="$1"
    shift
    if [ -x /usr/bin/time ]; then
        /usr/bin/time -f "$label %e s %M KB" "$@"
    else
        local t0
        t0=$(date +%s%N)
        "$@"
        echo "$label $(( ($(date +%s%N) - t0) / 1000000 )) ms (peak memory: no /usr/bin/time here)" >&2
    fi
}

# conversion of a synthetic >= 1 GB checkpoint against a plain copy of the same file
if command -v python3 >/dev/null; then
    python3 bench/make_checkpoint.py /tmp/clbnb-synth.safetensors 1 > "$out/convert.txt" 2>&1
    sync
    timed copy cp /tmp/clbnb-synth.safetensors /tmp/clbnb-synth-copy.safetensors 2>> "$out/convert.txt"
    timed quantize "$cli" quantize /tmp/clbnb-synth.safetensors /tmp/clbnb-synth-nf4.safetensors --type nf4 \
        --double-quant >> "$out/convert.txt" 2>&1
    timed "runtime baseline (clbnb devices)" "$cli" devices > /dev/null 2>> "$out/convert.txt"
    rm -f /tmp/clbnb-synth*.safetensors
fi

echo "== devices";  grep -E "device |NVIDIA|fp16|int8 dot|paths" "$out/devices.txt"
echo "== cache";    grep -h "CLBNB_" "$out/build-first-process.txt" "$out/build-second-process.txt"
echo "== tests";    grep -E "tests passed|Failed|\*\*\*" "$out/ctest.txt" "$out/ctest-generic.txt"
echo "== demo";     grep -E "^   [abc]\.|demo finished" "$out/demo.txt"
echo "== convert";  grep -vE "^\[" "$out/convert.txt"
echo "== bench";    grep -vE "^clbnb|^operation" "$out/bench.txt"
