#!/usr/bin/env bash
# The end of `make up`: shows the deployed service working through its public URL.
source "$(dirname "$0")/lib.sh"

URL=http://127.0.0.1:30080
wait_for 120 "$URL/readyz" curl -fsS "$URL/readyz" || die "the gateway is not reachable at $URL"
object="make-up-smoke"
log "POST $URL/jobs {\"object_id\":\"$object\"}"
answer=$(curl -fsS -X POST "$URL/jobs" -H 'content-type: application/json' \
  -d "{\"object_id\":\"$object\"}")
json() { python3 -c "import json, sys; d = json.load(sys.stdin); $1"; }
echo "$answer" | json 'print(json.dumps(d, indent=2, ensure_ascii=False))'
job_id=$(echo "$answer" | json 'print(d["job_id"])')
log "waiting for $job_id to finish (the work sleeps 15-40 s)"
terminal() {
  curl -fsS "$URL/jobs/$job_id" | json 'sys.exit(d["status"] not in ("Succeeded", "Failed", "TimedOut"))'
}
wait_for 180 "job $job_id to finish" terminal || log "job $job_id has not finished yet"
curl -fsS "$URL/jobs/$job_id" | json 'print(json.dumps(d, indent=2, ensure_ascii=False))'
KUBECONFIG=$KUBECONFIG_OUT "$K8S_BIN_DIR/kubectl" -n reportjobs get reportjobs 2>/dev/null ||
  kubectl --kubeconfig "$KUBECONFIG_OUT" -n reportjobs get reportjobs
cat <<MSG

reportjobs is up at $URL
  curl -X POST $URL/jobs -H 'content-type: application/json' -d '{"object_id":"a"}'
  curl $URL/jobs/<job_id>
  kubectl --kubeconfig .cluster/kubeconfig -n reportjobs get reportjobs
MSG
