#!/usr/bin/env bash
# Installs the Debian packages the no-Docker test bed needs. Idempotent: installs only what is missing.
source "$(dirname "$0")/lib.sh"

PACKAGES=(golang-go rsync jq sudo etcd-server golang-cfssl containerd runc
  containernetworking-plugins iptables conntrack buildah debootstrap
  golang-github-modern-go-reflect2-dev dpkg-dev make gcc libc6-dev procps iproute2
  curl ca-certificates openssl util-linux python3-venv)

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if ((${#missing[@]})); then
  log "installing: ${missing[*]}"
  retry 3 10 as_root apt-get update -q
  retry 3 10 as_root env DEBIAN_FRONTEND=noninteractive \
    apt-get install -y -q --no-install-recommends "${missing[@]}"
else
  log "Debian packages already installed"
fi
