#!/usr/bin/env bash
# Starts or stops the single-node cluster built from Debian's Kubernetes source.
# usage: local-cluster.sh up|down
source "$(dirname "$0")/lib.sh"

PIDS_FILE=$STATE_DIR/pids
ADMIN_KUBECONFIG=/var/run/kubernetes/admin.kubeconfig
COMPONENTS=(kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy)
export PATH=$K8S_BIN_DIR:$PATH
HERE=$(dirname "$0")
# 2 (default): a second kubelet with its own containerd joins, so Jobs can spread over nodes.
NODES=${REPORTJOBS_NODES:-2}

cluster_healthy() {
  [[ -f $KUBECONFIG_OUT ]] &&
    kubectl --kubeconfig "$KUBECONFIG_OUT" get --raw /readyz >/dev/null 2>&1 &&
    kubectl --kubeconfig "$KUBECONFIG_OUT" get nodes --no-headers 2>/dev/null | grep -qw Ready
}

our_pids() { # every cluster process, from our PID file or not (leftovers of killed sessions)
  local c
  for c in "${COMPONENTS[@]}"; do pgrep -f "(^|/)$c( |\$)" || true; done
  pgrep -f "(^|/)etcd .*--data-dir" || true
  if [[ -f $PIDS_FILE ]]; then cat "$PIDS_FILE"; fi
}

alive() { ps -o stat= -p "$1" 2>/dev/null | grep -qv '^Z'; } # a zombie is not alive

stop_processes() {
  local pids
  pids=$(for p in $(our_pids | sort -u); do if alive "$p"; then echo "$p"; fi; done | tr '\n' ' ')
  [[ -n ${pids// } ]] || return 0
  log "stopping cluster processes: $pids"
  # shellcheck disable=SC2086
  as_root kill $pids 2>/dev/null || true
  local deadline=$(($(date +%s) + 20)) p
  for p in $pids; do
    while alive "$p" && (($(date +%s) < deadline)); do sleep 0.5; done
    if alive "$p"; then as_root kill -9 "$p" 2>/dev/null || true; fi
  done
  rm -f "$PIDS_FILE"
}

stop_pod_containers() { # what the kubelet left running in containerd
  command -v ctr >/dev/null && ctr --timeout 5s version >/dev/null 2>&1 || return 0
  local c
  for c in $(ctr -n k8s.io containers ls -q 2>/dev/null); do
    ctr -n k8s.io tasks kill -s SIGKILL "$c" >/dev/null 2>&1 || true
    ctr -n k8s.io tasks delete -f "$c" >/dev/null 2>&1 || true
    ctr -n k8s.io containers rm "$c" >/dev/null 2>&1 || true
  done
  local ns
  for ns in $(ip netns list 2>/dev/null | awk '/^cni-/ {print $1}'); do
    ip netns delete "$ns" 2>/dev/null || true
  done
}

clean_leftovers() {
  log "cleaning leftovers of an earlier cluster"
  stop_pod_containers
  # Pod IPs handed out by the old cluster: host-local would leak them.
  as_root rm -rf /var/lib/cni/networks/reportjobs-bridge
  as_root rm -rf "$STATE_DIR/etcd"
  remove_kubelet_dir /var/lib/kubelet/pods
  # kube-proxy rewrites its own chains; drop the old ones so nothing points at dead pods.
  if iptables-save 2>/dev/null | grep -q KUBE-; then
    kube-proxy --cleanup >/dev/null 2>&1 || true
  fi
  rm -f "$KUBECONFIG_OUT"
}

start_main_node() {
  if cluster_healthy; then
    log "local cluster already up ($KUBECONFIG_OUT)"
    return 0
  fi
  bash "$HERE/second-node.sh" down
  stop_processes
  clean_leftovers
  mkdir -p "$STATE_DIR/logs" "$CLUSTER_DIR"
  log "starting Kubernetes v$K8S_VERSION with hack/local-up-cluster.sh (about 60-80 s)"
  (
    cd "$K8S_SRC_DIR"
    env ETCD_DIR="$STATE_DIR/etcd" LOG_DIR="$STATE_DIR/logs" \
      CONTAINER_RUNTIME=remote \
      CONTAINER_RUNTIME_ENDPOINT=unix:///run/containerd/containerd.sock \
      KUBE_ENABLE_CLUSTER_DNS=false ALLOW_PRIVILEGED=true CGROUP_DRIVER=cgroupfs \
      ENABLE_DAEMON=true KUBE_PROXY_MODE=iptables FEATURE_GATES=TTLAfterFinished=true \
      hack/local-up-cluster.sh -o "$K8S_BIN_DIR"
  ) >"$STATE_DIR/logs/local-up-cluster.log" 2>&1 ||
    { tail -30 "$STATE_DIR/logs/local-up-cluster.log" >&2; die "local-up-cluster.sh failed"; }
  our_pids | sort -u >"$PIDS_FILE.new"
  mv "$PIDS_FILE.new" "$PIDS_FILE"
  kubectl --kubeconfig "$ADMIN_KUBECONFIG" config view --raw --flatten >"$KUBECONFIG_OUT"
  chmod 600 "$KUBECONFIG_OUT"
  wait_for 180 "the node to be Ready" cluster_healthy || die "node never became Ready"
  wait_for 120 "the default service account" \
    kubectl --kubeconfig "$KUBECONFIG_OUT" -n default get serviceaccount default
  log "local cluster is up: KUBECONFIG=$KUBECONFIG_OUT"
}

up() {
  start_main_node
  if ((NODES >= 2)); then bash "$HERE/second-node.sh" up; fi
}

down() {
  bash "$HERE/second-node.sh" down
  stop_processes
  stop_pod_containers
  rm -f "$KUBECONFIG_OUT"
  log "local cluster is down"
}

case ${1:-} in
  up) up ;;
  down) down ;;
  *) die "usage: $0 up|down" ;;
esac
