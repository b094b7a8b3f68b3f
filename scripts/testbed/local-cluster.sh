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
# kube-controller-manager's client rate limit (its default, 20/30, caps the Job controller at
# about 6 pods/s). 0 for REPORTJOBS_KCM_TUNING keeps Kubernetes' defaults. README says why.
KCM_TUNING=${REPORTJOBS_KCM_TUNING:-1}
KCM_QPS=${REPORTJOBS_KCM_QPS:-300}
KCM_BURST=${REPORTJOBS_KCM_BURST:-600}
KCM_LOG=$STATE_DIR/logs/kube-controller-manager.log # where local-up-cluster.sh sends its output
KCM_PATTERN="(^|/)kube-controller-manager( |\$)"
# etcd's data on a tmpfs (1), or on disk (0). Off by default, on in CI (CI=true). README says why.
ETCD_DIR=$STATE_DIR/etcd
if [[ ${CI:-} == true ]]; then ETCD_TMPFS=${REPORTJOBS_ETCD_TMPFS:-1}; else ETCD_TMPFS=${REPORTJOBS_ETCD_TMPFS:-0}; fi
ETCD_TMPFS_SIZE=${REPORTJOBS_ETCD_TMPFS_SIZE:-4g} # a ceiling: a tmpfs holds only what is written

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
  prepare_etcd_dir
  remove_kubelet_dir /var/lib/kubelet/pods
  # kube-proxy rewrites its own chains; drop the old ones so nothing points at dead pods.
  if iptables-save 2>/dev/null | grep -q KUBE-; then
    kube-proxy --cleanup >/dev/null 2>&1 || true
  fi
  rm -f "$KUBECONFIG_OUT"
}

etcd_dir_is_tmpfs() { [[ $(findmnt -n -o FSTYPE --mountpoint "$ETCD_DIR" 2>/dev/null) == tmpfs ]]; }

unmount_etcd_tmpfs() { # etcd must be stopped
  local n
  for n in 1 2 3; do
    etcd_dir_is_tmpfs || return 0
    as_root umount "$ETCD_DIR" 2>/dev/null || { sleep 1; ((n < 3)) || as_root umount -l "$ETCD_DIR"; }
  done
  ! etcd_dir_is_tmpfs || die "could not unmount the tmpfs on $ETCD_DIR"
}

prepare_etcd_dir() { # an empty etcd data dir, a tmpfs if asked (etcd must be stopped)
  unmount_etcd_tmpfs
  as_root rm -rf "$ETCD_DIR"
  if [[ $ETCD_TMPFS == 1 ]]; then
    as_root mkdir -p -m 700 "$ETCD_DIR"
    as_root mount -t tmpfs -o "size=$ETCD_TMPFS_SIZE,mode=0700" reportjobs-etcd "$ETCD_DIR"
    log "etcd's data dir $ETCD_DIR is a tmpfs (size=$ETCD_TMPFS_SIZE; REPORTJOBS_ETCD_TMPFS=0 for disk)"
  fi
}

report_etcd_dir() { # on an already running cluster: say where etcd writes, and if it differs
  local now=0
  if etcd_dir_is_tmpfs; then now=1; fi
  if [[ $now != "$ETCD_TMPFS" ]]; then
    log "note: etcd's data dir is $( ((now)) && echo a tmpfs || echo on disk), not as" \
      "REPORTJOBS_ETCD_TMPFS=$ETCD_TMPFS asks: it applies at the next start (make cluster-down first)"
  fi
}

kcm_pids() { # the kube-controller-manager processes (not a sudo that started one)
  local p
  for p in $(pgrep -f "$KCM_PATTERN"); do
    [[ $(cat "/proc/$p/comm" 2>/dev/null) == sudo ]] || echo "$p"
  done
}

kcm_flag() { # kcm_flag PID NAME: the value of --NAME=VALUE in PID's command line, empty if none
  tr '\0' '\n' <"/proc/$1/cmdline" 2>/dev/null | sed -n "s/^--$2=//p" | tail -1
}

