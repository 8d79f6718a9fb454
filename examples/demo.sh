#!/usr/bin/env bash
# The main job on the shipped examples: set up the machine, build execguard, then for each
# example bundle show `execguard check` and a real start through `execguard run` in front of
# runc (execguard explains first, then runc's own error follows).
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" = 0 ] || { echo "run as root (runc needs it): sudo bash examples/demo.sh" >&2; exit 1; }
[ -n "${EXECGUARD_SKIP_SETUP:-}" ] || bash .ci/setup
cargo build --release --quiet
eg="target/$(rustc --print host-tuple)/release/execguard"
fixtures=${EXECGUARD_FIXTURES:-/var/cache/execguard-fixtures}

# Fill the rootfs folders (binaries are not kept in the repository).
mkdir -p examples/arm64-entrypoint/rootfs
install -m 755 "$fixtures/arm64/bin/busybox" examples/arm64-entrypoint/rootfs/app
mkdir -p examples/crlf-entrypoint/rootfs/bin
install -m 755 /bin/busybox examples/crlf-entrypoint/rootfs/bin/busybox
ln -sf busybox examples/crlf-entrypoint/rootfs/bin/sh

for ex in arm64-entrypoint crlf-entrypoint; do
  echo
  echo "### $ex: execguard check --bundle examples/$ex"
  "$eg" check --bundle "examples/$ex" || echo "(exit $?)"
  echo
  echo "### $ex: execguard run -b examples/$ex (runc behind it)"
  "$eg" --execguard-runtime=/usr/bin/runc run -b "examples/$ex" "execguard-demo-$$-$ex" </dev/null || echo "(exit $?)"
  /usr/bin/runc delete -f "execguard-demo-$$-$ex" 2>/dev/null || true
done
