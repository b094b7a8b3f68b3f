"""The contract table of tests/contract/ on the real API server, through the gateway's own
Kubernetes adapter (KubeStore): the behaviour the claim protocol relies on, and that the unit
tests' fake models (tests/unit/test_fake_contract.py runs the same table on it)."""

from __future__ import annotations

import pytest

from reportjobs_gateway.store import KubeStore
from reportjobs_kube.client import KubeClient
from reportjobs_operator.api_client import KubeApi
from reportjobs_operator.ports import Conflict
from tests.contract.api_semantics import (
    FINALIZER_EXPECTED,
    REPORTJOB_EXPECTED,
    date_problems,
    dates,
    expected,
    finalizer_rows,
    reportjob_rows,
    run_rows,
)


@pytest.fixture
async def store(kubeconfig: str, namespace: str, monkeypatch: pytest.MonkeyPatch) -> KubeStore:
    monkeypatch.setenv("KUBECONFIG", kubeconfig)
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    kube = KubeStore(namespace=namespace, api_timeout_seconds=30)
    yield kube  # type: ignore[misc]
    await kube.close()


async def test_the_api_server_behaves_as_the_table_says(store: KubeStore) -> None:
    observed = await run_rows(store, prefix="contract-")
    differing = {
        name: (seen, expected()[name])
        for name, seen in observed.items()
        if seen != expected()[name]
    }
    assert differing == {}, "row: (API server, table)"


async def test_the_date_header_is_whole_seconds_and_never_goes_back(store: KubeStore) -> None:
    seen = await dates(store, name="absent", count=20)
    assert len(seen) == 20
    assert date_problems(seen) == []


async def test_reportjob_requests_behave_as_the_table_says(
    store: KubeStore, crd: dict[str, object]
) -> None:
    observed = await reportjob_rows(store)
    assert observed == REPORTJOB_EXPECTED


async def test_finalizers_behave_as_the_table_says(
    kubeconfig: str, namespace: str, crd: dict[str, object], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Through the operator's own Kubernetes adapter (KubeApi)."""
    monkeypatch.setenv("KUBECONFIG", kubeconfig)
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    client = await KubeClient.connect(timeout_seconds=30)
    try:
        observed = await finalizer_rows(
            KubeApi(client=client, namespace=namespace), conflict=Conflict
        )
    finally:
        await client.close()
    assert observed == FINALIZER_EXPECTED
