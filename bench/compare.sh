#!/usr/bin/env bash
# Whole-process benchmark of execguard against runc alone and against the C floor (bench/floor.c).
# Usage: sudo bash bench/compare.sh [--smoke] [EXECGUARD_BINARY]
#   BENCH_RUNS   runs per command for `state` (default 200; --smoke: 3); end to end uses 30 (smoke: 3)
#   BENCH_ROUNDS hyperfine passes with the command order rotated, merged (default 4; smoke: 1)
# Prints one table (markdown) and exits 0; raw hyperfine JSON, callgrind and strace output stay
# in $BENCH_KEEP if it is set.
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
ROOT="$(dirname "$HERE")"
if [ -z "$EG" ]; then
    EG="$ROOT/target/$(rustc --print host-tuple)/release/execguard"
    if [ ! -x "$EG" ]; then
        (cd "$ROOT" && cargo build --release >&2)
    fi
fi
EG="$(readlink -f "$EG")"
RUNC="$(command -v runc)"
if [ "$SMOKE" = 1 ]; then
    RUNS=${BENCH_RUNS:-3}; E2E_RUNS=3; ROUNDS=1; WARM=1
else
    RUNS=${BENCH_RUNS:-200}; E2E_RUNS=${BENCH_E2E_RUNS:-30}; ROUNDS=${BENCH_ROUNDS:-4}; WARM=10
fi
for t in hyperfine valgrind strace jq cc "$RUNC"; do
    command -v "$t" >/dev/null || { echo "compare.sh: $t is missing (apt-get install hyperfine valgrind strace jq gcc runc)" >&2; exit 1; }
done

TMP="$(mktemp -d /tmp/execguard-bench.XXXXXX)"
ID="egbench-$$"
cleanup() {
    for c in "$ID" "$ID-run-r" "$ID-run-e" "$ID-cr-r" "$ID-cr-e"; do
        "$RUNC" delete -f "$c" >/dev/null 2>&1 || true
    done
    if [ -n "${BENCH_KEEP:-}" ]; then mkdir -p "$BENCH_KEEP" && cp -r "$TMP"/out/. "$BENCH_KEEP"/ || true; fi
    rm -rf "$TMP"
}
trap cleanup EXIT
mkdir -p "$TMP/out"
OUT="$TMP/out"

# 1. the floor
FLOOR="$TMP/floor"
cc -O2 -o "$FLOOR" "$HERE/floor.c"

# bundles -------------------------------------------------------------------------------------
mkbundle() { # DIR ARGS_JSON
    local b="$1" args="$2"
    mkdir -p "$b/rootfs"
    (cd "$b" && "$RUNC" spec)
    jq --argjson a "$args" '.process.args = $a | .process.terminal = false' "$b/config.json" >"$b/c.json"
    mv "$b/c.json" "$b/config.json"
}
BB="$TMP/bb"
mkbundle "$BB" '["/bin/busybox","true"]'
mkdir -p "$BB/rootfs/bin"
cp /bin/busybox "$BB/rootfs/bin/busybox"

# dynamic ELF: /bin/ls with its loader and libraries, at the same paths
DYN="$TMP/dyn"
mkbundle "$DYN" '["/bin/ls","/"]'
mkdir -p "$DYN/rootfs/bin"
cp /bin/ls "$DYN/rootfs/bin/ls"
for lib in $(ldd /bin/ls | grep -o '/[^ ]*'); do
    mkdir -p "$DYN/rootfs$(dirname "$lib")"
    cp -L "$lib" "$DYN/rootfs$lib"
done
[ -e "$DYN/rootfs/lib64" ] || true

# one tiny valid static ELF (exit(0), no libc) padded to 2 KiB, and the same file extended
# sparsely to 2 GiB: only the size differs, the findings are the same
SM="$TMP/small"; BIG="$TMP/big"
mkbundle "$SM" '["/app"]'
mkbundle "$BIG" '["/app"]'
printf 'void _start(void){__asm__ volatile("mov $60,%%eax\\n xor %%edi,%%edi\\n syscall");}\n' >"$TMP/tiny.c"
cc -Os -static -nostdlib -fno-asynchronous-unwind-tables -Wl,-n -Wl,--build-id=none -s -o "$TMP/tiny" "$TMP/tiny.c"
cp "$TMP/tiny" "$SM/rootfs/app"
truncate -s 2K "$SM/rootfs/app"
cp "$SM/rootfs/app" "$BIG/rootfs/app"
truncate -s 2G "$BIG/rootfs/app"
chmod 755 "$SM/rootfs/app" "$BIG/rootfs/app"

