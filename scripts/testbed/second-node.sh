#!/usr/bin/env bash
# A second node on the same machine, so the scheduler has a choice: its own containerd (own root,
# state, socket and CNI bridge cni1 on 10.2.0.0/16) and its own kubelet (node 127.0.0.2, cgroup
# root /node2, a client certificate signed by the local cluster's client CA), both in a mount
# namespace of their own with their own /var/log/pods (see node2-namespace.sh).
# usage: second-node.sh up|down   (up needs the main node running: local-cluster.sh up)
source "$(dirname "$0")/lib.sh"

NODE=127.0.0.2
DIR=$STATE_DIR/node2
SOCK=/run/containerd-node2/containerd.sock
CERTS=/var/run/kubernetes
export PATH=$K8S_BIN_DIR:$PATH

node_ready() {
  kubectl --kubeconfig "$KUBECONFIG_OUT" get node "$NODE" --no-headers 2>/dev/null | grep -qw Ready
}

write_containerd_config() {
  mkdir -p "$DIR/cni"
  containerd_config "$DIR/cni" /var/lib/containerd-node2 /run/containerd-node2 "$SOCK" \
    >"$DIR/containerd.toml"
  bridge_conflist reportjobs-bridge-2 cni1 10.2.0.0/16 >"$DIR/cni/10-reportjobs-bridge-2.conflist"
}

write_kubelet_files() {
  mkdir -p "$DIR/pki"
  openssl req -new -newkey rsa:2048 -nodes -keyout "$DIR/pki/client.key" -out "$DIR/pki/client.csr" \
    -subj "/O=system:nodes/CN=system:node:$NODE" 2>/dev/null
  openssl x509 -req -in "$DIR/pki/client.csr" -CA "$CERTS/client-ca.crt" -CAkey "$CERTS/client-ca.key" \
    -CAcreateserial -out "$DIR/pki/client.crt" -days 30 2>/dev/null
  local kc=$DIR/kubeconfig
  rm -f "$kc"
  kubectl config --kubeconfig "$kc" set-cluster local --server=https://localhost:6443 \
    --certificate-authority="$CERTS/server-ca.crt" --embed-certs >/dev/null
  kubectl config --kubeconfig "$kc" set-credentials node --client-certificate="$DIR/pki/client.crt" \
    --client-key="$DIR/pki/client.key" --embed-certs >/dev/null
  kubectl config --kubeconfig "$kc" set-context node --cluster=local --user=node >/dev/null
  kubectl config --kubeconfig "$kc" use-context node >/dev/null
  cat >"$DIR/kubelet.yaml" <<YAML
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: "$NODE"
healthzBindAddress: "$NODE"
port: 10250
readOnlyPort: 0
cgroupDriver: cgroupfs
cgroupRoot: /node2
cgroupsPerQOS: true
failSwapOn: false
runtimeRequestTimeout: 2m
authentication:
  webhook: {enabled: true}
  x509: {clientCAFile: "$CERTS/client-ca.crt"}
authorization: {mode: Webhook}
evictionHard: {memory.available: 100Mi, nodefs.available: 10%, nodefs.inodesFree: 5%}
featureGates: {TTLAfterFinished: true}
YAML
  local controller
  for controller in /sys/fs/cgroup/*/; do
    [[ -e $controller/cgroup.procs ]] && mkdir -p "$controller/node2"
  done
  # The first node's pods sit in /kubepods, whose CPU weight the kubelet sets to the node's
  # CPUs (1024 each); this node's sit in /node2/kubepods, so /node2 weighs the same. Left at
  # the default 1024, this node's pods together got half the CPU of the first node's whenever
  # the machine was busy (over two benchmark runs, a gateway here answered 7.6% of its
  # submissions in over 250 ms, the one on the first node 1%).
  if [[ -e /sys/fs/cgroup/cpu/node2/cpu.shares ]]; then
    echo $(($(nproc) * 1024)) >/sys/fs/cgroup/cpu/node2/cpu.shares
  fi
}

start() { # start NAME CMD...: in the background, logged (down finds it by its command line)
  local name=$1
  shift
  setsid "$@" >>"$STATE_DIR/logs/$name.log" 2>&1 </dev/null &
}

up() {
  if node_ready && pgrep -f "$KUBELET_PATTERN" >/dev/null; then
    log "second node $NODE already Ready"
    return 0
  fi
  down
  mkdir -p "$DIR" "$STATE_DIR/logs"
  write_containerd_config
  write_kubelet_files
  log "starting the second node's containerd and kubelet ($NODE), in their own mount namespace"
  start kubelet-node2 unshare --mount --propagation slave \
    bash "$(dirname "$0")/node2-namespace.sh" "$DIR" "$STATE_DIR/logs" \
    "$K8S_BIN_DIR/kubelet" --v=2 --hostname-override="$NODE" \
    --container-runtime=remote --container-runtime-endpoint="unix://$SOCK" \
    --kubeconfig="$DIR/kubeconfig" --config="$DIR/kubelet.yaml" \
    --root-dir=/var/lib/kubelet-node2 --cert-dir="$DIR/pki"
  wait_for 60 "the second containerd" ctr --address "$SOCK" version
  ctr --address "$SOCK" -n k8s.io images import "$CACHE_DIR/images/pause-3.6.tar" >/dev/null
  wait_for 120 "node $NODE to be Ready" node_ready || die "second node never became Ready"
  log "second node $NODE is Ready"
}

KUBELET_PATTERN="kubelet .*--root-dir=/var/lib/kubelet-node2"
CONTAINERD_PATTERN="containerd --config $DIR/containerd.toml"

stop_matching() { # stop_matching PATTERN: TERM, up to 20 s, then KILL
  pkill -f "$1" 2>/dev/null || return 0
  local _
  for _ in $(seq 40); do
    pgrep -f "$1" >/dev/null || return 0
    sleep 0.5
  done
  pkill -9 -f "$1" 2>/dev/null || true
}

down() {
  stop_matching "$KUBELET_PATTERN"
  if [[ -f $DIR/containerd.toml ]]; then
    # Its containers outlive it (their shims keep running): it must be up to remove them.
    pgrep -f "$CONTAINERD_PATTERN" >/dev/null ||
      start containerd-node2 containerd --config "$DIR/containerd.toml"
    if wait_for 30 "the second containerd" ctr --address "$SOCK" version; then
      local c
      for c in $(ctr --address "$SOCK" -n k8s.io containers ls -q 2>/dev/null); do
        ctr --address "$SOCK" -n k8s.io tasks kill -s SIGKILL "$c" >/dev/null 2>&1 || true
        ctr --address "$SOCK" -n k8s.io tasks delete -f "$c" >/dev/null 2>&1 || true
        ctr --address "$SOCK" -n k8s.io containers rm "$c" >/dev/null 2>&1 || true
      done
    fi
    stop_matching "$CONTAINERD_PATTERN"
  fi
  rm -rf /var/lib/cni/networks/reportjobs-bridge-2
  remove_kubelet_dir /var/lib/kubelet-node2/pods
}

case ${1:-} in
  up) up ;;
  down) down ;;
  *) die "usage: $0 up|down" ;;
esac
