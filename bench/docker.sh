#!/usr/bin/env bash
# `docker run --rm IMAGE /bin/busybox true` with runc vs with execguard in front of runc, on a
# private containerd + dockerd: interleaved pairs (the order alternates), the ratio of each pair,
# their median and spread, and a 95 % confidence interval of the median ratio. This VM drifts
# (RUNTIMES.md §8): pairs cancel the drift.
# Usage: sudo bash bench/docker.sh [--smoke] [EXECGUARD_BINARY]
#   BENCH_DOCKER_PAIRS  pairs (default 100, about a minute; --smoke: 2)
set -euo pipefail
SMOKE=0 EG=""
for a in "$@"; do
  case "$a" in
    --smoke) SMOKE=1 ;;
    *) EG="$a" ;;
  esac
done
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(dirname "$HERE")"
EG="$(readlink -f "${EG:-$ROOT/target/$(rustc --print host-tuple)/release/execguard}")"
[ -x "$EG" ] || { echo "bench/docker.sh: no execguard binary at $EG (cargo build --release)" >&2; exit 1; }
PAIRS=${BENCH_DOCKER_PAIRS:-100}
[ "$SMOKE" = 1 ] && PAIRS=2
for t in dockerd containerd /usr/bin/docker runc busybox; do
  command -v "$t" >/dev/null || { echo "bench/docker.sh: $t is missing" >&2; exit 1; }
done

# shellcheck source=integration/dockerd.sh
. "$ROOT/integration/dockerd.sh"
W=$(mktemp -d /tmp/execguard-bench-docker.XXXXXX)
DOCKERD_PIDS=()
trap 'dockerd_down "$W"' EXIT
install -m 755 "$EG" "$W/execguard"
echo '{"log":{"path":null}}' >"$W/eg.json"
cat >"$W/daemon.json" <<JSON
{ "runtimes": { "execguard": { "path": "$W/execguard", "runtimeArgs": ["--execguard-config=$W/eg.json"] } } }
JSON
dockerd_up "$W" >&2
mkdir -p "$W/img/bin"
cp "$(command -v busybox)" "$W/img/bin/busybox"
tar -C "$W/img" -cf "$W/img.tar" .
"${D[@]}" import "$W/img.tar" egbench:1 >/dev/null

one() { # RUNTIME -> wall ms of one docker run
  local t0 t1
  t0=$(date +%s%N)
  "${D[@]}" run --rm --network none --runtime "$1" egbench:1 /bin/busybox true >/dev/null
  t1=$(date +%s%N)
  echo $(((t1 - t0) / 1000))
}
for _ in 1 2 3; do one runc >/dev/null; one execguard >/dev/null; done
: >"$W/pairs"
for i in $(seq "$PAIRS"); do
  if [ $((i % 2)) = 0 ]; then r=$(one runc); e=$(one execguard); else e=$(one execguard); r=$(one runc); fi
  echo "$r $e" >>"$W/pairs"
done
summary() { # FIELD-EXPR -> median p25 p75 min max of that expression over the pairs
  awk "{ print $1 }" "$W/pairs" | sort -g | awk '{ v[NR] = $1 } END {
    n = NR; if (n == 0) { print "0 0 0 0 0"; exit }
    m = (n % 2) ? v[(n + 1) / 2] : (v[n / 2] + v[n / 2 + 1]) / 2
    printf "%.4f %.4f %.4f %.4f %.4f\n", m, v[int((n - 1) * 0.25) + 1], v[int((n - 1) * 0.75) + 1], v[1], v[n]
  }'
}
read -r rm_ rq1 rq3 rmin rmax < <(summary '$1 / 1000')
read -r em eq1 eq3 emin emax < <(summary '$2 / 1000')
read -r qm qq1 qq3 qmin qmax < <(summary '$2 / $1')
# Distribution-free 95 % confidence interval of the median ratio: the order statistics
# n/2 -+ 0.98 sqrt(n) of the sorted ratios (the binomial test of the median, normal approximation).
read -r clo chi < <(awk '{ print $2 / $1 }' "$W/pairs" | sort -g | awk '{ v[NR] = $1 } END {
  n = NR; if (n == 0) { print "0 0"; exit }
  d = 0.98 * sqrt(n); j = int(n / 2 - d); k = int(n / 2 + 1 + d + 0.999999)
  if (j < 1) j = 1; if (k > n) k = n
  printf "%.4f %.4f\n", v[j], v[k]
}')
echo "docker run --rm egbench:1 /bin/busybox true: $PAIRS interleaved pairs$([ "$SMOKE" = 1 ] && echo ' (SMOKE: figures meaningless)')"
echo "| measurement | median | p25..p75 | min..max |"
echo "| --- | --- | --- | --- |"
printf '| runc | %.1f ms | %.1f..%.1f | %.1f..%.1f |\n' "$rm_" "$rq1" "$rq3" "$rmin" "$rmax"
printf '| execguard in front of runc | %.1f ms | %.1f..%.1f | %.1f..%.1f |\n' "$em" "$eq1" "$eq3" "$emin" "$emax"
printf '| ratio per pair (execguard / runc) | %.3f | %.3f..%.3f | %.3f..%.3f |\n' "$qm" "$qq1" "$qq3" "$qmin" "$qmax"
printf '| 95 %% confidence interval of the median ratio | %.3f..%.3f | | |\n' "$clo" "$chi"
