#!/usr/bin/env bash
# `make cluster-up` / `make cluster-down`: kind where a Docker engine runs, else the local
# cluster built from Debian's packages. Both write the kubeconfig to .cluster/kubeconfig.
# usage: cluster.sh up|down
source "$(dirname "$0")/lib.sh"
here=$(dirname "$0")

kind_up() {
  mkdir -p "$CLUSTER_DIR"
  if ! kind get clusters 2>/dev/null | grep -qx "$KIND_CLUSTER_NAME"; then
    retry 2 10 kind create cluster --name "$KIND_CLUSTER_NAME" \
      --config "$REPO_ROOT/kind-config.yaml" --wait 180s
  fi
  kind get kubeconfig --name "$KIND_CLUSTER_NAME" >"$KUBECONFIG_OUT"
  chmod 600 "$KUBECONFIG_OUT"
  log "kind cluster is up: KUBECONFIG=$KUBECONFIG_OUT"
}

case ${1:-} in
  up)
    if use_kind; then
      kind_up
    else
      bash "$here/packages.sh"
      bash "$here/build-kubernetes.sh"
      bash "$here/containerd.sh"
      bash "$here/pause-image.sh"
      bash "$here/local-cluster.sh" up
    fi ;;
  down)
    if use_kind; then
      kind delete cluster --name "$KIND_CLUSTER_NAME"
      rm -f "$KUBECONFIG_OUT"
    else
      bash "$here/local-cluster.sh" down
      bash "$here/containerd.sh" stop
    fi ;;
  *) die "usage: $0 up|down" ;;
esac
