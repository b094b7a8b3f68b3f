# Shared settings and helpers for the test-bed scripts. Source it; do not run it.
# shellcheck shell=bash
set -euo pipefail

REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
K8S_VERSION=${K8S_VERSION:-1.20.2}
# Everything expensive is cached here, outside the work tree, keyed by version.
CACHE_DIR=${REPORTJOBS_CACHE_DIR:-/var/cache/reportjobs}
K8S_SRC_DIR=$CACHE_DIR/src/kubernetes-$K8S_VERSION
K8S_BIN_DIR=$CACHE_DIR/k8s-v$K8S_VERSION/bin
# Runtime state of the local cluster (PID files, logs, etcd data): outside the work tree too.
STATE_DIR=${REPORTJOBS_STATE_DIR:-/var/lib/reportjobs-testbed}
CLUSTER_DIR=$REPO_ROOT/.cluster
KUBECONFIG_OUT=$CLUSTER_DIR/kubeconfig
KIND_CLUSTER_NAME=${KIND_CLUSTER_NAME:-reportjobs}

log() { printf '[%s] %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# retry N DELAY CMD...: run CMD until it succeeds, at most N times.
retry() {
  local tries=$1 delay=$2 n=1
  shift 2
  until "$@"; do
    ((n >= tries)) && return 1
    log "retry $n/$tries failed: $*; again in ${delay}s"
    sleep "$delay"
    n=$((n + 1))
  done
}

# wait_for SECONDS DESCRIPTION CMD...: poll CMD once a second until it succeeds.
wait_for() {
  local deadline=$(($(date +%s) + $1)) what=$2
  shift 2
  until "$@" >/dev/null 2>&1; do
    (($(date +%s) >= deadline)) && { log "timed out waiting for $what"; return 1; }
    sleep 1
  done
}

# Docker and kind are used when (and only when) a Docker engine answers.
use_kind() {
  [[ ${REPORTJOBS_TESTBED:-auto} == kind ]] && return 0
  [[ ${REPORTJOBS_TESTBED:-auto} == local ]] && return 1
  command -v kind >/dev/null 2>&1 && command -v docker >/dev/null 2>&1 &&
    timeout 10 docker info >/dev/null 2>&1
}

# The containerd of every node of the local cluster that is running (the second node is optional).
containerd_sockets() {
  local sock
  for sock in /run/containerd/containerd.sock /run/containerd-node2/containerd.sock; do
    [[ -S $sock ]] && ctr --address "$sock" --timeout 5s version >/dev/null 2>&1 && echo "$sock"
  done
  return 0
}

# containerd_config CNI_DIR [ROOT STATE SOCKET]: a containerd config for one node of the test bed.
containerd_config() {
  echo "# Written by reportjobs scripts/testbed"
  echo "version = 2"
  if (($# == 4)); then
    printf 'root = "%s"\nstate = "%s"\n[grpc]\n  address = "%s"\n' "$2" "$3" "$4"
    printf '[ttrpc]\n  address = "%s.ttrpc"\n' "$4"
  fi
  cat <<TOML
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "registry.k8s.io/pause:3.6"
  # This machine withholds CAP_SYS_RESOURCE: a negative oom_score_adj would fail.
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$1"
  [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
    runtime_type = "io.containerd.runc.v2"
TOML
}

# bridge_conflist NAME BRIDGE SUBNET: a CNI bridge network for one node's pods.
bridge_conflist() {
  cat <<JSON
{
  "cniVersion": "0.4.0",
  "name": "$1",
  "plugins": [
    {"type": "bridge", "bridge": "$2", "isGateway": true, "ipMasq": true, "hairpinMode": true,
     "ipam": {"type": "host-local", "ranges": [[{"subnet": "$3"}]],
              "routes": [{"dst": "0.0.0.0/0"}]}},
    {"type": "portmap", "capabilities": {"portMappings": true}},
    {"type": "loopback"}
  ]
}
JSON
}

# remove_kubelet_dir DIR: a kubelet's directory, after unmounting its pods' volumes (tmpfs).
remove_kubelet_dir() {
  local mount
  for mount in $(findmnt -rn -o TARGET | grep "^$1/" | sort -r); do
    umount -l "$mount" 2>/dev/null || true
  done
  rm -rf "$1" 2>/dev/null || log "could not remove all of $1 (ignored)"
}

as_root() { if ((EUID == 0)); then "$@"; else sudo "$@"; fi; }
