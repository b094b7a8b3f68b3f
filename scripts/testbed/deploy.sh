#!/usr/bin/env bash
# `make deploy`: install or upgrade the chart as release "reportjobs" in namespace "reportjobs",
# with the image `make image` loaded, the gateway on NodePort 30080.
source "$(dirname "$0")/lib.sh"

RELEASE=${RELEASE:-reportjobs}
NAMESPACE=${NAMESPACE:-reportjobs}
PYTHON=${PYTHON:-$REPO_ROOT/.venv/bin/python}
[[ -f $KUBECONFIG_OUT ]] || die "no cluster: run 'make cluster-up' first"
[[ -f $CLUSTER_DIR/image ]] || die "no image: run 'make image' first"
ref=$(<"$CLUSTER_DIR/image")
values=$(printf '{"image": {"repository": "%s", "tag": "%s"}, %s}' "${ref%:*}" "${ref##*:}" \
  '"service": {"type": "NodePort", "nodePort": 30080}')
# Helm installs crds/ once and never upgrades them: apply the current CRD first (with the test
# bed's kubectl where it was built).
export PATH=$K8S_BIN_DIR:$PATH
retry 3 5 kubectl --kubeconfig "$KUBECONFIG_OUT" apply -f "$REPO_ROOT/deploy/crds/" >/dev/null
log "deploying release $RELEASE ($ref) to namespace $NAMESPACE"
retry 3 10 "$PYTHON" "$REPO_ROOT/scripts/helmctl.py" deploy --kubeconfig "$KUBECONFIG_OUT" \
  --release "$RELEASE" --namespace "$NAMESPACE" --values "$values" --timeout 300
log "release $RELEASE deployed"
