#!/usr/bin/env bash
# Docker end to end: a private containerd and dockerd (own sockets, roots and state dirs),
# execguard registered as a `runtimes` entry exactly as README.md gives it, applied with
# SIGHUP; then `docker run --runtime execguard` of good and bad images built from local
# rootfs tarballs. Stops exactly what it started.
#
# Usage: integration/docker.sh EXECGUARD_BINARY
set -euo pipefail
eg=$(realpath "${1:?usage: integration/docker.sh EXECGUARD_BINARY}")
fixtures=${EXECGUARD_FIXTURES:-/var/cache/execguard-fixtures}

skip() {
  if [ "${CI:-}" = true ]; then echo "FAIL: $*" >&2; exit 1; fi
  echo "SKIP: $*"; exit 0
}
[ "$(id -u)" = 0 ] || skip "docker test needs root"
for t in dockerd containerd /usr/bin/docker runc; do
  command -v "$t" >/dev/null || skip "$t is not installed"
done
[ -x "$fixtures/arm64/bin/busybox" ] || skip "no arm64 busybox in $fixtures (run .ci/setup)"

# shellcheck source=integration/dockerd.sh
. "$(dirname "$0")/dockerd.sh"
W=$(mktemp -d /tmp/execguard-docker.XXXXXX)
DOCKERD_PIDS=()
trap 'dockerd_down "$W"' EXIT

install -m 755 "$eg" "$W/execguard"
dockerd_up "$W" || exit 1

# The README's configuration, applied without a restart.
echo '{"mode":"enforce","log":{"path":null}}' >"$W/enforce.json"
# crun on this host needs the cgroup2 mount out of its way (RUNTIMES.md §5): a test-only
# wrapper does that per call, then runs execguard with crun behind it.
cat >"$W/execguard-crun.sh" <<SH
#!/bin/sh
exec unshare -m --propagation private sh -c 'umount /sys/fs/cgroup/unified 2>/dev/null; exec "\$0" "\$@"' "$W/execguard" --execguard-runtime=/usr/bin/crun "\$@"
SH
chmod 755 "$W/execguard-crun.sh"
cat >"$W/daemon.json" <<JSON
{
  "runtimes": {
    "execguard": { "path": "$W/execguard" },
    "execguard-enforce": { "path": "$W/execguard", "runtimeArgs": ["--execguard-config=$W/enforce.json"] },
    "execguard-crun": { "path": "$W/execguard-crun.sh" },
    "execguard-crun-enforce": { "path": "$W/execguard-crun.sh", "runtimeArgs": ["--execguard-config=$W/enforce.json"] }
  },
  "default-runtime": "runc"
}
JSON
kill -HUP "$(cat "$W/dockerd.pid")"
for _ in $(seq 50); do "${D[@]}" info 2>/dev/null | grep -q execguard-enforce && break; sleep 0.1; done

mkdir -p "$W/img/bin"
cp /bin/busybox "$W/img/bin/busybox"
cp "$fixtures/arm64/bin/busybox" "$W/img/bin/busybox-arm64"
ln -s busybox "$W/img/bin/sh"
tar -C "$W/img" -cf "$W/img.tar" .
"${D[@]}" import "$W/img.tar" egtest:1 >/dev/null

pass=0 fail=0
ok() { echo "ok: $1"; pass=$((pass + 1)); }
bad() { echo "FAILED: $1"; fail=$((fail + 1)); }

# A good image: output and exit code as with runc.
out=$("${D[@]}" run --rm --runtime execguard egtest:1 /bin/busybox sh -c 'echo good; exit 3' 2>&1) && rc=0 || rc=$?
ref=$("${D[@]}" run --rm egtest:1 /bin/busybox sh -c 'echo good; exit 3' 2>&1) && rrc=0 || rrc=$?
[ "$out" = "$ref" ] && [ "$rc" = "$rrc" ] && ok "good image unchanged (rc $rc)" || bad "good image: '$out' rc $rc vs '$ref' rc $rrc"

