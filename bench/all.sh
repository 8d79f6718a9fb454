#!/usr/bin/env bash
# Every benchmark of BENCHMARKS.md in one go (as root): the whole-process harness against runc
# and the C floor, docker run pairs, the image sweep against file(1), and criterion's medians.
# Usage: sudo bash bench/all.sh [EXECGUARD_BINARY]     (about 7 minutes on 2 cores)
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
eg="${1:-$here/../target/$(rustc --print host-tuple)/release/execguard}"
[ -x "$eg" ] || (cd "$here/.." && cargo build --release >&2)
echo "## bench/compare.sh"; bash "$here/compare.sh" "$eg"; echo
echo "## bench/docker.sh"; bash "$here/docker.sh" "$eg"; echo
echo "## bench/sweep.sh"; bash "$here/sweep.sh" "$eg"; echo
echo "## benches/medians.sh"; bash "$here/../benches/medians.sh"
