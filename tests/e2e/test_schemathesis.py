"""schemathesis against a deployed gateway's /openapi.json: no 5xx, every answer as documented."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.e2e.conftest import DeployRelease
from tests.e2e.support.direct import gateway_url
from tests.e2e.support.kube import Cluster

SCHEMATHESIS = Path(sys.executable).with_name("schemathesis")
MIN_REQUESTS = 800  # examples, coverage and fuzzing of 6 operations (no stateful phase)
# Every check that applies to an API without authentication or linked resources.
CHECKS = [
    "not_a_server_error",
    "response_schema_conformance",
    "status_code_conformance",
    "content_type_conformance",
    "response_headers_conformance",
    "negative_data_rejection",
    # positive_data_acceptance is left out: a schema-valid callback_url (any string of at most
    # 2,048 characters) is refused with 422 for what it is or where it points (no SSRF), which
    # no schema can express; test_callbacks.py and test_notifications.py cover those answers.
    "unsupported_method",
    "allow_header_conformance",
]


def test_schemathesis_finds_no_server_error_and_no_schema_violation(
    deploy_release: DeployRelease, cluster: Cluster, tmp_path: Path
) -> None:
    # No operator: the ~500 ReportJobs the fuzzer creates stay Pending and start no pods.
    # maxWaitSeconds 1: `?wait` and a DELETE's wait for an operator that is not there are short.
    release = deploy_release(
        operator={"replicas": 0}, job={"maxTimeoutSeconds": 90}, gateway={"maxWaitSeconds": 1}
    )
    url = gateway_url(cluster, release.namespace)
    if url is None:
        # Through the API server's service proxy, the proxy's own answers (a 500 for a path with
        # control characters, 405 without Allow for TRACE) would be blamed on the gateway.
        pytest.skip("the gateway's ClusterIP is not reachable from this host (kind?)")
    command = [
        str(SCHEMATHESIS),
        "run",
        f"{url}/openapi.json",
        "--url",
        url,
        "--checks",
        ",".join(CHECKS),
        "--max-examples",
        "250",
        # The event stream of a job stays open until the job ends, and no operator runs here; a
        # stateful chain (POST -> its Location) would also wait on `?wait` (up to 60 s) and on
        # each DELETE (10 s) for an operator that never comes. Both are e2e-tested elsewhere
        # (test_waiting.py, test_cancel.py); every operation is still fuzzed on its own.
        "--exclude-path-regex",
        "/events$",
        "--phases",
        "examples,coverage,fuzzing",
        "--seed",
        "20261127",  # reproducible; the same seed explores the same requests
        "--workers",
        "1",  # several workers hit a thread-safety bug of ast.parse (CPython 3.11) in hypothesis
        "--request-timeout",
        "30",
        "--report",
        "har,json",
        "--report-dir",
        str(tmp_path),
        "--no-color",
    ]
    run = subprocess.run(  # in tmp_path: schemathesis keeps a cache in its working directory
        command, capture_output=True, text=True, timeout=900, check=False, cwd=tmp_path
    )
    (report_file,) = tmp_path.glob("json-*.json")
    (har_file,) = tmp_path.glob("har-*.json")
    report = json.loads(report_file.read_text())
    requests = len(json.loads(har_file.read_text())["log"]["entries"])
    statuses: dict[int, int] = {}
    for entry in json.loads(har_file.read_text())["log"]["entries"]:
        code = entry["response"]["status"]
        statuses[code] = statuses.get(code, 0) + 1
    failures = {f"{f['code']} {f['title']}": f["count"] for f in report["failures"]}
    print(
        f"\nschemathesis {report['schemathesis_version']} against {url}: {requests} requests, "
        f"{report['test_cases']['generated']} test cases in {report['running_time']:.0f}s, "
        f"exit code {run.returncode}\n"
        f"  operations tested {report['operations']['tested']}/{report['operations']['total']}, "
        f"phases { {p: v['status'] for p, v in report['phases'].items()} }\n"
        f"  statuses {dict(sorted(statuses.items()))}\n"
        f"  failures {failures or 0}, errors {len(report['errors'])}"
    )
    if run.returncode != 0:
        print(run.stdout[-6000:])
    assert report["complete"], report["stop_reason"]
    assert requests >= MIN_REQUESTS
    assert not any(code >= 500 for code in statuses), statuses
    assert failures == {}, run.stdout[-6000:]
    assert report["errors"] == [], report["errors"]
    assert run.returncode == 0, run.stdout[-3000:]