# stdin reaches the container unchanged.
out=$(printf 'through stdin\n' | "${D[@]}" run -i --rm --runtime execguard egtest:1 /bin/busybox cat 2>&1) && rc=0 || rc=$?
[ "$out" = "through stdin" ] && [ "$rc" = 0 ] && ok "stdin passes through" || bad "stdin: '$out' rc $rc"

# docker stop: the TERM reaches the container's init and its exit code is kept.
stop_code() {
  "${D[@]}" run -d --name "$1" "${@:2}" egtest:1 /bin/busybox sh -c 'trap "exit 42" TERM; while :; do sleep 0.1; done' >/dev/null
  sleep 0.5
  "${D[@]}" stop -t 10 "$1" >/dev/null
  "${D[@]}" inspect -f '{{.State.ExitCode}}' "$1"
  "${D[@]}" rm "$1" >/dev/null
}
a=$(stop_code eg-stop --runtime execguard) b=$(stop_code eg-stop-ref)
[ "$a" = 42 ] && [ "$a" = "$b" ] && ok "docker stop: signal delivered, exit code $a as with runc" || bad "docker stop: $a vs runc $b"

# crun behind execguard: a good image unchanged.
out=$("${D[@]}" run --rm --runtime execguard-crun egtest:1 /bin/busybox sh -c 'echo crun-good; exit 4' 2>&1) && rc=0 || rc=$?
[ "$out" = crun-good ] && [ "$rc" = 4 ] && ok "crun behind execguard: good image unchanged" || bad "crun good: '$out' rc $rc"