# helpers ---------------------------------------------------------------------------------------
# hf NAME RUNS ROUNDS [hyperfine options...] -- NAME1 CMD1 NAME2 CMD2 ...
# runs hyperfine ROUNDS times, rotating the command order, and merges all times per command into
# $OUT/NAME.merged.json: [{name, median, min, max, stddev, n, round_medians:[...]}]
hf() {
    local tag="$1" runs="$2" rounds="$3"; shift 3
    local opts=()
    while [ "$1" != "--" ]; do opts+=("$1"); shift; done
    shift
    local names=() cmds=()
    while [ $# -gt 0 ]; do names+=("$1"); cmds+=("$2"); shift 2; done
    local n=${#names[@]} per=$(( (runs + rounds - 1) / rounds )) r i k
    for ((r = 0; r < rounds; r++)); do
        local args=()
        for ((i = 0; i < n; i++)); do
            k=$(( (i + r) % n ))
            args+=(-n "${names[$k]}" "${cmds[$k]}")
        done
        hyperfine -N --style none --warmup "$WARM" --runs "$per" "${opts[@]}" \
            --export-json "$OUT/$tag.$r.json" "${args[@]}" >"$OUT/$tag.$r.txt" 2>&1 \
            || { cat "$OUT/$tag.$r.txt" >&2; return 1; }
    done
    jq -s '
      def med: sort | if length % 2 == 1 then .[length/2|floor] else (.[length/2-1] + .[length/2]) / 2 end;
      [.[].results[]] | group_by(.command) | map({
        name: .[0].command,
        times: ([.[].times[]]),
        round_medians: [.[].median]
      }) | map(. + {
        n: (.times | length), median: (.times | med), min: (.times | min), max: (.times | max),
        stddev: ((.times | add / length) as $m | (.times | map((. - $m) * (. - $m)) | add / length | sqrt))
      } | del(.times))' "$OUT/$tag".*.json >"$OUT/$tag.merged.json"
}
get() { jq -r --arg n "$2" ".[] | select(.name == \$n) | .$3" "$OUT/$1.merged.json"; }
ms() { awk -v x="$1" 'BEGIN { printf "%.2f", x * 1000 }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", a / b }'; }
# per-round ratio spread: min..max of round_median(a)/round_median(b)
rspread() {
    jq -r --arg a "$2" --arg b "$3" '
      (.[] | select(.name == $a) | .round_medians) as $x |
      (.[] | select(.name == $b) | .round_medians) as $y |
      [range(0; $x | length) | $x[.] / $y[.]] | "\(min*1000|round/1000)..\(max*1000|round/1000)"' "$OUT/$1.merged.json"
}
cg_before_exec() { # NAME CMD... -> instructions before the first exec* call
    (cd "$OUT" && valgrind --tool=callgrind --dump-before='*execv*' --callgrind-out-file="cg.$1.out" "${@:2}" >/dev/null 2>"cg.$1.log") || true
    if [ -f "$OUT/cg.$1.out.1" ]; then
        awk '/^summary:/ { print $2 }' "$OUT/cg.$1.out.1"
    else
        echo "n/a"
    fi
}
cg_total() { # NAME CMD... -> all instructions
    (cd "$OUT" && valgrind --tool=callgrind --callgrind-out-file="cg.$1.out" "${@:2}" >/dev/null 2>"cg.$1.log") || true
    awk '/^summary:/ { print $2 }' "$OUT/cg.$1.out"
}
st_total() { # NAME CMD... -> syscalls in all (strace -f -c)
    strace -f -c -o "$OUT/st.$1.txt" "${@:2}" >/dev/null 2>&1 || true
    awk '$NF == "total" { print $4 }' "$OUT/st.$1.txt"
}
maxrss() { # CMD... -> peak RSS in KiB (of the process and whatever it exec'd into)
    /usr/bin/time -f '%M' -o "$OUT/rss.tmp" "$@" >/dev/null 2>&1 || true
    tail -1 "$OUT/rss.tmp"
}

# 2. pass-through wall time against a created container ----------------------------------------
"$RUNC" create -b "$BB" "$ID" </dev/null >/dev/null 2>&1
hf state "$RUNS" "$ROUNDS" -- \
    runc "$RUNC state $ID" \
    floor "$FLOOR $RUNC state $ID" \
    execguard "$EG --execguard-runtime=$RUNC state $ID"
"$RUNC" delete -f "$ID" >/dev/null 2>&1 || true

# 3. instructions and syscalls of the pass-through, runtime /bin/true ---------------------------
CG_EG=$(cg_before_exec pass "$EG" --execguard-runtime=/bin/true state x)
CG_FL=$(cg_before_exec floor "$FLOOR" /bin/true state x)
ST_EG=$(st_total pass "$EG" --execguard-runtime=/bin/true state x)
ST_FL=$(st_total floor "$FLOOR" /bin/true state x)

# 4. check: dynamic ELF bundle, 2 KiB vs 2 GiB --------------------------------------------------
CG_DYN=$(cg_total check-dyn "$EG" check --bundle "$DYN")
CG_SM=$(cg_total check-2k "$EG" check --bundle "$SM")
CG_BIG=$(cg_total check-2g "$EG" check --bundle "$BIG")
ST_DYN=$(st_total check-dyn "$EG" check --bundle "$DYN")
"$EG" check --bundle "$DYN" >"$OUT/check-dyn.txt" 2>&1 && RC_DYN=0 || RC_DYN=$?
"$EG" check --bundle "$SM" >"$OUT/check-2k.txt" 2>&1 && RC_SM=0 || RC_SM=$?
"$EG" check --bundle "$BIG" >"$OUT/check-2g.txt" 2>&1 && RC_BIG=0 || RC_BIG=$?

# 5. end to end: run, and create (the container is deleted by --prepare before every run) --------
hf run "$E2E_RUNS" 2 --prepare "$RUNC delete -f $ID-run" -- \
    "runc run" "$RUNC run -b $BB $ID-run" \
    "execguard run" "$EG --execguard-runtime=$RUNC run -b $BB $ID-run"
hf create "$E2E_RUNS" 2 --prepare "$RUNC delete -f $ID-cr" -- \
    "runc create" "$RUNC create -b $BB $ID-cr" \
    "execguard create" "$EG --execguard-runtime=$RUNC create -b $BB $ID-cr"
"$RUNC" delete -f "$ID-run" >/dev/null 2>&1 || true
"$RUNC" delete -f "$ID-cr" >/dev/null 2>&1 || true

# 5b. time to the runtime's start: bench/launch.c stamps the clock and execs the caller, the
# stand-in runtime bench/stamp.c stamps it again at its start. Direct = launch -> stamp; the rest
# put the floor or execguard in between; interleaved, STARTUP_N rounds, medians in microseconds.
STAMP="$TMP/stamp"; LAUNCH="$TMP/launch"
cc -O2 -o "$STAMP" "$HERE/stamp.c"
cc -O2 -o "$LAUNCH" "$HERE/launch.c"
if [ "$SMOKE" = 1 ]; then STARTUP_N=3; else STARTUP_N=${BENCH_STARTUP_RUNS:-200}; fi
startup_once() { # CMD... -> microseconds from launch to the runtime's start
    local a b
    a=$("$LAUNCH" "$@" 2>&1 >"$TMP/stamp.out" | tail -1)
    b=$(head -1 "$TMP/stamp.out")
    echo $(( (b - a) / 1000 ))
}
: >"$OUT/startup.txt"
for ((i = 0; i < STARTUP_N; i++)); do
    printf 'direct %s\n' "$(startup_once "$STAMP" state x)" >>"$OUT/startup.txt"
    printf 'floor %s\n' "$(startup_once "$FLOOR" "$STAMP" state x)" >>"$OUT/startup.txt"
    printf 'pass %s\n' "$(startup_once "$EG" --execguard-runtime="$STAMP" state x)" >>"$OUT/startup.txt"
    printf 'run %s\n' "$(startup_once "$EG" --execguard-runtime="$STAMP" run -b "$BB" x)" >>"$OUT/startup.txt"
    printf 'create %s\n' "$(startup_once "$EG" --execguard-runtime="$STAMP" create -b "$BB" x)" >>"$OUT/startup.txt"
done
smed() { awk -v k="$1" '$1 == k { print $2 }' "$OUT/startup.txt" | sort -n | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : int((v[NR / 2] + v[NR / 2 + 1]) / 2) }'; }
U_D=$(smed direct); U_F=$(smed floor); U_P=$(smed pass); U_R=$(smed run); U_C=$(smed create)

# 6. peak RSS ----------------------------------------------------------------------------------
RSS_CHECK=$(maxrss "$EG" check --bundle "$DYN")
RSS_PASS=$(maxrss "$EG" --execguard-runtime=/bin/true state x)
RSS_FLOOR=$(maxrss "$FLOOR" /bin/true state x)

# table -----------------------------------------------------------------------------------------
S_R=$(get state runc median); S_F=$(get state floor median); S_E=$(get state execguard median)
row() { printf '| %s | %s | %s |\n' "$1" "$2" "$3"; }
spread() { printf '%s..%s ms, sd %s' "$(ms "$(get "$1" "$2" min)")" "$(ms "$(get "$1" "$2" max)")" "$(ms "$(get "$1" "$2" stddev)")"; }
echo "execguard benchmark: $(nproc) CPUs, kernel $(uname -r), $("$RUNC" --version | head -1), $("$EG" --execguard-version 2>/dev/null | head -1)"
echo "state: $RUNS runs per command in $ROUNDS rotated rounds; end to end: $E2E_RUNS runs in 2 rounds$([ "$SMOKE" = 1 ] && echo ' (SMOKE: figures meaningless)')"
echo
echo "| measurement | figure | spread / note |"
echo "| --- | --- | --- |"
row "runc state (median)" "$(ms "$S_R") ms" "$(spread state runc)"
row "floor runc state (median)" "$(ms "$S_F") ms" "$(spread state floor)"
row "execguard state (median)" "$(ms "$S_E") ms" "$(spread state execguard)"
row "execguard / runc" "$(ratio "$S_E" "$S_R")" "per round $(rspread state execguard runc)"
row "execguard / floor (target <= 1.05)" "$(ratio "$S_E" "$S_F")" "per round $(rspread state execguard floor)"
row "floor / runc" "$(ratio "$S_F" "$S_R")" "per round $(rspread state floor runc)"
row "instructions before exec, execguard pass-through (target <= 500000)" "$CG_EG" "floor: $CG_FL"
row "syscalls in all, execguard + /bin/true (target <= 110)" "$ST_EG" "floor + /bin/true: $ST_FL"
row "instructions, check of dynamic ELF bundle /bin/ls (target <= 3000000)" "$CG_DYN" "exit $RC_DYN, $ST_DYN syscalls"
row "instructions, check of 2 KiB ELF" "$CG_SM" "exit $RC_SM"
row "instructions, check of 2 GiB sparse ELF (target within 10% of 2 KiB)" "$CG_BIG" "ratio $(ratio "$CG_BIG" "$CG_SM"), exit $RC_BIG"
R_R=$(get run "runc run" median); R_E=$(get run "execguard run" median)
C_R=$(get create "runc create" median); C_E=$(get create "execguard create" median)
row "runc run busybox true (median)" "$(ms "$R_R") ms" "$(spread run "runc run")"
row "execguard run (median)" "$(ms "$R_E") ms" "$(spread run "execguard run")"
row "execguard run added (target < 1 ms)" "$(ms "$(awk -v a="$R_E" -v b="$R_R" 'BEGIN { print a - b }')") ms" "round ratios $(rspread run "execguard run" "runc run")"
row "runc create (median)" "$(ms "$C_R") ms" "$(spread create "runc create")"
row "execguard create (median)" "$(ms "$C_E") ms" "$(spread create "execguard create")"
row "execguard create added (target < 1 ms)" "$(ms "$(awk -v a="$C_E" -v b="$C_R" 'BEGIN { print a - b }')") ms" "round ratios $(rspread create "execguard create" "runc create")"
us() { awk -v x="$1" 'BEGIN { printf "%.2f", x / 1000 }'; }
row "to the runtime's start, direct exec (median of $STARTUP_N)" "$(us "$U_D") ms" "launch -> runtime"
row "to the runtime's start, C floor in between" "$(us "$U_F") ms" "added $(us $((U_F - U_D))) ms"
row "to the runtime's start, execguard pass-through" "$(us "$U_P") ms" "added $(us $((U_P - U_D))) ms (floor added $(us $((U_F - U_D))) ms)"
row "to the runtime's start, execguard run with all checks (target: added < 1 ms)" "$(us "$U_R") ms" "added $(us $((U_R - U_D))) ms; checks alone $(us $((U_R - U_P))) ms"
row "to the runtime's start, execguard create with all checks (target: added < 1 ms)" "$(us "$U_C") ms" "added $(us $((U_C - U_D))) ms before the runtime starts (the live check after it is not in this figure)"
row "peak RSS, execguard check (target < 8 MB)" "$RSS_CHECK KiB" "/usr/bin/time -v"
row "peak RSS, execguard pass-through to /bin/true (target < 8 MB)" "$RSS_PASS KiB" "floor + /bin/true: $RSS_FLOOR KiB (max over the exec)"
exit 0
