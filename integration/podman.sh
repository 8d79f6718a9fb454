#!/usr/bin/env bash
# Podman end to end, both ways execguard plugs into podman: as the OCI runtime
# (`podman --runtime execguard`) and as an OCI hook (hooks/50-execguard.json in a
# `--hooks-dir`, runc called directly). Podman runs isolated: its own root, runroot,
# containers.conf and storage.conf under a temporary folder, cgroupfs, no network. The image
# is imported from a local rootfs tarball. Removes what it made, nothing else.
#
# Usage: integration/podman.sh EXECGUARD_BINARY
set -euo pipefail
eg=$(realpath "${1:?usage: integration/podman.sh EXECGUARD_BINARY}")
repo=$(cd "$(dirname "$0")/.." && pwd)
fixtures=${EXECGUARD_FIXTURES:-/var/cache/execguard-fixtures}

skip() {
  if [ "${CI:-}" = true ]; then echo "FAIL: $*" >&2; exit 1; fi
  echo "SKIP: $*"; exit 0
}
[ "$(id -u)" = 0 ] || skip "podman test needs root"
for t in podman conmon /usr/bin/runc; do
  command -v "$t" >/dev/null || skip "$t is not installed"
done
[ -x "$fixtures/arm64/bin/busybox" ] || skip "no arm64 busybox in $fixtures (run .ci/setup)"
[ -f "$repo/hooks/50-execguard.json" ] || skip "no hooks/50-execguard.json in $repo"

W=$(mktemp -d /tmp/execguard-podman.XXXXXX)
# Podman makes these outside its root on first use: removed at the end only if this run made them.
made=()
for d in /run/containers /var/lib/containers; do
  [ -e "$d" ] || made+=("$d")
