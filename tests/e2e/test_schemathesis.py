"""schemathesis against a deployed gateway's /openapi.json: no 5xx, every answer as documented,
schema-valid requests accepted (a submission may be refused only for its callback_url, as the
document says)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.e2e.conftest import DeployRelease
from tests.e2e.support.direct import gateway_url
from tests.e2e.support.kube import Cluster

SCHEMATHESIS = Path(sys.executable).with_name("schemathesis")
# Examples per operation, and the fewest requests a complete run makes with them (examples,
# coverage and fuzzing of 6 operations; no stateful phase): `make test` runs the small count,
# `make test-reliability` the full one.
SMALL, FULL = (50, 300), (250, 800)
# Every check that applies to an API without authentication or linked resources.
CHECKS = [
    "not_a_server_error",
    "response_schema_conformance",
    "status_code_conformance",
    "content_type_conformance",
    "response_headers_conformance",
    "negative_data_rejection",
    "positive_data_acceptance",  # with the statuses of CONFIG
    "refused_only_for_its_callback",  # of HOOKS
    "unsupported_method",
    "allow_header_conformance",
]
# What a schema-valid request may get. Not schemathesis's default, which takes 5xx, 401, 403,
# 429 and 3xx too: this API answers none of them to a valid request. A submission may get 422:
# a schema-valid callback_url (any string of at most 2,048 characters) is refused for its form
# or for where its host points (no SSRF), which no schema can express; the document's 422 of
# POST/PUT /jobs says so, and HOOKS checks that such a 422 is about the callback_url alone.
CONFIG = """
[checks.positive_data_acceptance]
expected-statuses = ["2xx"]

[[operations]]
include-name = ["POST /jobs", "PUT /jobs"]
checks.positive_data_acceptance.expected-statuses = ["2xx", "422"]

[[operations]]
include-name = "GET /jobs/{job_id}"
checks.positive_data_acceptance.expected-statuses = ["2xx", "404"]

[[operations]]
include-name = "DELETE /jobs/{job_id}"
checks.positive_data_acceptance.expected-statuses = ["2xx", "404", "409"]
"""
HOOKS = '''"""A schema-valid submission is refused for its callback_url only."""

import json

import schemathesis

SUBMISSIONS = {"POST /jobs", "PUT /jobs"}


@schemathesis.check
def refused_only_for_its_callback(ctx, response, case):
    """A 422 to a valid POST/PUT /jobs (as sent: a JSON object) names its callback_url only."""
    meta = case.meta
    if meta is None or not meta.generation.mode.is_positive:
        return None
    if case.operation.label not in SUBMISSIONS or response.status_code != 422:
        return None
    request = response.request
    if "application/json" not in request.headers.get("Content-Type", ""):
        return None  # a probe of the media type, not a valid submission
    body = json.loads(request.body or b"null")
    issues = json.loads(response.content)["detail"]
    callback = isinstance(body, dict) and isinstance(body.get("callback_url"), str)
    if not callback or any(
        (issue["loc"], issue["type"]) != (["body", "callback_url"], "value_error")
        for issue in issues
    ):
        raise AssertionError(f"a valid submission refused for more than its callback_url: {issues}")
    return None
'''


@pytest.mark.parametrize(
    "examples",
    [pytest.param(SMALL, id="50"), pytest.param(FULL, id="250", marks=pytest.mark.reliability)],
)
def test_schemathesis_finds_no_server_error_and_no_schema_violation(
    examples: tuple[int, int],
    deploy_release: DeployRelease,
    cluster: Cluster,
    tmp_path: Path,
    figures: dict[str, object],
) -> None:
    max_examples, min_requests = examples
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
    config = tmp_path / "schemathesis.toml"
    config.write_text(CONFIG)
    hooks = tmp_path / "reportjobs_hooks.py"
    hooks.write_text(HOOKS)
    command = [
        str(SCHEMATHESIS),
        "--config-file",
        str(config),
        "run",
        f"{url}/openapi.json",
        "--url",
        url,
        "--checks",
        ",".join(CHECKS),
        "--max-examples",
        str(max_examples),
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
        command,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
        cwd=tmp_path,
        env={**os.environ, "SCHEMATHESIS_HOOKS": str(hooks)},
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
    figures.update(requests=requests, server_errors=sum(n for c, n in statuses.items() if c >= 500))
    assert requests >= min_requests
    assert not any(code >= 500 for code in statuses), statuses
    assert failures == {}, run.stdout[-6000:]
    assert report["errors"] == [], report["errors"]
    assert run.returncode == 0, run.stdout[-3000:]
