#!/usr/bin/env bash
# Configures containerd + CNI for the local cluster and (re)starts containerd. Idempotent.
source "$(dirname "$0")/lib.sh"

CONFIG=/etc/containerd/config.toml
SOCK=/run/containerd/containerd.sock

if [[ ${1:-} == stop ]]; then # `make cluster-down`: the containerd that `cluster-up` started
  pids=$( (cat "$STATE_DIR/containerd.pid" 2>/dev/null; pgrep -f "^containerd --config $CONFIG") |
    sort -u)
  for pid in $pids; do as_root kill "$pid" 2>/dev/null || true; done
  wait_for 30 "containerd to stop" bash -c "! pgrep -x containerd" || log "containerd still runs"
  rm -f "$STATE_DIR/containerd.pid"
  exit 0
fi

write_if_changed() { # path: content on stdin; returns 0 when the file changed
  local tmp
  tmp=$(mktemp)
  cat >"$tmp"
  if cmp -s "$tmp" "$1"; then rm -f "$tmp"; return 1; fi
  as_root mkdir -p "$(dirname "$1")"
  as_root mv "$tmp" "$1"
  as_root chmod 0644 "$1"
}

changed=0
containerd_config /etc/cni/net.d | write_if_changed "$CONFIG" && changed=1
bridge_conflist reportjobs-bridge cni0 10.1.0.0/16 |
  write_if_changed /etc/cni/net.d/10-reportjobs-bridge.conflist || true
# Only our network config: a stray one would be picked first by name order.
for f in /etc/cni/net.d/*; do
  [[ $f == */10-reportjobs-bridge.conflist ]] || as_root rm -f "$f"
done

containerd_pid() { pgrep -x containerd | head -1; }
if [[ -n $(containerd_pid) && $changed == 1 ]]; then
  log "containerd config changed: restarting containerd"
  as_root kill "$(containerd_pid)"
  wait_for 30 "containerd to stop" bash -c '! pgrep -x containerd'
fi
if [[ -z $(containerd_pid) ]]; then
  mkdir -p "$STATE_DIR/logs"
  log "starting containerd"
  setsid containerd --config "$CONFIG" >>"$STATE_DIR/logs/containerd.log" 2>&1 </dev/null &
  echo $! >"$STATE_DIR/containerd.pid"
fi
wait_for 60 "containerd socket" ctr --address "$SOCK" version
sysctl -qw net.ipv4.ip_forward=1 || true
modprobe br_netfilter 2>/dev/null || true
sysctl -qw net.bridge.bridge-nf-call-iptables=1 2>/dev/null || true
log "containerd is ready"
