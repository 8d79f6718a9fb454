#!/usr/bin/env bash
# containerd end to end: a private containerd (own root, state, sockets and CRI dirs) with
# execguard as the README gives it: `ctr run --runc-binary` and the CRI runtime handlers
# `execguard` (warn) and `execguard-enforce`, driven by a small CRI client
# (integration/cri-client) the way kubelet drives containerd. Images are built here from a
# rootfs tarball as an OCI archive and imported with ctr (no network). Stops exactly what it
# started.
#
# Usage: integration/containerd.sh EXECGUARD_BINARY
set -euo pipefail
eg=$(realpath "${1:?usage: integration/containerd.sh EXECGUARD_BINARY}")
here=$(cd "$(dirname "$0")" && pwd)
fixtures=${EXECGUARD_FIXTURES:-/var/cache/execguard-fixtures}
# ctr's namespace (no other daemon uses it); the CRI plugin always uses k8s.io.
ns=execguard-it
image=docker.io/library/egtest:1

skip() {
  if [ "${CI:-}" = true ]; then echo "FAIL: $*" >&2; exit 1; fi
  echo "SKIP: $*"; exit 0
}
[ "$(id -u)" = 0 ] || skip "containerd test needs root"
for t in containerd ctr containerd-shim-runc-v2 runc cargo sha256sum; do
  command -v "$t" >/dev/null || skip "$t is not installed"
done
[ -x "$fixtures/arm64/bin/busybox" ] || skip "no arm64 busybox in $fixtures (run .ci/setup)"
[ -x /bin/busybox ] || skip "no /bin/busybox (busybox-static)"
# Only meaningful while no enabled binfmt_misc handler takes aarch64.
if grep -lqs '7f454c460201010000000000000000000200b700' /proc/sys/fs/binfmt_misc/* 2>/dev/null \
   && grep -qs '^enabled' /proc/sys/fs/binfmt_misc/status; then
  skip "an aarch64 binfmt_misc handler is registered on this host"
fi

# The CRI client: its own crate, its own target dir (a debug build compiles fastest).
t0=$SECONDS
cargo build --quiet --locked --manifest-path "$here/cri-client/Cargo.toml" --target-dir "$here/cri-client/target" \
  || { echo "FAIL: integration/cri-client does not build"; exit 1; }
echo "built integration/cri-client in $((SECONDS - t0)) s"
# The repository's .cargo/config.toml builds for the host tuple explicitly.
cri_bin="$here/cri-client/target/$(rustc --print host-tuple)/debug/cri-client"
[ -x "$cri_bin" ] || cri_bin="$here/cri-client/target/debug/cri-client"

# Folders ctr, the shim and runc create on the host whatever containerd's config says (runc
# state, ctr's fifos, shim sockets, the namespaces' cgroup parents): those that do not exist
# yet are removed at the end, if empty (deepest first).
new_dirs=()
for d in /run/containerd/runc/"$ns" /run/containerd/runc/k8s.io /run/containerd/runc \
  /run/containerd/fifo /run/containerd/s /run/containerd; do
  [ -e "$d" ] || new_dirs+=("$d")
done
for h in /sys/fs/cgroup/*/; do
  for d in "$h$ns" "${h}k8s.io"; do [ -e "$d" ] || new_dirs+=("$d"); done
