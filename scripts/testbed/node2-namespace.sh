#!/usr/bin/env bash
# Runs the second node's containerd and kubelet inside their own mount namespace
# (started by second-node.sh through `unshare --mount --propagation slave`).
# Why: pod logs live under a kubelet-wide path, /var/log/pods, and each kubelet deletes the log
# directories of pods it does not know, so two kubelets sharing it delete each other's logs.
# usage: node2-namespace.sh NODE_DIR LOG_DIR KUBELET_COMMAND...
set -euo pipefail
dir=$1 logs=$2
shift 2
mkdir -p "$dir/log/pods" "$dir/log/containers"
mount --bind "$dir/log/pods" /var/log/pods
mount --bind "$dir/log/containers" /var/log/containers
containerd --config "$dir/containerd.toml" >>"$logs/containerd-node2.log" 2>&1 </dev/null &
exec "$@"