done
for c in /sys/fs/cgroup/*/; do
  [ -e "${c}libpod_parent" ] || made+=("${c}libpod_parent")
done

export CONTAINERS_CONF="$W/containers.conf" CONTAINERS_STORAGE_CONF="$W/storage.conf"
export EXECGUARD_CONFIG="$W/warn.json"
P=(podman --root "$W/root" --runroot "$W/runroot" --cgroup-manager cgroupfs --events-backend file)
cleanup() {
  "${P[@]}" rm -f -a >/dev/null 2>&1 || true
  awk -v w="$W/" 'index($2, w) == 1 { print $2 }' /proc/self/mounts | sort -r | while read -r m; do
    umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || true
  done
  rm -rf "$W" 2>/dev/null || true
  for d in "${made[@]}"; do
    case "$d" in
      /sys/fs/cgroup/*) find "$d" -depth -type d -exec rmdir {} \; 2>/dev/null || true ;;
      *) find "$d" -type f -name 'blob-info-cache-v1.boltdb' -delete 2>/dev/null || true
         find "$d" -depth -type d -empty -delete 2>/dev/null || true ;;
    esac
  done
}
trap cleanup EXIT

install -m 755 "$eg" "$W/execguard"
# The host quirk of RUNTIMES.md §4: without CAP_SYS_RESOURCE podman's default rlimits fail.
cat >"$W/containers.conf" <<TOML
[containers]
default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]
[engine]
cgroup_manager = "cgroupfs"
events_logger = "file"
events_logfile_path = "$W/events.log"
tmp_dir = "$W/tmp"
[network]
network_config_dir = "$W/net"
TOML
cat >"$W/storage.conf" <<TOML
[storage]
driver = "overlay"
graphroot = "$W/root"
runroot = "$W/runroot"
TOML
echo "{\"log\":{\"path\":\"$W/diagnoses.jsonl\"}}" >"$W/warn.json"
echo "{\"mode\":\"enforce\",\"log\":{\"path\":\"$W/diagnoses.jsonl\"}}" >"$W/enforce.json"
echo "{\"mode\":\"enforce\",\"log\":{\"path\":\"$W/hook-diagnoses.jsonl\"}}" >"$W/hook-enforce.json"

# The runtime path: podman passes --runtime-flag NAME=V as a leading --NAME=V on every call.
RT=(--runtime "$W/execguard" --runtime-flag "execguard-runtime=/usr/bin/runc")
RT_ENF=("${RT[@]}" --runtime-flag "execguard-config=$W/enforce.json")
# The hook path: the shipped hooks.d file, pointed at the binary under test.
hookdir() { # DIR [CONFIG [ENV]]
  mkdir -p "$1"
  sed -e "s#/usr/local/bin/execguard#$W/execguard#" \
      -e "s#\"hook\", \"createRuntime\"\]#\"hook\", \"createRuntime\", \"--config\", \"${2:-$W/warn.json}\"]#" \
      ${3:+-e "s#\"args\": \[#\"env\": [\"$3\"], \"args\": [#"} \
      "$repo/hooks/50-execguard.json" >"$1/50-execguard.json"
}
hookdir "$W/hooks-warn"
hookdir "$W/hooks-enforce" "$W/hook-enforce.json"
hookdir "$W/hooks-panic" "$W/enforce.json" EXECGUARD_FAULT=panic
RUNC=(--runtime /usr/bin/runc)
# crun on this host needs the cgroup2 mount out of its way (RUNTIMES.md §5): a test-only
# wrapper does that per call, then runs execguard with crun behind it.
cat >"$W/eg-crun" <<SH
#!/bin/sh
exec unshare -m --propagation private sh -c 'umount /sys/fs/cgroup/unified 2>/dev/null; exec "\$0" "\$@"' "$W/execguard" --execguard-runtime=/usr/bin/crun "\$@"
SH
chmod 755 "$W/eg-crun"
CRUN=(--runtime "$W/eg-crun")
CRUN_ENF=("${CRUN[@]}" --runtime-flag "execguard-config=$W/enforce.json")

mkdir -p "$W/img/bin"
cp /bin/busybox "$W/img/bin/busybox"
cp "$fixtures/arm64/bin/busybox" "$W/img/bin/busybox-arm64"
ln -s busybox "$W/img/bin/sh"
tar -C "$W/img" -cf "$W/img.tar" .
"${P[@]}" import "$W/img.tar" egtest:1 >/dev/null 2>&1 || { echo "FAIL: podman import"; exit 1; }
N=(--network none)

pass=0 fail=0
ok() { echo "ok: $1"; pass=$((pass + 1)); }
bad() { echo "FAILED: $1"; fail=$((fail + 1)); }

# Good images: output and exit code as with runc alone, through both paths.
good=(egtest:1 /bin/busybox sh -c 'echo good; exit 3')
ref=$("${P[@]}" run --rm "${N[@]}" "${RUNC[@]}" "${good[@]}" 2>&1) && rrc=0 || rrc=$?
out=$("${P[@]}" run --rm "${N[@]}" "${RT[@]}" "${good[@]}" 2>&1) && rc=0 || rc=$?
[ "$out" = "$ref" ] && [ "$rc" = "$rrc" ] && ok "runtime path: good image unchanged (rc $rc)" || bad "runtime good: '$out' rc $rc vs '$ref' rc $rrc"
out=$("${P[@]}" --hooks-dir "$W/hooks-enforce" run --rm "${N[@]}" "${RUNC[@]}" "${good[@]}" 2>&1) && rc=0 || rc=$?
[ "$out" = "$ref" ] && [ "$rc" = "$rrc" ] && ok "hook path (enforce): good image unchanged (rc $rc)" || bad "hook good: '$out' rc $rc vs '$ref' rc $rrc"
out=$("${P[@]}" --hooks-dir "$W/hooks-warn" run --rm -t "${N[@]}" "${RUNC[@]}" egtest:1 /bin/busybox echo tty-good </dev/null 2>&1) && rc=0 || rc=$?
[ "$(printf '%s' "$out" | tr -d '\r')" = tty-good ] && [ "$rc" = 0 ] && ok "hook path: podman run -t of a good image unchanged" || bad "hook -t good: '$out' rc $rc"

# Only meaningful while no enabled binfmt_misc handler takes aarch64.
if grep -lqs '7f454c460201010000000000000000000200b700' /proc/sys/fs/binfmt_misc/* 2>/dev/null \
   && grep -qs '^enabled' /proc/sys/fs/binfmt_misc/status; then
  skip "an aarch64 binfmt_misc handler is registered on this host"
fi
arm=(egtest:1 /bin/busybox-arm64 echo hi)
lead='execguard: /bin/busybox-arm64 is built for aarch64*\[arch-mismatch\]'

# (a) Runtime path, warn: podman logs lead with the diagnosis, runc's own line follows.
out=$("${P[@]}" run --name eg-rt-warn "${N[@]}" "${RT[@]}" "${arm[@]}" 2>&1) && rc=0 || rc=$?
logs=$("${P[@]}" logs eg-rt-warn 2>&1)
echo "  podman --runtime execguard run egtest:1 /bin/busybox-arm64 echo hi (rc $rc):"
printf '%s\n' "$out" | sed 's/^/    | /'
echo "  podman logs:"
printf '%s\n' "$logs" | sed 's/^/    | /'
"${P[@]}" rm -f eg-rt-warn >/dev/null
# shellcheck disable=SC2053
[[ $(printf '%s\n' "$logs" | head -1) == $lead ]] && ok "runtime path: podman logs lead with the diagnosis" || bad "runtime logs: $logs"
printf '%s\n' "$logs" | tail -1 | grep -q 'exec /bin/busybox-arm64: exec format error' && ok "runtime path: runc's line follows in podman logs" || bad "runtime logs, no runc line: $logs"
printf '%s\n' "$out" | grep -q 'exec format error' && [ "$rc" != 0 ] && ok "runtime path: podman run fails with runc's words (rc $rc)" || bad "runtime run: rc $rc: $out"

# (b) Runtime path, enforce: podman run itself fails with execguard's reason.
out=$("${P[@]}" run --rm "${N[@]}" "${RT_ENF[@]}" "${arm[@]}" 2>&1) && rc=0 || rc=$?
echo "  podman --runtime execguard (enforce) run egtest:1 /bin/busybox-arm64 echo hi (rc $rc):"
printf '%s\n' "$out" | sed 's/^/    | /'
printf '%s\n' "$out" | grep -q "^Error: OCI runtime error: $W/execguard: execguard: /bin/busybox-arm64 is built for aarch64" \
  && ok "runtime path, enforce: Error: OCI runtime error: ...execguard... (rc $rc)" || bad "runtime enforce: rc $rc: $out"
[ "$rc" = 126 ] && ok "runtime path, enforce: exit 126" || bad "runtime enforce: rc $rc"

# podman exec on the runtime path, without and with a terminal (conmon's console socket).
"${P[@]}" run -d --name eg-pexec "${N[@]}" "${RT[@]}" egtest:1 /bin/busybox sleep 60 >/dev/null
out=$("${P[@]}" exec eg-pexec /bin/busybox-arm64 echo hi 2>&1) && rc=0 || rc=$?
# shellcheck disable=SC2053
[[ $(printf '%s\n' "$out" | head -1) == $lead ]] && printf '%s\n' "$out" | grep -q 'exec format error' \
  && ok "podman exec explains itself, runc's line follows (rc $rc)" || bad "podman exec: rc $rc: $out"
out=$(script -qec "${P[*]} exec -t eg-pexec /bin/busybox-arm64 echo hi" /dev/null </dev/null | tr -d '\r') && rc=0 || rc=$?
echo "  podman exec -t eg-pexec /bin/busybox-arm64 echo hi (rc $rc):"
printf '%s\n' "$out" | sed 's/^/    | /'
# shellcheck disable=SC2053
[[ $(printf '%s\n' "$out" | head -1) == $lead ]] && printf '%s\n' "$out" | grep -q 'exec format error' \
  && ok "podman exec -t shows the diagnosis on the terminal (rc $rc)" || bad "podman exec -t: rc $rc: $out"
out=$(script -qec "${P[*]} exec -t eg-pexec /bin/busybox echo tty-good" /dev/null </dev/null | tr -d '\r') && rc=0 || rc=$?
[ "$out" = tty-good ] && [ "$rc" = 0 ] && ok "podman exec -t of a good binary unchanged" || bad "podman exec -t good: rc $rc: '$out'"
"${P[@]}" rm -f -t 0 eg-pexec >/dev/null

# crun behind execguard on the runtime path: good unchanged, the diagnosis first in podman
# logs, and enforce refuses.
if command -v crun >/dev/null; then
  out=$("${P[@]}" run --rm "${N[@]}" "${CRUN[@]}" "${good[@]}" 2>&1) && rc=0 || rc=$?
  [ "$out" = "$ref" ] && [ "$rc" = "$rrc" ] && ok "crun: good image unchanged (rc $rc)" || bad "crun good: '$out' rc $rc vs '$ref' rc $rrc"
  out=$("${P[@]}" run --name eg-crun-warn "${N[@]}" "${CRUN[@]}" "${arm[@]}" 2>&1) && rc=0 || rc=$?
  logs=$("${P[@]}" logs eg-crun-warn 2>&1)
  "${P[@]}" rm -f eg-crun-warn >/dev/null
  echo "  podman run --runtime execguard-with-crun egtest:1 /bin/busybox-arm64 echo hi (rc $rc); podman logs:"
  printf '%s\n' "$logs" | sed 's/^/    | /'
  # shellcheck disable=SC2053
  [[ $(printf '%s\n' "$logs" | head -1) == $lead ]] && ok "crun: podman logs lead with the diagnosis" || bad "crun logs: $logs"
  printf '%s\n' "$logs" | grep -v '^execguard: ' | grep -qi 'exec format error' && [ "$rc" != 0 ] \
    && ok "crun: crun's own line follows (rc $rc)" || bad "crun logs, no crun line: rc $rc: $logs"
  out=$("${P[@]}" run --rm "${N[@]}" "${CRUN_ENF[@]}" "${arm[@]}" 2>&1) && rc=0 || rc=$?
  printf '%s\n' "$out" | grep -q "^Error: OCI runtime error: .*execguard: /bin/busybox-arm64 is built for aarch64" && [ "$rc" = 126 ] \
    && ok "crun, enforce: podman run fails with execguard's reason (rc $rc)" || bad "crun enforce: rc $rc: $out"
else
  bad "crun is not installed"
fi

# (c) Hook path, warn: the block goes through the init's stderr into podman logs.
out=$("${P[@]}" --hooks-dir "$W/hooks-warn" run --name eg-hook-warn "${N[@]}" "${RUNC[@]}" "${arm[@]}" 2>&1) && rc=0 || rc=$?
logs=$("${P[@]}" logs eg-hook-warn 2>&1)
"${P[@]}" rm -f eg-hook-warn >/dev/null
# shellcheck disable=SC2053
[[ $(printf '%s\n' "$logs" | head -1) == $lead ]] && ok "hook path: podman logs lead with the diagnosis" || bad "hook logs: $logs"
printf '%s\n' "$logs" | grep -q '^execguard:   hint: ' && ok "hook path: the hint is in podman logs" || bad "hook logs, no hint: $logs"
printf '%s\n' "$logs" | tail -1 | grep -q 'exec /bin/busybox-arm64: exec format error' && ok "hook path: runc's line follows" || bad "hook logs, no runc line: $logs"
printf '%s\n' "$out" | grep -q 'exec format error' && [ "$rc" != 0 ] && ok "hook path, warn: the start is left to the kernel (rc $rc)" || bad "hook warn run: rc $rc: $out"

# With a terminal the init has no terminal yet when the hook runs: the block follows it there.
"${P[@]}" --hooks-dir "$W/hooks-warn" run --name eg-hook-tty -t "${N[@]}" "${RUNC[@]}" "${arm[@]}" </dev/null >/dev/null 2>&1 || true
logs=$("${P[@]}" logs eg-hook-tty 2>&1 | tr -d '\r')
echo "  podman --hooks-dir (execguard hook) run -t --runtime runc egtest:1 /bin/busybox-arm64 echo hi; podman logs:"
printf '%s\n' "$logs" | sed 's/^/    | /'
"${P[@]}" rm -f eg-hook-tty >/dev/null
# shellcheck disable=SC2053
[[ $(printf '%s\n' "$logs" | head -1) == $lead ]] && ok "hook path: podman logs of a -t container lead with the diagnosis" || bad "hook -t logs: $logs"

# Hook path, enforce: runc fails the create and podman prints the hook's stderr.
out=$("${P[@]}" --hooks-dir "$W/hooks-enforce" run --rm "${N[@]}" "${RUNC[@]}" "${arm[@]}" 2>&1) && rc=0 || rc=$?
echo "  podman --hooks-dir (execguard hook, enforce) run --runtime runc egtest:1 /bin/busybox-arm64 echo hi (rc $rc):"
printf '%s\n' "$out" | sed 's/^/    | /'
printf '%s\n' "$out" | grep -q '^Error: OCI runtime error: /usr/bin/runc: runc create failed: .*error running hook #0: .*stderr: execguard: /bin/busybox-arm64 is built for aarch64' \
  && ok "hook path, enforce: podman's error holds execguard's reason (rc $rc)" || bad "hook enforce: rc $rc: $out"
[ "$rc" = 126 ] && ok "hook path, enforce: exit 126" || bad "hook enforce: rc $rc"
grep -q '"action":"refused"' "$W/hook-diagnoses.jsonl" 2>/dev/null && ok "hook path, enforce: the refusal is in execguard's log" || bad "no refused line in the hook's log"

# Both at once: the hook sees it runs under execguard and stays silent (one block, warn).
"${P[@]}" --hooks-dir "$W/hooks-enforce" run --name eg-both "${N[@]}" "${RT[@]}" "${arm[@]}" >/dev/null 2>&1 && rc=0 || rc=$?
n=$("${P[@]}" logs eg-both 2>&1 | grep -c '\[arch-mismatch\]' || true)
"${P[@]}" rm -f eg-both >/dev/null
[ "$n" = 1 ] && [ "$rc" != 126 ] && ok "runtime and hook together: one diagnosis, the runtime's mode" || bad "both: $n blocks, rc $rc"

# Fail open: a hook that panics lets the container start, even in enforce mode.
out=$("${P[@]}" --hooks-dir "$W/hooks-panic" run --rm "${N[@]}" "${RUNC[@]}" "${arm[@]}" 2>&1) && rc=0 || rc=$?
! printf '%s\n' "$out" | grep -q 'error running hook' && printf '%s\n' "$out" | grep -q 'exec format error' \
  && ok "hook path: a panic fails open (rc $rc, runc's own error)" || bad "panic hook: rc $rc: $out"
out=$("${P[@]}" --hooks-dir "$W/hooks-panic" run --rm "${N[@]}" "${RUNC[@]}" "${good[@]}" 2>&1) && rc=0 || rc=$?
[ "$out" = "$ref" ] && [ "$rc" = "$rrc" ] && ok "hook path: a panic leaves a good image unchanged" || bad "panic good: '$out' rc $rc"

echo "podman: $pass passed, $fail failed"
[ "$fail" = 0 ]
