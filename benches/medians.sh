#!/usr/bin/env bash
# Runs benches/hot.rs at the lowest priority and prints the medians as a Markdown table (the
# one in BENCHMARKS.md). Arguments go to criterion, e.g. a filter: `bash benches/medians.sh scan`.
set -euo pipefail
cd "$(dirname "$0")/.."
target=${CARGO_TARGET_DIR:-target}
nice -n 19 cargo bench --quiet --bench hot -- "$@" >&2
python3 - "$target/criterion" <<'PY'
import json, os, sys

def fmt(ns):
    for unit, scale in (("s", 1e9), ("ms", 1e6), ("µs", 1e3)):
        if ns >= scale:
            return f"{ns / scale:.3g} {unit}"
    return f"{ns:.3g} ns"

rows = []
for dirpath, _, files in os.walk(sys.argv[1]):
    if os.path.basename(dirpath) == "new" and "estimates.json" in files:
        bench = json.load(open(os.path.join(dirpath, "benchmark.json")))
        med = json.load(open(os.path.join(dirpath, "estimates.json")))["median"]
        ci = med["confidence_interval"]
        rows.append((bench["full_id"], med["point_estimate"], ci["lower_bound"], ci["upper_bound"]))
print("| benchmark | median | 95 % CI of the median |")
print("| --- | --- | --- |")
for name, m, lo, hi in sorted(rows):
    print(f"| `{name}` | {fmt(m)} | {fmt(lo)} – {fmt(hi)} |")
PY
