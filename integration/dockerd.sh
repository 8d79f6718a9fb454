# Sourced by integration/docker.sh and bench/docker.sh: a private containerd and dockerd (own
# sockets, roots and state dirs under $W), stopped by dockerd_down. Exactly one dockerd: one
# started with `--bridge none` removes the host's docker0 (RUNTIMES.md §9).
#
#   dockerd_up W     start both; daemon.json is $W/daemon.json ('{}' if absent); sets D (the
#                    docker client as an array) and DOCKERD_PIDS
#   dockerd_down W   stop what dockerd_up started, unmount and remove $W

dockerd_up() {
  local w=$1
  cat >"$w/containerd.toml" <<TOML
version = 2
root = "$w/containerd-root"
state = "$w/containerd-state"
[grpc]
  address = "$w/containerd.sock"
[ttrpc]
  address = "$w/containerd.sock.ttrpc"
TOML
  [ -f "$w/daemon.json" ] || echo '{}' >"$w/daemon.json"
  DOCKERD_PIDS=()
  containerd --config "$w/containerd.toml" >"$w/containerd.log" 2>&1 &
  DOCKERD_PIDS+=($!)
  for _ in $(seq 100); do [ -S "$w/containerd.sock" ] && break; sleep 0.1; done
  dockerd --config-file "$w/daemon.json" -H "unix://$w/docker.sock" --data-root "$w/docker" \
    --exec-root "$w/docker-exec" --pidfile "$w/dockerd.pid" --containerd "$w/containerd.sock" \
    --bridge none --iptables=false --ip-masq=false >"$w/dockerd.log" 2>&1 &
  DOCKERD_PIDS+=($!)
  D=(/usr/bin/docker -H "unix://$w/docker.sock")
  for _ in $(seq 150); do "${D[@]}" info >/dev/null 2>&1 && break; sleep 0.2; done
  "${D[@]}" info >/dev/null 2>&1 || { tail -20 "$w/dockerd.log"; echo "FAIL: dockerd did not start"; return 1; }
}

dockerd_down() {
  local w=$1 p
  for p in "${DOCKERD_PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${DOCKERD_PIDS[@]}"; do
    for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$p" 2>/dev/null || true
  done
  umount -R "$w"/docker* 2>/dev/null || true
  rm -rf "$w" 2>/dev/null || true
}
