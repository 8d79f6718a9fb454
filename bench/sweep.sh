#!/usr/bin/env bash
# Sweep benchmark: `execguard check --rootfs ROOT --all` against `file` (libmagic) over the same
# programs (every regular file with an execute bit, as `find -xdev -type f -perm /111` lists
# them), in interleaved hyperfine passes.
#
# Usage: bash bench/sweep.sh [--smoke] [EXECGUARD_BINARY]
#   BENCH_ROOT    the root to sweep (default: $EXECGUARD_FIXTURES/minbase, which .ci/setup makes)
#   BENCH_RUNS    runs per command (default 60; --smoke: 3)
#   BENCH_ROUNDS  hyperfine passes with the command order rotated, merged (default 4; smoke: 1)
# Prints one markdown table and exits 0; BENCH_KEEP=DIR keeps the raw hyperfine JSON.
set -euo pipefail

SMOKE=0
EG=""
for a in "$@"; do
    case "$a" in
        --smoke) SMOKE=1 ;;
        *) EG="$a" ;;
    esac
done
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
TOP="$(dirname "$HERE")"
if [ -z "$EG" ]; then
    EG="$TOP/target/$(rustc --print host-tuple)/release/execguard"
    [ -x "$EG" ] || (cd "$TOP" && cargo build --release >&2)
fi
EG="$(readlink -f "$EG")"
ROOT="${BENCH_ROOT:-${EXECGUARD_FIXTURES:-/var/cache/execguard-fixtures}/minbase}"
if [ "$SMOKE" = 1 ]; then
    RUNS=${BENCH_RUNS:-3}; ROUNDS=1; WARM=1
else
    RUNS=${BENCH_RUNS:-60}; ROUNDS=${BENCH_ROUNDS:-4}; WARM=5
fi
for t in hyperfine file jq strace find; do
    command -v "$t" >/dev/null || { echo "sweep.sh: $t is missing (apt-get install hyperfine file jq strace findutils)" >&2; exit 1; }
done
[ -d "$ROOT" ] || { echo "sweep.sh: no root at $ROOT (see .ci/setup: debootstrap --variant=minbase bookworm)" >&2; exit 1; }

TMP="$(mktemp -d /tmp/execguard-sweep-bench.XXXXXX)"
cleanup() {
    if [ -n "${BENCH_KEEP:-}" ]; then mkdir -p "$BENCH_KEEP" && cp -r "$TMP"/. "$BENCH_KEEP"/ || true; fi
    rm -rf "$TMP"
}
trap cleanup EXIT

# The same programs for both: execguard's own walk is part of its time, `file` gets the list.
LIST="$TMP/programs.txt"
find "$ROOT" -xdev -type f -perm /111 >"$LIST"
N_FILE=$(wc -l <"$LIST")
"$EG" check --rootfs "$ROOT" --all --format json >"$TMP/sweep.json" && RC=0 || RC=$?
N_EG=$(jq -r '.reports[0].checked' "$TMP/sweep.json")
ERRORS=$(jq -r '.reports[0].summary.errors' "$TMP/sweep.json")
[ "$N_EG" = "$N_FILE" ] || echo "sweep.sh: warning: execguard checked $N_EG programs, find listed $N_FILE" >&2