done
W=$(mktemp -d /tmp/execguard-containerd.XXXXXX)
pid=
pods=()
cleanup() {
  set +e
  if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
    for p in "${pods[@]}"; do "$cri_bin" --socket "$W/containerd.sock" rm-pod "$p" >/dev/null 2>&1; done
    for c in $(ctr -a "$W/containerd.sock" -n "$ns" containers ls -q 2>/dev/null); do
      ctr -a "$W/containerd.sock" -n "$ns" task kill -s KILL "$c" >/dev/null 2>&1
      ctr -a "$W/containerd.sock" -n "$ns" task delete -f "$c" >/dev/null 2>&1
      ctr -a "$W/containerd.sock" -n "$ns" containers delete "$c" >/dev/null 2>&1
    done
    kill "$pid" 2>/dev/null
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null
  fi
  # A shim outlives containerd: stop each one ours left, by the pid it recorded.
  for f in "$W"/state/io.containerd.runtime.v2.task/*/*/shim.pid; do
    [ -f "$f" ] && kill -9 "$(cat "$f")" 2>/dev/null
  done
  grep -F " $W/" /proc/self/mounts | awk '{print $2}' | sort -r | while read -r m; do
    umount -l "$m" 2>/dev/null
  done
  # runc keeps its state under /run/containerd/runc/<namespace> whatever containerd's state
  # dir is: remove what our containers left there.
  for id in $(cat "$W/ids-ctr" 2>/dev/null); do rm -rf "/run/containerd/runc/$ns/$id"; done
  for id in $(cat "$W/ids-cri" 2>/dev/null); do
    rm -rf "/run/containerd/runc/k8s.io/$id"
    for c in /sys/fs/cgroup/*/k8s.io/"$id"; do [ -d "$c" ] && rmdir "$c"; done
  done
  for d in "${new_dirs[@]}"; do [ -d "$d" ] && rmdir "$d"; done
  rm -rf "$W"
}
trap cleanup EXIT

install -m 755 "$eg" "$W/execguard"
# The shims inherit containerd's environment: warn mode via EXECGUARD_CONFIG, with
# execguard's own log kept in the temp dir.
echo "{\"log\":{\"path\":\"$W/warn-log.jsonl\"}}" >"$W/warn.json"
# BinaryName takes no arguments: enforce mode through a wrapper script.
echo "{\"mode\":\"enforce\",\"log\":{\"path\":\"$W/enforce-log.jsonl\",\"include_ok\":true}}" >"$W/enforce.json"
printf '#!/bin/sh\nexec %s --execguard-config=%s "$@"\n' "$W/execguard" "$W/enforce.json" >"$W/eg-enforce"
chmod 755 "$W/eg-enforce"
# crun on this host needs the cgroup2 mount out of its way (RUNTIMES.md §5): a test-only
# wrapper does that per call, then runs execguard with crun behind it.
cat >"$W/eg-crun" <<SH
#!/bin/sh
exec unshare -m --propagation private sh -c 'umount /sys/fs/cgroup/unified 2>/dev/null; exec "\$0" "\$@"' "$W/execguard" --execguard-runtime=/usr/bin/crun "\$@"
SH
chmod 755 "$W/eg-crun"
mkdir -p "$W/cni-conf" "$W/cni-bin" "$W/pods"

cat >"$W/containerd.toml" <<TOML
version = 2
root = "$W/root"
state = "$W/state"
[grpc]
  address = "$W/containerd.sock"
[ttrpc]
  address = "$W/containerd.sock.ttrpc"
[plugins."io.containerd.internal.v1.opt"]
  path = "$W/opt"
[plugins."io.containerd.grpc.v1.cri"]
  # No network: the sandbox (pause) image is the locally imported test image.
  sandbox_image = "$image"
  # Without CAP_SYS_RESOURCE runc cannot lower oom_score_adj to -998 (every pod fails).
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".cni]
    # Pods use the host network: no CNI plugin runs; keep the host's CNI config out.
    bin_dir = "$W/cni-bin"
    conf_dir = "$W/cni-conf"
  [plugins."io.containerd.grpc.v1.cri".containerd]
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.execguard]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.execguard.options]
        BinaryName = "$W/execguard"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.execguard-enforce]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.execguard-enforce.options]
        BinaryName = "$W/eg-enforce"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.execguard-crun]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.execguard-crun.options]
        BinaryName = "$W/eg-crun"
TOML
EXECGUARD_CONFIG="$W/warn.json" containerd --config "$W/containerd.toml" >"$W/containerd.log" 2>&1 &
pid=$!
C=(ctr -a "$W/containerd.sock")
for _ in $(seq 100); do "${C[@]}" version >/dev/null 2>&1 && break; sleep 0.1; done
"${C[@]}" version >/dev/null 2>&1 || { tail -20 "$W/containerd.log"; echo "FAIL: containerd did not start"; exit 1; }
CRI=("$cri_bin" --socket "$W/containerd.sock")

# An OCI archive by hand: one uncompressed layer, a config whose Cmd sleeps (it is also the
# pause image), a manifest and an index naming the image.
mkdir -p "$W/img/rootfs/bin" "$W/img/oci/blobs/sha256"
cp /bin/busybox "$W/img/rootfs/bin/busybox"
cp "$fixtures/arm64/bin/busybox" "$W/img/rootfs/bin/busybox-arm64"
ln -s busybox "$W/img/rootfs/bin/sh"
tar --sort=name --owner=0 --group=0 --numeric-owner --mtime=@0 -C "$W/img/rootfs" -cf "$W/img/layer.tar" .
blob() { # FILE MEDIATYPE -> a descriptor; the file moves into the blobs
  local d s
  d=$(sha256sum "$1" | cut -d' ' -f1) s=$(stat -c %s "$1")
  mv "$1" "$W/img/oci/blobs/sha256/$d"
  printf '{"mediaType":"%s","digest":"sha256:%s","size":%s}' "$2" "$d" "$s"
}
case $(uname -m) in x86_64) arch=amd64 ;; aarch64) arch=arm64 ;; *) arch=$(uname -m) ;; esac
layer_id=$(sha256sum "$W/img/layer.tar" | cut -d' ' -f1)
layer=$(blob "$W/img/layer.tar" application/vnd.oci.image.layer.v1.tar)
printf '{"architecture":"%s","os":"linux","config":{"Env":["PATH=/bin"],"Cmd":["/bin/busybox","sleep","100000"]},"rootfs":{"type":"layers","diff_ids":["sha256:%s"]}}' \
  "$arch" "$layer_id" >"$W/img/config.json"
config=$(blob "$W/img/config.json" application/vnd.oci.image.config.v1+json)
printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":%s,"layers":[%s]}' \
  "$config" "$layer" >"$W/img/manifest.json"
manifest=$(blob "$W/img/manifest.json" application/vnd.oci.image.manifest.v1+json)
printf '{"schemaVersion":2,"manifests":[%s]}' \
  "${manifest%\}},\"annotations\":{\"io.containerd.image.name\":\"$image\",\"org.opencontainers.image.ref.name\":\"1\"}}" \
  >"$W/img/oci/index.json"
echo '{"imageLayoutVersion":"1.0.0"}' >"$W/img/oci/oci-layout"
tar -C "$W/img/oci" -cf "$W/egtest.tar" oci-layout index.json blobs
for n in "$ns" k8s.io; do
  "${C[@]}" -n "$n" image import "$W/egtest.tar" >"$W/import.out" 2>&1 \
    || { cat "$W/import.out"; echo "FAIL: ctr image import into $n"; exit 1; }
done
"${C[@]}" -n "$ns" image ls -q | grep -qx "$image" || { echo "FAIL: $image not imported"; exit 1; }

pass=0 fail=0
ok() { echo "ok: $1"; pass=$((pass + 1)); }
bad() { echo "FAILED: $1"; fail=$((fail + 1)); }
show() { sed 's/^/    | /'; } # what the user sees, indented

# ---- ctr run --runc-binary -------------------------------------------------------------
n=0
next_id() { n=$((n + 1)); id=eg-c$n; echo "$id" >>"$W/ids-ctr"; }
ctr_run() { # ctr run flags and args: stdout in $out, stderr in $err, status in $rc
  out=$("${C[@]}" -n "$ns" run --rm "$@" 2>"$W/ctr.err") && rc=0 || rc=$?
  err=$(cat "$W/ctr.err")
}

good=(/bin/busybox sh -c 'echo good; echo err >&2; exit 3')
next_id; ctr_run "$image" "$id" "${good[@]}"; ref=$out referr=$err rrc=$rc
next_id; ctr_run --runc-binary "$W/execguard" "$image" "$id" "${good[@]}"
[ "$out" = "$ref" ] && [ "$err" = "$referr" ] && [ "$rc" = "$rrc" ] && ok "ctr run: good image unchanged (stdout, stderr, rc $rc)" \
  || bad "ctr run good: '$out' / '$err' rc $rc vs '$ref' / '$referr' rc $rrc"

next_id; ctr_run "$image" "$id" /bin/busybox-arm64 echo hi; ref=$err rrc=$rc
next_id; ctr_run --runc-binary "$W/execguard" "$image" "$id" /bin/busybox-arm64 echo hi
echo "  ctr -n $ns run --rm --runc-binary execguard $image $id /bin/busybox-arm64 echo hi (rc $rc), stderr:"
printf '%s\n' "$err" | show
[ -z "$out" ] && ok "ctr run: nothing on stdout" || bad "ctr run: stdout: $out"
out=$err
case "$(printf '%s\n' "$out" | head -1)" in
  "execguard: /bin/busybox-arm64 is built for aarch64"*"[arch-mismatch]") ok "ctr run: the diagnosis comes first" ;;
  *) bad "ctr run: first line: $out" ;;
esac
printf '%s\n' "$out" | tail -1 | grep -q 'exec /bin/busybox-arm64: exec format error' \
  && ok "ctr run: runc's own line follows" || bad "ctr run: no runc line last: $out"
[ "$rc" = "$rrc" ] && [ "$rc" != 0 ] && ok "ctr run: exit status as with runc ($rc)" || bad "ctr run: rc $rc, runc alone $rrc"
[ "$(printf '%s\n' "$out" | grep -v '^execguard: ')" = "$ref" ] && ok "ctr run: runc's output otherwise unchanged" \
  || bad "ctr run: output differs beyond the execguard lines: '$out' vs '$ref'"

# crun behind execguard: a good image unchanged, the diagnosis before crun's own words.
if command -v crun >/dev/null; then
  next_id; ctr_run --runc-binary "$W/eg-crun" "$image" "$id" "${good[@]}"
  [ "$out" = good ] && [ "$err" = err ] && [ "$rc" = 3 ] && ok "ctr run, crun: good image unchanged (rc $rc)" \
    || bad "ctr run crun good: '$out' / '$err' rc $rc"
  next_id; ctr_run --runc-binary "$W/eg-crun" "$image" "$id" /bin/busybox-arm64 echo hi
  echo "  ctr -n $ns run --rm --runc-binary execguard-with-crun $image $id /bin/busybox-arm64 echo hi (rc $rc), stderr:"
  printf '%s\n' "$err" | show
  printf '%s\n' "$err" | head -1 | grep -q '^execguard: /bin/busybox-arm64 is built for aarch64.*\[arch-mismatch\]$' \
    && ok "ctr run, crun: the diagnosis comes first" || bad "ctr run crun: $err"
  printf '%s\n' "$err" | grep -v '^execguard: ' | grep -qi 'exec format error' && [ "$rc" != 0 ] \
    && ok "ctr run, crun: crun's own line follows (rc $rc)" || bad "ctr run crun: no crun line, rc $rc: $err"
else
  bad "crun is not installed"
fi

# With -t: ctr needs a terminal of its own; script(1) gives it one.
if command -v script >/dev/null; then
  tty_run() { # ctr run flags and args, as one shell-quoted string
    next_id
    out=$(script -qec "${C[*]} -n $ns run --rm -t $1 $image $id $2" /dev/null </dev/null | tr -d '\r') && rc=0 || rc=$?
  }
  tty_run "" "/bin/busybox-arm64 echo hi"; ref=$out rrc=$rc
  tty_run "--runc-binary $W/execguard" "/bin/busybox-arm64 echo hi"
  echo "  ctr -n $ns run --rm -t --runc-binary execguard $image $id /bin/busybox-arm64 echo hi (rc $rc):"
  printf '%s\n' "$out" | show
  printf '%s\n' "$out" | head -1 | grep -q '^execguard: /bin/busybox-arm64 is built for aarch64.*\[arch-mismatch\]' \
    && ok "ctr run -t: the diagnosis comes first (rc $rc)" || bad "ctr run -t: $out"
  printf '%s\n' "$out" | grep -q 'exec format error' && ok "ctr run -t: runc's line follows" || bad "ctr run -t: no runc line: $out"
  [ "$rc" = "$rrc" ] && ok "ctr run -t: exit status as with runc ($rc)" || bad "ctr run -t: rc $rc, runc alone $rrc"
  [ "$(printf '%s\n' "$out" | grep -av '^execguard: ')" = "$(printf '%s\n' "$ref")" ] \
    && ok "ctr run -t: the terminal otherwise shows what runc alone shows" \
    || bad "ctr run -t: '$(printf '%s' "$out" | od -c | head -3)' vs runc alone '$(printf '%s' "$ref" | od -c | head -3)'"
  tty_run "" "/bin/busybox echo tty-good"; ref=$out rrc=$rc
  tty_run "--runc-binary $W/execguard" "/bin/busybox echo tty-good"
  [ "$out" = "$ref" ] && [ "$rc" = "$rrc" ] && ok "ctr run -t: good image unchanged (rc $rc)" \
    || bad "ctr run -t good: '$out' rc $rc vs '$ref' rc $rrc"
else
  echo "skipped: ctr run -t (no script(1) from bsdutils to give ctr a terminal)"
fi

# ---- CRI: the runtime handlers kubelet would use ----------------------------------------
"${CRI[@]}" version >"$W/cri.out" 2>&1 && ok "CRI: $(cat "$W/cri.out")" || { cat "$W/cri.out"; echo "FAIL: CRI not reachable"; exit 1; }

pod_run() { # NAME HANDLER: the pod id in $pod
  mkdir -p "$W/pods/$1"
  pod=$("${CRI[@]}" run-pod --name "$1" --handler "$2" --log-dir "$W/pods/$1" 2>"$W/pod.err") \
    || { cat "$W/pod.err"; return 1; }
  pods+=("$pod"); echo "$pod" >>"$W/ids-cri"
}
ctr_create() { # POD-NAME POD-ID CTR-NAME CMD...: the container id in $cid
  local pn=$1 pid_=$2 cn=$3; shift 3
  cid=$("${CRI[@]}" create --pod "$pid_" --name "$pn" --log-dir "$W/pods/$pn" --ctr-name "$cn" \
    --image "$image" --log-path "$cn.log" -- "$@" 2>"$W/create.err") || { cat "$W/create.err"; return 1; }
  echo "$cid" >>"$W/ids-cri"
}

# Warn mode: the app container fails as with runc; its log (what `kubectl logs` shows)
# holds execguard's block on stderr before runc's line.
if pod_run warn execguard; then
  ok "CRI: RunPodSandbox with runtime_handler execguard"
  if ctr_create warn "$pod" arm /bin/busybox-arm64 echo hi; then
    "${CRI[@]}" start "$cid" >"$W/start.out" 2>&1 && src=0 || src=$?
    "${CRI[@]}" wait "$cid" >"$W/wait.out" 2>&1 || true
    log="$W/pods/warn/arm.log"
    echo "  CRI log file (kubectl logs reads it), StartContainer rc $src:"
    show <"$log" 2>/dev/null || echo "    (no log file $log)"
    show <"$W/wait.out"
    d=$(grep -n ' stderr F execguard: /bin/busybox-arm64 is built for aarch64.*\[arch-mismatch\]$' "$log" | head -1 | cut -d: -f1) || true
    r=$(grep -n ' stderr F exec /bin/busybox-arm64: exec format error' "$log" | head -1 | cut -d: -f1) || true
    [ -n "$d" ] && ok "CRI log: execguard's [arch-mismatch] line on stderr" || bad "CRI log: no diagnosis line"
    [ -n "$d" ] && [ -n "$r" ] && [ "$d" -lt "$r" ] && ok "CRI log: runc's exec format error follows it" \
      || bad "CRI log: runc's line missing or first"
    grep -q '^state: CONTAINER_EXITED' "$W/wait.out" && ! grep -q '^exit_code: 0$' "$W/wait.out" \
      && ok "CRI: the container exited non-zero, as with runc ($(grep '^exit_code' "$W/wait.out"))" \
      || bad "CRI: status: $(cat "$W/wait.out")"
  else bad "CRI: CreateContainer (warn)"; fi
  if ctr_create warn "$pod" good /bin/busybox sh -c 'echo good-out; echo good-err >&2'; then
    "${CRI[@]}" start "$cid" >"$W/start.out" 2>&1 || true
    "${CRI[@]}" wait "$cid" >"$W/wait.out" 2>&1 || true
    log="$W/pods/warn/good.log"
    grep -q '^exit_code: 0$' "$W/wait.out" && grep -q ' stdout F good-out$' "$log" && grep -q ' stderr F good-err$' "$log" \
      && [ "$(wc -l <"$log")" = 2 ] && ok "CRI: a good container exits 0, its log unchanged" \
      || bad "CRI good: $(cat "$W/wait.out" "$log" 2>&1)"
  else bad "CRI: CreateContainer (good)"; fi
else bad "CRI: RunPodSandbox (execguard) failed"; fi

# crun behind execguard through a CRI handler: the same log, crun's words after execguard's.
if pod_run crun execguard-crun; then
  ok "CRI: RunPodSandbox with runtime_handler execguard-crun (crun)"
  if ctr_create crun "$pod" arm /bin/busybox-arm64 echo hi; then
    "${CRI[@]}" start "$cid" >"$W/start.out" 2>&1 || true
    "${CRI[@]}" wait "$cid" >"$W/wait.out" 2>&1 || true
    log="$W/pods/crun/arm.log"
    echo "  CRI log file with crun behind execguard:"
    show <"$log" 2>/dev/null || echo "    (no log file $log)"
    d=$(grep -n ' stderr F execguard: /bin/busybox-arm64 is built for aarch64.*\[arch-mismatch\]$' "$log" | head -1 | cut -d: -f1) || true
    r=$(grep -in ' stderr F .*exec format error' "$log" | grep -v 'execguard: ' | head -1 | cut -d: -f1) || true
    [ -n "$d" ] && [ -n "$r" ] && [ "$d" -lt "$r" ] && ok "CRI log, crun: the diagnosis, then crun's exec format error" \
      || bad "CRI log, crun: $(cat "$log" 2>&1)"
    grep -q '^state: CONTAINER_EXITED' "$W/wait.out" && ! grep -q '^exit_code: 0$' "$W/wait.out" \
      && ok "CRI, crun: the container exited non-zero ($(grep '^exit_code' "$W/wait.out"))" || bad "CRI crun: status: $(cat "$W/wait.out")"
  else bad "CRI: CreateContainer (crun)"; fi
  if ctr_create crun "$pod" good /bin/busybox sh -c 'echo good-out; echo good-err >&2'; then
    "${CRI[@]}" start "$cid" >"$W/start.out" 2>&1 || true
    "${CRI[@]}" wait "$cid" >"$W/wait.out" 2>&1 || true
    log="$W/pods/crun/good.log"
    grep -q '^exit_code: 0$' "$W/wait.out" && grep -q ' stdout F good-out$' "$log" && grep -q ' stderr F good-err$' "$log" \
      && [ "$(wc -l <"$log")" = 2 ] && ok "CRI, crun: a good container exits 0, its log unchanged" \
      || bad "CRI crun good: $(cat "$W/wait.out" "$log" 2>&1)"
  else bad "CRI: CreateContainer (crun good)"; fi
else bad "CRI: RunPodSandbox (execguard-crun) failed"; fi

# Enforce mode: the pod (its pause container) starts, the app container is refused at
# StartContainer with execguard's reason in the gRPC error and in ContainerStatus.
if pod_run enforce execguard-enforce; then
  ok "CRI: RunPodSandbox with runtime_handler execguard-enforce"
  st=$("${CRI[@]}" pod-status "$pod" 2>&1) || true
  printf '%s\n' "$st" | grep -q '^state: SANDBOX_READY' && ok "CRI enforce: the pod is ready" || bad "CRI enforce: pod not ready: $st"
  sline=$(grep "\"container_id\":\"$pod\"" "$W/enforce-log.jsonl" 2>/dev/null | head -1) || true
  case "$sline" in
    *'"mode":"warn"'*'"action":"started"'* | *'"action":"started"'*'"mode":"warn"'*) ok "CRI enforce: the sandbox (pause) container is never enforced (execguard logged it in warn mode)" ;;
    *) bad "CRI enforce: sandbox log line: ${sline:-none}" ;;
  esac
  if ctr_create enforce "$pod" arm /bin/busybox-arm64 echo hi; then
    "${CRI[@]}" start "$cid" >"$W/start.out" 2>&1 && src=0 || src=$?
    "${CRI[@]}" wait "$cid" >"$W/wait.out" 2>&1 || true
    echo "  StartContainer (rc $src):"
    show <"$W/start.out"
    echo "  ContainerStatus:"
    show <"$W/wait.out"
    [ "$src" != 0 ] && grep -q 'execguard: /bin/busybox-arm64 is built for aarch64.*\[arch-mismatch\]' "$W/start.out" \
      && ok "CRI enforce: StartContainer fails with execguard's reason" || bad "CRI enforce: StartContainer rc $src: $(cat "$W/start.out")"
    grep -q '^reason: StartError$' "$W/wait.out" && grep -q '^message: .*execguard: /bin/busybox-arm64 is built for aarch64' "$W/wait.out" \
      && ok "CRI enforce: ContainerStatus StartError holds it ($(grep '^exit_code' "$W/wait.out"))" \
      || bad "CRI enforce: status: $(cat "$W/wait.out")"
    grep -q '"action":"refused"' "$W/enforce-log.jsonl" && ok "CRI enforce: execguard's log says refused" || bad "CRI enforce: no refused line in execguard's log"
  else bad "CRI: CreateContainer (enforce)"; fi
  if ctr_create enforce "$pod" good /bin/busybox echo enforce-good; then
    "${CRI[@]}" start "$cid" >"$W/start.out" 2>&1 || true
    "${CRI[@]}" wait "$cid" >"$W/wait.out" 2>&1 || true
    log="$W/pods/enforce/good.log"
    grep -q '^exit_code: 0$' "$W/wait.out" && grep -q ' stdout F enforce-good$' "$log" && [ "$(wc -l <"$log")" = 1 ] \
      && ok "CRI enforce: a good container exits 0 with its output" || bad "CRI enforce good: $(cat "$W/wait.out" "$log" 2>&1)"
  else bad "CRI: CreateContainer (enforce good)"; fi
else bad "CRI: RunPodSandbox (execguard-enforce) failed"; fi

# execguard doctor reads the live config.toml: the CRI handler that runs execguard.
eng=$("$W/execguard" doctor --containerd-config "$W/containerd.toml" --format json | jq -c '.engines[] | select(.engine == "containerd")') || true
printf '%s' "$eng" | jq -e '.found and (.execguard_runtimes | index("execguard")) and .default_runtime == "runc"' >/dev/null \
  && ok "doctor: config.toml's execguard handler is named" || bad "doctor engines: $eng"

for p in "${pods[@]}"; do "${CRI[@]}" rm-pod "$p" >/dev/null 2>&1 || bad "CRI: could not remove pod $p"; done
pods=()

echo "containerd: $pass passed, $fail failed"
[ "$fail" = 0 ]
