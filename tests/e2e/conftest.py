"""kubebuilder-style e2e fixtures: one cluster per session, a namespace (and release) per test,
diagnostics dumped when a test fails.

KUBECONFIG selects an existing cluster; without it the session brings up the test bed
(`scripts/testbed/cluster.sh up`: kind where Docker runs, else the local cluster)."""

from __future__ import annotations

import fcntl
import os
import re
import secrets
import subprocess
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client
from kubernetes.client.rest import ApiException

from tests.e2e.support.diagnostics import dump_namespace
from tests.e2e.support.kube import Cluster
from tests.e2e.support.map_recorder import pytest_configure  # noqa: F401 - the test map's recorder
from tests.e2e.support.polling import wait_until
from tests.e2e.support.release import FAST_VALUES, Release, merge

REPO_ROOT = Path(__file__).resolve().parents[2]
TESTBED = REPO_ROOT / "scripts" / "testbed"
CRD_FILE = REPO_ROOT / "deploy" / "crds" / "reportjobs.io_reportjobs.yaml"


# The longest first: pytest-xdist (--dist loadgroup) hands tests out in this order, so none of
# them starts last and keeps the run waiting (from the last runs' durations).
LONGEST_FIRST = (
    "test_sharding.py",
    "test_resume.py",
    "test_delete_is_final.py",
    "test_dedup.py",
    "test_burst.py",
    "test_slow_admission.py",
    "test_timeout.py",
    "test_cancel.py",
    "test_notifications.py",
    "test_schemathesis.py",
    "test_chart.py",
    "test_retention.py",
)


def _longest_first(item: pytest.Item) -> int:
    name = Path(str(item.fspath)).name
    return LONGEST_FIRST.index(name) if name in LONGEST_FIRST else len(LONGEST_FIRST)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/e2e" in str(item.fspath):
            item.add_marker(pytest.mark.e2e)
    items.sort(key=_longest_first)  # stable: a file's tests keep their order


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()  # type: ignore[attr-defined]
    setattr(item, f"report_{report.when}", report)


@pytest.fixture
def figures(request: pytest.FixtureRequest) -> dict[str, Any]:
    """What this test counted or measured (jobs, creates, faults, ratios), by name: a test fills
    it, and the test map in docs/reliability.md is rendered from it. It travels in the report's
    user_properties, so it reaches the controller under pytest-xdist and the JUnit XML."""
    found: dict[str, Any] = {}
    request.node.user_properties.append(("figures", found))
    return found


@contextmanager
def session_setup_lock() -> Iterator[None]:
    """One pytest-xdist worker at a time brings up the cluster, builds the image or replaces the
    CRD (`make test-e2e` does the first two before the workers start)."""
    lock = REPO_ROOT / ".cluster" / "e2e-setup.lock"
    lock.parent.mkdir(exist_ok=True)
    with lock.open("w") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        yield


@pytest.fixture(scope="session")
def kubeconfig() -> str:
    configured = os.environ.get("KUBECONFIG")
    if configured:
        return configured
    with session_setup_lock():
        subprocess.run(["bash", str(TESTBED / "cluster.sh"), "up"], check=True, timeout=3600)
    return str(REPO_ROOT / ".cluster" / "kubeconfig")


@pytest.fixture(scope="session")
def cluster(kubeconfig: str) -> Cluster:
    return Cluster.from_kubeconfig(kubeconfig)


@pytest.fixture(scope="session")
def image_ref(kubeconfig: str) -> str:
    """The project image, built and loaded into the cluster (a no-op when it already is)."""
    if os.environ.get("REPORTJOBS_IMAGE"):
        return os.environ["REPORTJOBS_IMAGE"]
    with session_setup_lock():
        subprocess.run(["bash", str(TESTBED / "image.sh")], check=True, timeout=1800)
    return (REPO_ROOT / ".cluster" / "image").read_text().strip()


