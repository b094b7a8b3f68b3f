#!/usr/bin/env bash
# Builds Kubernetes v$K8S_VERSION from Debian's source package, with the reflect2 fix,
# into $K8S_BIN_DIR. Skips everything when the cached binaries are already there.
source "$(dirname "$0")/lib.sh"

BINARIES=(kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy kubectl)

have_binaries() {
  local b
  for b in "${BINARIES[@]}"; do [[ -x $K8S_BIN_DIR/$b ]] || return 1; done
  [[ -f $K8S_BIN_DIR/.complete ]]
}
if have_binaries; then
  log "Kubernetes v$K8S_VERSION binaries cached in $K8S_BIN_DIR"
  exit 0
fi

enable_deb_src() {
  local f=/etc/apt/sources.list.d/debian.sources
  if [[ -f $f ]] && ! grep -q '^Types:.*deb-src' "$f"; then
    log "adding a deb-src entry to $f"
    as_root tee -a "$f" >/dev/null <<'SRC'

Types: deb-src
URIs: http://deb.debian.org/debian
Suites: bookworm
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
    retry 3 10 as_root apt-get update -q
  elif [[ ! -f $f ]] && ! grep -rqs '^deb-src' /etc/apt/sources.list /etc/apt/sources.list.d/; then
    echo 'deb-src http://deb.debian.org/debian bookworm main' |
      as_root tee /etc/apt/sources.list.d/reportjobs-src.list >/dev/null
    retry 3 10 as_root apt-get update -q
  fi
}

fetch_source() {
  [[ -f $K8S_SRC_DIR/.fetched ]] && return 0
  enable_deb_src
  local work=$CACHE_DIR/src/fetch
  rm -rf "$work" "$K8S_SRC_DIR"
  mkdir -p "$work"
  log "fetching Debian's kubernetes source package"
  (cd "$work" && retry 3 15 apt-get source -q kubernetes >/dev/null)
  local tree
  tree=$(find "$work" -mindepth 1 -maxdepth 1 -type d -name 'kubernetes-*' | head -1)
  [[ -n $tree ]] || die "apt-get source kubernetes gave no source tree"
  mv "$tree" "$K8S_SRC_DIR"
  rm -rf "$work"
  touch "$K8S_SRC_DIR/.fetched"
}

fix_reflect2() {
  # kube-apiserver built with Go >= 1.18 crashes (SIGSEGV in mapiterinit) with the vendored
  # reflect2 v1.0.1; Debian's v1.0.2 works.
  local vendored=$K8S_SRC_DIR/vendor/github.com/modern-go/reflect2
  local debian=/usr/share/gocode/src/github.com/modern-go/reflect2
  [[ -d $debian ]] || die "$debian missing (package golang-github-modern-go-reflect2-dev)"
  if ! cmp -s "$debian/reflect2.go" "$vendored/reflect2.go"; then
    log "replacing vendored reflect2 with Debian's copy"
    rm -rf "$vendored"
    cp -r "$debian" "$vendored"
    rm -f "$vendored/go.mod" "$vendored/go.sum"
  fi
}

build() {
  cd "$K8S_SRC_DIR"
  mkdir -p .go/src/k8s.io
  [[ -e .go/src/k8s.io/kubernetes ]] || ln -s ../../.. .go/src/k8s.io/kubernetes
  log "building Kubernetes v$K8S_VERSION (about 5 min on 2 cores with a cold Go cache)"
  local what="" b
  for b in "${BINARIES[@]}"; do what+="cmd/$b "; done
  GOPATH=$PWD/.go GOFLAGS=-mod=vendor CGO_ENABLED=0 \
    KUBE_GIT_VERSION=v$K8S_VERSION KUBE_GIT_TREE_STATE=clean \
    make WHAT="${what% }" >"$CACHE_DIR/k8s-build.log" 2>&1 ||
    { tail -40 "$CACHE_DIR/k8s-build.log" >&2; die "Kubernetes build failed"; }
  mkdir -p "$K8S_BIN_DIR"
  for b in "${BINARIES[@]}"; do
    install -m 0755 "$K8S_SRC_DIR/_output/local/bin/linux/amd64/$b" "$K8S_BIN_DIR/$b"
  done
  touch "$K8S_BIN_DIR/.complete"
}

mkdir -p "$CACHE_DIR/src"
fetch_source
fix_reflect2
build
log "Kubernetes v$K8S_VERSION binaries are in $K8S_BIN_DIR"
