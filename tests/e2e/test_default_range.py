"""One job with the real default work: the chart's default sleep range (15-40 s)."""

from __future__ import annotations

from datetime import datetime

import yaml

from tests.e2e.conftest import DeployRelease
from tests.e2e.support.jobs import wait_terminal
from tests.e2e.support.release import REPO_ROOT

CHART_VALUES = REPO_ROOT / "deploy" / "helm" / "reportjobs" / "values.yaml"


def seconds(stamp: str) -> float:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


def test_default_sleep_range(deploy_release: DeployRelease) -> None:
    defaults = yaml.safe_load(CHART_VALUES.read_text())["job"]
    assert (defaults["sleepMinSeconds"], defaults["sleepMaxSeconds"]) == (15, 40)
    # The e2e suite's fast sleep range is replaced by the chart's own defaults.
    release = deploy_release(job=defaults)
    answer = release.gateway.submit("default-range-object")
    assert answer.status == 201
    job = wait_terminal(release.gateway, answer.body["job_id"], timeout=240)
    assert job["status"] == "Succeeded", job
    assert 15 <= job["sleep_seconds"] <= 40
    assert job["timeout_seconds"] == defaults["timeoutSeconds"] == 60
    assert seconds(job["finished_at"]) - seconds(job["started_at"]) >= job["sleep_seconds"] - 1
