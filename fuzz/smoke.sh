#!/usr/bin/env bash
# Smoke run of the fuzz harness, for CI: installs cargo-fuzz when it is missing, builds every
# target on the stable toolchain and runs each one for FUZZ_SECS seconds (default 20) from the
# committed seeds, with the same limits as the long runs (README.md here). Exits non-zero when a
# target crashes, hangs, leaks, allocates too much or breaks one of its properties; the
# reproducer is then in fuzz/artifacts/<target>/. The inputs it finds go to a temporary
# directory, so the work tree is left as it was.
#
#   bash fuzz/smoke.sh                 # every target, 20 s each
#   FUZZ_SECS=600 bash fuzz/smoke.sh scan config
set -euo pipefail
cd "$(dirname "$0")"

secs=${FUZZ_SECS:-20}
# The sanitizer and coverage flags cargo-fuzz passes are -Z flags; stable rustc takes them with
# RUSTC_BOOTSTRAP=1 (no nightly toolchain can be fetched here).
export RUSTC_BOOTSTRAP=1
export CARGO_TERM_COLOR=never
target_dir=${CARGO_TARGET_DIR:-$PWD/target}
export CARGO_TARGET_DIR=$target_dir

# Largest input each target gets (-max_len).
declare -A max_len=([classify]=16384 [shebang]=1024 [binfmt]=2200 [scan]=4096 [config]=4096 [spec]=8192)
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(classify shebang binfmt scan config spec)

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "== installing cargo-fuzz"
    cargo install cargo-fuzz --version '^0.13' --locked
fi
# cargo caches rustc's answers in the target dir without keying them on RUSTC_BOOTSTRAP: a build
# once tried without it keeps failing with "only accepted on the nightly compiler".
if grep -qs 'only accepted on the nightly' "$target_dir/.rustc_info.json"; then
    rm -f "$target_dir/.rustc_info.json"
fi

echo "== building fuzz targets"
cargo fuzz build

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
passed=0
failed=0
for t in "${targets[@]}"; do
    mkdir -p "$work/$t"
    log="$work/$t.log"
    if cargo fuzz run "$t" "$work/$t" "corpus/$t" -- \
        -max_total_time="$secs" -max_len="${max_len[$t]:-4096}" -timeout=5 \
        -rss_limit_mb=1024 -malloc_limit_mb=16 -print_final_stats=1 >"$log" 2>&1; then
        runs=$(grep -Eo '^stat::number_of_executed_units: *[0-9]+' "$log" | grep -Eo '[0-9]+$' || echo '?')
        cov=$(grep -Eo 'cov: [0-9]+' "$log" | tail -1 | grep -Eo '[0-9]+' || echo '?')
        echo "fuzz $t: ok, $runs runs in ${secs} s, cov $cov"
        passed=$((passed + 1))
    else
        echo "fuzz $t: FAILED (reproducer in fuzz/artifacts/$t/)"
        grep -v '^INFO:\|^#[0-9]' "$log" | tail -40
        failed=$((failed + 1))
    fi
done
echo "fuzz: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