# hf RUNS ROUNDS -- NAME1 CMD1 NAME2 CMD2 ...: rotated passes merged into $TMP/merged.json
hf() {
    local runs="$1" rounds="$2"; shift 3
    local names=() cmds=()
    while [ $# -gt 0 ]; do names+=("$1"); cmds+=("$2"); shift 2; done
    local n=${#names[@]} per=$(( (runs + rounds - 1) / rounds )) r i k
    for ((r = 0; r < rounds; r++)); do
        local args=()
        for ((i = 0; i < n; i++)); do
            k=$(( (i + r) % n ))
            args+=(-n "${names[$k]}" "${cmds[$k]}")
        done
        hyperfine -N -i --style none --warmup "$WARM" --runs "$per" \
            --export-json "$TMP/hf.$r.json" "${args[@]}" >"$TMP/hf.$r.txt" 2>&1 \
            || { cat "$TMP/hf.$r.txt" >&2; return 1; }
    done
    jq -s '
      def med: sort | if length % 2 == 1 then .[length/2|floor] else (.[length/2-1] + .[length/2]) / 2 end;
      [.[].results[]] | group_by(.command) | map({
        name: .[0].command,
        times: ([.[].times[]]),
        cpu: ([.[] | (.user + .system)] | add / length),
        round_medians: [.[].median]
      }) | map(. + {n: (.times | length), median: (.times | med), min: (.times | min), max: (.times | max)} | del(.times))' \
      "$TMP"/hf.*.json >"$TMP/merged.json"
}
get() { jq -r --arg n "$1" ".[] | select(.name == \$n) | .$2" "$TMP/merged.json"; }
ms() { awk -v x="$1" 'BEGIN { printf "%.1f", x * 1000 }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
rspread() {
    jq -r --arg a "$1" --arg b "$2" '
      (.[] | select(.name == $a) | .round_medians) as $x |
      (.[] | select(.name == $b) | .round_medians) as $y |
      [range(0; $x | length) | $x[.] / $y[.]] | "\(min*100|round/100)..\(max*100|round/100)"' "$TMP/merged.json"
}

hf "$RUNS" "$ROUNDS" -- \
    "execguard" "$EG check --rootfs $ROOT --all" \
    "file" "file -f $LIST" \
    "find+file" "find $ROOT -xdev -type f -perm /111 -exec file {} +"

strace -f -c -o "$TMP/strace.txt" "$EG" check --rootfs "$ROOT" --all >/dev/null 2>&1 || true
SYSCALLS=$(awk '$NF == "total" { print $(NF-2) }' "$TMP/strace.txt")
RSS=$( { /usr/bin/time -v "$EG" check --rootfs "$ROOT" --all >/dev/null; } 2>&1 | awk -F': ' '/Maximum resident/ { print $2 }' || echo n/a)

E=$(get execguard median); F=$(get file median); FF=$(get find+file median)
row() { printf '| %s | %s | %s |\n' "$1" "$2" "$3"; }
span() { printf '%s..%s ms, %s runs' "$(ms "$(get "$1" min)")" "$(ms "$(get "$1" max)")" "$(get "$1" n)"; }
echo "execguard sweep benchmark: $(nproc) CPUs, kernel $(uname -r), $(file --version | head -1), root $ROOT ($N_EG programs, exit $RC, $ERRORS errors)"
echo "$RUNS runs per command in $ROUNDS rotated hyperfine passes$([ "$SMOKE" = 1 ] && echo ' (SMOKE: figures meaningless)')"
echo
echo "| measurement | figure | spread / note |"
echo "| --- | --- | --- |"
row "execguard check --rootfs --all (median)" "$(ms "$E") ms" "$(span execguard); CPU $(ms "$(get execguard cpu)") ms"
row "file -f LIST, same programs (median)" "$(ms "$F") ms" "$(span file); CPU $(ms "$(get file cpu)") ms"
row "find + file (median)" "$(ms "$FF") ms" "$(span find+file)"
row "file / execguard (target >= 5)" "$(ratio "$F" "$E")" "per pass $(rspread file execguard)"
row "find+file / execguard" "$(ratio "$FF" "$E")" "per pass $(rspread find+file execguard)"
row "CPU time, file / execguard" "$(ratio "$(get file cpu)" "$(get execguard cpu)")" "user + system, mean"
row "execguard per program" "$(awk -v e="$E" -v n="$N_EG" 'BEGIN { printf "%.0f", e * 1e6 / n }') µs" "$SYSCALLS syscalls in all (strace -f -c)"
row "execguard peak RSS" "$RSS KiB" "/usr/bin/time -v"
exit 0
