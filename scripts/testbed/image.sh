#!/usr/bin/env bash
# `make image`: builds the project image (Docker where an engine runs, else buildah on a cached
# debootstrap'd Debian base) and loads it into the cluster (kind load / ctr import).
# The tag is a hash of the build inputs, so an unchanged tree is neither rebuilt nor reloaded.
# Writes the image reference to .cluster/image for `make deploy` and the e2e tests.
source "$(dirname "$0")/lib.sh"

REPO=${IMAGE_REPOSITORY:-localhost/reportjobs}
BASE=localhost/reportjobs-base:bookworm
BASE_ARCHIVE=$CACHE_DIR/images/reportjobs-base-bookworm.tar
cd "$REPO_ROOT"

inputs_hash() { # every file the Dockerfile can copy, as git sees the working tree
  git ls-files -co --exclude-standard -- Dockerfile requirements.lock pyproject.toml \
    model kube gateway operator worker | LC_ALL=C sort | while read -r f; do
    [[ -f $f ]] && sha256sum "$f"
  done | sha256sum | cut -c1-12
}
TAG=$(inputs_hash)
REF=$REPO:$TAG
mkdir -p "$CLUSTER_DIR"

in_containerd_at() { # SOCKET REF
  ctr --address "$1" -n k8s.io images ls -q 2>/dev/null | grep -qx "$2"
}

in_containerd() { # on every node
  local sock
  for sock in $(containerd_sockets); do
    in_containerd_at "$sock" "$1" || return 1
  done
}

import_everywhere() { # ARCHIVE: import it into every node's containerd; true once all list REF
  local sock
  for sock in $(containerd_sockets); do
    in_containerd_at "$sock" "$REF" || ctr --address "$sock" -n k8s.io images import "$1" >/dev/null
  done
  in_containerd "$REF"
}

base_image() { # a Debian bookworm root with Python 3.11, made once and cached as an archive
  buildah inspect --type image "$BASE" >/dev/null 2>&1 && return 0
  if [[ ! -f $BASE_ARCHIVE ]]; then
    local root
    root=$(mktemp -d)
    log "debootstrap: a minimal Debian bookworm with Python (about 40 s)"
    retry 3 10 debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates \
      bookworm "$root" http://deb.debian.org/debian >"$CACHE_DIR/debootstrap.log" 2>&1 ||
      die "debootstrap failed: see $CACHE_DIR/debootstrap.log"
    rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*
    local c
    c=$(buildah from scratch)
    buildah copy -q "$c" "$root" / >/dev/null
    buildah config --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
      --cmd '["python3"]' "$c"
    buildah commit -q "$c" "$BASE" >/dev/null
    buildah rm "$c" >/dev/null
    rm -rf "$root"
    mkdir -p "$(dirname "$BASE_ARCHIVE")"
    buildah push -q "$BASE" "oci-archive:$BASE_ARCHIVE.tmp:$BASE"
    mv "$BASE_ARCHIVE.tmp" "$BASE_ARCHIVE"
  else
    buildah pull -q "oci-archive:$BASE_ARCHIVE" >/dev/null
    buildah tag "$(buildah images -q --filter reference="$BASE" | head -1)" "$BASE" 2>/dev/null || true
  fi
}

with_buildah() {
  if in_containerd "$REF"; then
    log "image $REF already in the cluster"
    return 0
  fi
  if ! buildah inspect --type image "$REF" >/dev/null 2>&1; then
    base_image
    log "building $REF with buildah (chroot isolation)"
    retry 2 5 buildah bud -q --isolation chroot --pull=false --layers \
      --build-arg "BASE_IMAGE=$BASE" -v /etc/ssl/certs:/etc/ssl/certs:ro \
      -t "$REF" -t "$REPO:dev" . >/dev/null
  fi
  local archive
  archive=$(mktemp -u --suffix=.tar)
  buildah push -q "$REF" "oci-archive:$archive:$REF"
  # A node's containerd that has just started may not register the import at once (seen once
  # right after the second node came up): import again until every node lists the image.
  retry 3 5 import_everywhere "$archive" || die "ctr import did not register $REF"
  rm -f "$archive"
  log "image $REF imported into containerd"
}

with_docker() {
  docker image inspect "$REF" >/dev/null 2>&1 || docker build -t "$REF" -t "$REPO:dev" .
  kind load docker-image "$REF" --name "$KIND_CLUSTER_NAME"
}

if [[ ${1:-} == base ]]; then use_kind || base_image; exit 0; fi
if use_kind; then with_docker; else with_buildah; fi
echo "$REF" >"$CLUSTER_DIR/image"
log "image: $REF"