@pytest.fixture(scope="session")
def crd(cluster: Cluster) -> dict[str, Any]:
    """The CRD from deploy/crds, created or replaced so a reused cluster never runs a stale one."""
    manifest = yaml.safe_load(CRD_FILE.read_text())
    api = client.ApiextensionsV1Api(cluster.api)
    name = manifest["metadata"]["name"]
    with session_setup_lock():
        try:
            current = api.read_custom_resource_definition(name)
            manifest["metadata"]["resourceVersion"] = current.metadata.resource_version
            api.replace_custom_resource_definition(name, manifest)
        except ApiException as error:
            if error.status != 404:
                raise
            api.create_custom_resource_definition(manifest)

    def established() -> bool:
        conditions = api.read_custom_resource_definition(name).status.conditions or []
        return any(c.type == "Established" and c.status == "True" for c in conditions)

    wait_until(established, timeout=60, what=f"CRD {name} to be Established")
    return manifest


@contextmanager
def fresh_namespace(cluster: Cluster, *, label: str, failed: Callable[[], bool]) -> Iterator[str]:
    """A namespace named after ``label``, deleted afterwards; dumped (and with
    REPORTJOBS_KEEP_FAILED kept) when ``failed()`` says what ran in it failed."""
    slug = re.sub(r"[^a-z0-9]+", "-", label.lower()).strip("-")[:40].strip("-")
    name = f"e2e-{slug}-{secrets.token_hex(2)}"
    cluster.core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
    yield name
    if failed():
        print(dump_namespace(cluster, name))
        if os.environ.get("REPORTJOBS_KEEP_FAILED"):
            return
    delete_namespace(cluster, name)


@pytest.fixture
def namespace(request: pytest.FixtureRequest, cluster: Cluster) -> Iterator[str]:
    """The test's own namespace."""

    def failed() -> bool:
        return any(
            getattr(getattr(request.node, f"report_{when}", None), "failed", False)
            for when in ("setup", "call")
        )

    with fresh_namespace(cluster, label=request.node.name, failed=failed) as name:
        yield name


@pytest.fixture(scope="module")
def module_namespace(request: pytest.FixtureRequest, cluster: Cluster) -> Iterator[str]:
    """One namespace for a module's tests that share a release (deploy once per set of values):
    each such test works only on its own objects."""
    failures_before = request.session.testsfailed
    with fresh_namespace(
        cluster,
        label=request.node.name.removesuffix(".py"),
        failed=lambda: request.session.testsfailed > failures_before,
    ) as name:
        yield name


def delete_namespace(cluster: Cluster, name: str) -> None:
    """Delete a test's namespace in the background. Its ReportJobs hold the claim finalizer,
    which their operator removes once their claims are gone; the operator goes with the
    namespace, so their finalizers are removed here, until no ReportJob is left (one may still
    be created just after the deletion began: the API server's admission sees it late)."""
    cluster.core.delete_namespace(name, propagation_policy="Background")
    wait_until(
        lambda: cluster.release_reportjobs(name) == 0,
        timeout=300,
        interval=1,
        what=f"the ReportJobs of namespace {name} to be released and gone",
    )


DeployRelease = Callable[..., Release]


def release_deployer(
    *, cluster: Cluster, kubeconfig: str, namespace: str, image_ref: str
) -> DeployRelease:
    """Install the chart in ``namespace``: FAST_VALUES, the test image, then overrides."""

    def deploy(**overrides: Any) -> Release:
        repository, tag = image_ref.rsplit(":", 1)
        values = merge(
            merge(FAST_VALUES, {"image": {"repository": repository, "tag": tag}}), overrides
        )
        return Release(
            cluster=cluster, kubeconfig=kubeconfig, namespace=namespace, values=values
        ).deploy()

    return deploy


@pytest.fixture
def deploy_release(
    cluster: Cluster, kubeconfig: str, namespace: str, image_ref: str, crd: dict[str, Any]
) -> DeployRelease:
    """A release in the test's own namespace."""
    return release_deployer(
        cluster=cluster, kubeconfig=kubeconfig, namespace=namespace, image_ref=image_ref
    )


@pytest.fixture(scope="module")
def deploy_module_release(
    cluster: Cluster, kubeconfig: str, module_namespace: str, image_ref: str, crd: dict[str, Any]
) -> DeployRelease:
    """A release shared by a module's tests (install it from a module-scoped fixture)."""
    return release_deployer(
        cluster=cluster, kubeconfig=kubeconfig, namespace=module_namespace, image_ref=image_ref
    )