kcm_ready() { # kcm_ready PID LOG_OFFSET: PID runs, answers /healthz, and its Job controller started
  alive "$1" &&
    [[ $(curl -skf --max-time 5 https://127.0.0.1:10257/healthz 2>/dev/null) == ok ]] &&
    tail -c +"$(($2 + 1))" "$KCM_LOG" 2>/dev/null | grep -q "Caches are synced for job"
}

stop_pid() { # stop_pid PID: TERM, up to 20 s, then KILL
  as_root kill "$1" 2>/dev/null || true
  local _
  for _ in $(seq 40); do
    alive "$1" || return 0
    sleep 0.5
  done
  as_root kill -9 "$1" 2>/dev/null || true
  sleep 1
}

start_kcm() { # start_kcm ARGS...: detached, in its working directory and environment, logged
  local offset pid
  offset=$(stat -c %s "$KCM_LOG" 2>/dev/null || echo 0)
  (cd "$kcm_cwd" && exec setsid env -i "${kcm_env[@]}" "$@" >>"$KCM_LOG" 2>&1 </dev/null) &
  pid=$!
  if wait_for 120 "kube-controller-manager $pid to be healthy" kcm_ready "$pid" "$offset"; then
    echo "$pid"
    return 0
  fi
  stop_pid "$pid"
  return 1
}

# local-up-cluster.sh has no hook for kube-controller-manager's flags: restart it with the command
# line it runs with, plus the tuning. A no-op when it already runs with it; run on every `up`.
tune_controller_manager() {
  [[ $KCM_TUNING == 1 ]] || { log "kube-controller-manager keeps its default client QPS and burst"; return 0; }
  local pids old new arg
  mapfile -t pids < <(kcm_pids)
  ((${#pids[@]} == 1)) || die "expected one kube-controller-manager, found: ${pids[*]:-none} (make cluster-down; make cluster-up)"
  old=${pids[0]}
  if [[ $(kcm_flag "$old" kube-api-qps) == "$KCM_QPS" && $(kcm_flag "$old" kube-api-burst) == "$KCM_BURST" ]]; then
    log "kube-controller-manager already runs with --kube-api-qps=$KCM_QPS --kube-api-burst=$KCM_BURST"
    return 0
  fi
  local argv=() tuned=()
  mapfile -d '' -t argv <"/proc/$old/cmdline"
  mapfile -d '' -t kcm_env <"/proc/$old/environ"
  kcm_cwd=$(readlink "/proc/$old/cwd")
  for arg in "${argv[@]}"; do
    case $arg in --kube-api-qps=* | --kube-api-burst=*) ;; *) tuned+=("$arg") ;; esac
  done
  tuned+=("--kube-api-qps=$KCM_QPS" "--kube-api-burst=$KCM_BURST")
  log "restarting kube-controller-manager ($old) with --kube-api-qps=$KCM_QPS --kube-api-burst=$KCM_BURST"
  stop_pid "$old"
  for _ in 1 2 3; do
    if new=$(start_kcm "${tuned[@]}"); then break; fi
    new=""
    log "the tuned kube-controller-manager did not become healthy; see $KCM_LOG"
  done
  if [[ -z $new ]]; then
    log "starting kube-controller-manager again with its former command line"
    new=$(start_kcm "${argv[@]}") || die "kube-controller-manager does not start again: see $KCM_LOG"
    die "kube-controller-manager runs untuned (REPORTJOBS_KCM_TUNING=0 skips the tuning): see $KCM_LOG"
  fi
  { grep -vx "$old" "$PIDS_FILE" 2>/dev/null || true; echo "$new"; } | sort -u >"$PIDS_FILE.new"
  mv "$PIDS_FILE.new" "$PIDS_FILE"
  log "kube-controller-manager $new is healthy (client QPS $KCM_QPS, burst $KCM_BURST)"
}

start_main_node() {
  if cluster_healthy; then
    log "local cluster already up ($KUBECONFIG_OUT)"
    report_etcd_dir
    return 0
  fi
  bash "$HERE/second-node.sh" down
  stop_processes
  clean_leftovers
  mkdir -p "$STATE_DIR/logs" "$CLUSTER_DIR"
  log "starting Kubernetes v$K8S_VERSION with hack/local-up-cluster.sh (about 60-80 s)"
  (
    cd "$K8S_SRC_DIR"
    env ETCD_DIR="$ETCD_DIR" LOG_DIR="$STATE_DIR/logs" \
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
  tune_controller_manager
  if ((NODES >= 2)); then bash "$HERE/second-node.sh" up; fi
}

down() {
  bash "$HERE/second-node.sh" down
  stop_processes
  stop_pod_containers
  unmount_etcd_tmpfs
  rm -f "$KUBECONFIG_OUT"
  log "local cluster is down"
}

case ${1:-} in
  up) up ;;
  down) down ;;
  *) die "usage: $0 up|down" ;;
esac