# Only meaningful while no enabled binfmt_misc handler takes aarch64.
if grep -lqs '7f454c460201010000000000000000000200b700' /proc/sys/fs/binfmt_misc/* 2>/dev/null \
   && grep -qs '^enabled' /proc/sys/fs/binfmt_misc/status; then
  skip "an aarch64 binfmt_misc handler is registered on this host"
fi

# Warn mode: the attached run and docker logs show execguard's diagnosis before runc's line.
out=$("${D[@]}" run --name eg-warn --runtime execguard egtest:1 /bin/busybox-arm64 echo hi 2>&1) && rc=0 || rc=$?
logs=$("${D[@]}" logs eg-warn 2>&1)
echo "  docker run --runtime execguard egtest:1 /bin/busybox-arm64 echo hi (rc $rc):"
printf '%s\n' "$out" | sed 's/^/    | /'
echo "  docker logs:"
printf '%s\n' "$logs" | sed 's/^/    | /'
"${D[@]}" rm eg-warn >/dev/null
first=$(printf '%s\n' "$logs" | head -1)
case "$first" in
  "execguard: /bin/busybox-arm64 is built for aarch64"*"[arch-mismatch]") ok "docker logs lead with the diagnosis" ;;
  *) bad "docker logs: $logs" ;;
esac
printf '%s\n' "$logs" | tail -1 | grep -q 'exec /bin/busybox-arm64: exec format error' && ok "runc's own line follows" || bad "no runc line: $logs"
printf '%s\n' "$out" | grep -q '\[arch-mismatch\]' && ok "attached docker run shows it (rc $rc)" || bad "attached run: $out"
[ "$rc" != 0 ] && ok "warn mode leaves the failure to the kernel" || bad "rc 0 for an arm64 binary"

# With a terminal (-t) the runtime's stderr is thrown away: the diagnosis goes through the
# container's own terminal, so the attached run and docker logs still show it.
out=$("${D[@]}" run --name eg-tty -t --runtime execguard egtest:1 /bin/busybox-arm64 echo hi 2>&1) && rc=0 || rc=$?
logs=$("${D[@]}" logs eg-tty 2>&1)
echo "  docker run -t --runtime execguard egtest:1 /bin/busybox-arm64 echo hi (rc $rc):"
printf '%s\n' "$out" | tr -d '\r' | sed 's/^/    | /'
"${D[@]}" rm eg-tty >/dev/null
printf '%s\n' "$out" | head -1 | grep -q '^execguard: /bin/busybox-arm64 is built for aarch64.*\[arch-mismatch\]' \
  && ok "docker run -t shows the diagnosis first (rc $rc)" || bad "docker run -t: $out"
printf '%s\n' "$logs" | grep -q '\[arch-mismatch\]' && ok "docker logs of a -t container show it" || bad "docker logs -t: $logs"
printf '%s\n' "$out" | grep -q 'exec format error' && ok "docker run -t: runc's line follows" || bad "docker run -t: no runc line: $out"
out=$("${D[@]}" run --rm -t --runtime execguard egtest:1 /bin/busybox echo tty-good 2>&1) && rc=0 || rc=$?
[ "$(printf '%s' "$out" | tr -d '\r')" = tty-good ] && [ "$rc" = 0 ] && ok "docker run -t of a good image unchanged" || bad "docker run -t good: '$out' rc $rc"

# crun behind execguard: the same explanation, then crun's own words.
out=$("${D[@]}" run --rm --runtime execguard-crun egtest:1 /bin/busybox-arm64 echo hi 2>&1) && rc=0 || rc=$?
printf '%s\n' "$out" | head -1 | grep -q '^execguard: /bin/busybox-arm64 is built for aarch64.*\[arch-mismatch\]' \
  && ok "crun: docker run shows the diagnosis first (rc $rc)" || bad "crun arm64: $out"
printf '%s\n' "$out" | grep -qi 'exec format error' && ok "crun: its own line follows" || bad "crun: no crun line: $out"

out=$("${D[@]}" run --rm -t --runtime execguard-crun egtest:1 /bin/busybox-arm64 echo hi 2>&1) && rc=0 || rc=$?
printf '%s\n' "$out" | head -1 | grep -q '^execguard: /bin/busybox-arm64 is built for aarch64.*\[arch-mismatch\]' \
  && printf '%s\n' "$out" | grep -qi 'exec format error' && ok "crun: docker run -t shows the diagnosis, then crun's line (rc $rc)" \
  || bad "crun -t: $out"
out=$("${D[@]}" run --rm --runtime execguard-crun-enforce egtest:1 /bin/busybox-arm64 echo hi 2>&1) && rc=0 || rc=$?
[ "$rc" = 125 ] && printf '%s\n' "$out" | grep -q 'OCI runtime create failed: execguard: /bin/busybox-arm64 is built for aarch64' \
  && ok "crun, enforce: OCI runtime create failed: execguard: ... (rc $rc)" || bad "crun enforce: rc $rc: $out"
"${D[@]}" run -d --name eg-crun-exec --runtime execguard-crun egtest:1 /bin/busybox sleep 60 >/dev/null
out=$("${D[@]}" exec eg-crun-exec /bin/busybox-arm64 echo hi 2>&1) && rc=0 || rc=$?
printf '%s\n' "$out" | head -1 | grep -q '^execguard: /bin/busybox-arm64 is built for aarch64.*\[arch-mismatch\]' \
  && printf '%s\n' "$out" | grep -qi 'exec format error' && ok "crun: docker exec explains itself, crun's line follows (rc $rc)" \
  || bad "crun exec: $out"
if command -v script >/dev/null; then
  out=$(script -qec "${D[*]} exec -t eg-crun-exec /bin/busybox-arm64 echo hi" /dev/null </dev/null | tr -d '\r') && rc=0 || rc=$?
  printf '%s\n' "$out" | head -1 | grep -q '^execguard: /bin/busybox-arm64 is built for aarch64.*\[arch-mismatch\]' \
    && printf '%s\n' "$out" | grep -qi 'exec format error' && ok "crun: docker exec -t shows the diagnosis on the terminal (rc $rc)" \
    || bad "crun exec -t: $out"
fi
"${D[@]}" rm -f eg-crun-exec >/dev/null

# Enforce mode: docker run itself fails with execguard's reason, exit 125.
out=$("${D[@]}" run --rm --runtime execguard-enforce egtest:1 /bin/busybox-arm64 echo hi 2>&1) && rc=0 || rc=$?
echo "  docker run --rm --runtime execguard-enforce egtest:1 /bin/busybox-arm64 echo hi (rc $rc):"
printf '%s\n' "$out" | sed 's/^/    | /'
[ "$rc" = 125 ] && ok "enforce: exit 125" || bad "enforce: rc $rc"
printf '%s\n' "$out" | grep -q 'OCI runtime create failed: execguard: /bin/busybox-arm64 is built for aarch64' \
  && ok "enforce: OCI runtime create failed: execguard: ..." || bad "enforce output: $out"

# A create that the runtime itself refuses: execguard's reason is the last error line, with
# runc's own words kept, so docker run prints both.
out=$("${D[@]}" run --rm --runtime execguard egtest:1 /no/such/app 2>&1) && rc=0 || rc=$?
printf '%s\n' "$out" | grep -q 'OCI runtime create failed: execguard: process.args\[0\] /no/such/app does not exist in the container.*\[not-found\].*runc said: .*no such file or directory' \
  && ok "a failed create shows execguard's reason and runc's (rc $rc)" || bad "failed create: $out"
ref=$("${D[@]}" run --rm egtest:1 /no/such/app 2>&1) && rrc=0 || rrc=$?
[ "$rc" = "$rrc" ] && ok "a failed create keeps docker's exit code ($rc)" || bad "failed create rc $rc vs $rrc"

# docker exec into a running container with a wrong-arch binary.
"${D[@]}" run -d --name eg-exec --runtime execguard egtest:1 /bin/busybox sleep 60 >/dev/null
out=$("${D[@]}" exec eg-exec /bin/busybox-arm64 echo hi 2>&1) && rc=0 || rc=$?
echo "  docker exec eg-exec /bin/busybox-arm64 echo hi (rc $rc):"
printf '%s\n' "$out" | sed 's/^/    | /'
first=$(printf '%s\n' "$out" | head -1)
case "$first" in
  "execguard: /bin/busybox-arm64 is built for aarch64"*"[arch-mismatch]") ok "docker exec explains itself (rc $rc)" ;;
  *) bad "docker exec: $out" ;;
esac
printf '%s\n' "$out" | grep -q 'exec format error' && ok "docker exec: runc's line follows" || bad "docker exec: no runc line: $out"
out=$("${D[@]}" exec eg-exec /bin/busybox echo exec-good 2>&1) && rc=0 || rc=$?
[ "$out" = exec-good ] && [ "$rc" = 0 ] && ok "docker exec of a good binary unchanged" || bad "docker exec good: '$out' rc $rc"
# docker exec -t: the runtime's stderr is thrown away; execguard writes through the new
# terminal (its console-socket relay), so the user's terminal shows the diagnosis.
if command -v script >/dev/null; then
  "${D[@]}" run -d --name eg-exec-ref egtest:1 /bin/busybox sleep 60 >/dev/null
  tty_exec() { # CONTAINER CMD...: the terminal's text in $out, status in $rc
    out=$(script -qec "${D[*]} exec -t $*" /dev/null </dev/null | tr -d '\r') && rc=0 || rc=$?
  }
  tty_exec eg-exec-ref /bin/busybox-arm64 echo hi; ref=$out rrc=$rc
  tty_exec eg-exec /bin/busybox-arm64 echo hi
  echo "  docker exec -t eg-exec /bin/busybox-arm64 echo hi (rc $rc):"
  printf '%s\n' "$out" | sed 's/^/    | /'
  printf '%s\n' "$out" | grep -q '^execguard: /bin/busybox-arm64 is built for aarch64.*\[arch-mismatch\]' \
    && ok "docker exec -t shows the diagnosis on the terminal" || bad "docker exec -t: $out"
  [ "$(printf '%s\n' "$out" | grep -v '^execguard: ')" = "$ref" ] && ok "docker exec -t: runc's own output follows unchanged" \
    || bad "docker exec -t: '$out' vs runc alone '$ref'"
  [ "$rc" = "$rrc" ] && ok "docker exec -t: exit status as with runc ($rc)" || bad "docker exec -t: rc $rc, runc alone $rrc"
  tty_exec eg-exec-ref /bin/busybox echo tty-exec-good; ref=$out rrc=$rc
  tty_exec eg-exec /bin/busybox echo tty-exec-good
  [ "$out" = "$ref" ] && [ "$rc" = "$rrc" ] && ok "docker exec -t of a good binary unchanged (rc $rc)" \
    || bad "docker exec -t good: '$out' rc $rc vs '$ref' rc $rrc"
  "${D[@]}" rm -f eg-exec-ref >/dev/null
else
  bad "docker exec -t: no script(1) (bsdutils) to give docker a terminal"
fi
"${D[@]}" rm -f eg-exec >/dev/null
"${D[@]}" run -d --name eg-exec2 --runtime execguard-enforce egtest:1 /bin/busybox sleep 60 >/dev/null
out=$("${D[@]}" exec eg-exec2 /bin/busybox-arm64 echo hi 2>&1) && rc=0 || rc=$?
echo "  docker exec (enforce) eg-exec2 /bin/busybox-arm64 echo hi (rc $rc):"
printf '%s\n' "$out" | sed 's/^/    | /'
printf '%s\n' "$out" | grep -q 'OCI runtime exec failed: execguard: /bin/busybox-arm64 is built for aarch64' \
  && ok "enforce: docker exec refused with execguard's reason (rc $rc)" || bad "enforce exec: rc $rc: $out"
"${D[@]}" rm -f eg-exec2 >/dev/null

# execguard setup docker: adds a runtime to the live daemon.json, keeps the rest, reloads.
"$W/execguard" setup docker --config "$W/daemon.json" --runtime-name eg-setup --path "$W/execguard" \
  --reload --pidfile "$W/dockerd.pid" >"$W/setup.out" 2>&1 && rc=0 || rc=$?
for _ in $(seq 50); do "${D[@]}" info 2>/dev/null | grep -q eg-setup && break; sleep 0.1; done
"${D[@]}" info 2>/dev/null | grep -q 'Runtimes:.*eg-setup' && [ "$rc" = 0 ] && ok "setup docker --reload registers the runtime" || bad "setup docker: rc $rc: $(cat "$W/setup.out")"
grep -q execguard-enforce "$W/daemon.json" && ok "setup keeps the other runtimes" || bad "setup lost entries: $(cat "$W/daemon.json")"
out=$("${D[@]}" run --rm --runtime eg-setup egtest:1 /bin/busybox-arm64 echo hi 2>&1) && rc=0 || rc=$?
printf '%s\n' "$out" | head -1 | grep -q '\[arch-mismatch\]' && ok "the setup runtime explains" || bad "setup runtime: $out"
"$W/execguard" setup docker --config "$W/daemon.json" --runtime-name eg-setup --path "$W/execguard" >"$W/setup2.out" 2>&1
cmp -s "$W/daemon.json" "$W/daemon.json.execguard.bak" && bad "second setup rewrote the file" || ok "second setup changes nothing"

# execguard doctor reads the live daemon.json: the runtimes that run execguard.
eng=$("$W/execguard" doctor --docker-config "$W/daemon.json" --format json | jq -c '.engines[] | select(.engine == "docker")') || true
printf '%s' "$eng" | jq -e '.found and (.execguard_runtimes | index("execguard")) and (.execguard_runtimes | index("execguard-enforce")) and (.default_is_execguard | not)' >/dev/null \
  && ok "doctor: daemon.json's execguard runtimes are named" || bad "doctor engines: $eng"

# docker info still shows the default runtime's version; execguard passes --version through.
v1=$("$W/execguard" --version) v2=$(runc --version)
[ "$v1" = "$v2" ] && ok "--version passed through" || bad "--version: $v1"

# execguard check --image-tar on tarballs the real `docker save` wrote.
EG="$W/execguard"
# shellcheck source=integration/image-tar.sh
. "$(dirname "$0")/image-tar.sh"

echo "docker: $pass passed, $fail failed"
[ "$fail" = 0 ]
