#!/usr/bin/env bash
# Builds the pause image from the Kubernetes source (no registry here) and imports it. Cached.
source "$(dirname "$0")/lib.sh"

NAME=registry.k8s.io/pause:3.6
ARCHIVE=$CACHE_DIR/images/pause-3.6.tar

if ctr -n k8s.io images ls -q | grep -qx "$NAME"; then
  log "pause image already in containerd"
  exit 0
fi
if [[ ! -f $ARCHIVE ]]; then
  log "building the pause image"
  work=$(mktemp -d)
  trap 'rm -rf "$work"' EXIT
  gcc -Os -static -o "$work/pause" "$K8S_SRC_DIR/build/pause/linux/pause.c"
  strip "$work/pause" || true
  ctr_id=$(buildah from scratch)
  buildah copy "$ctr_id" "$work/pause" /pause >/dev/null
  buildah config --entrypoint '["/pause"]' "$ctr_id"
  buildah commit -q "$ctr_id" "$NAME" >/dev/null
  buildah rm "$ctr_id" >/dev/null
  mkdir -p "$(dirname "$ARCHIVE")"
  rm -f "$ARCHIVE"
  buildah push -q "$NAME" "oci-archive:$ARCHIVE:$NAME"
fi
ctr -n k8s.io images import "$ARCHIVE" >/dev/null
log "pause image imported"
