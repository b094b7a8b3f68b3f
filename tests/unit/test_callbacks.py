"""callback_url: its form, and the addresses it may resolve to (no SSRF)."""

import pytest
from fastapi.testclient import TestClient

from reportjobs_gateway.deps import get_store
from reportjobs_gateway.main import create_app
from reportjobs_gateway.settings import GatewaySettings
from reportjobs_model.callbacks import AddressPolicy, url_problem
from tests.unit.fakes import FakeStore

POLICY = AddressPolicy.of(
    allowed_cidrs=["10.1.0.1/32"],
    allowed_hosts=["receiver.internal"],
    blocked_cidrs=["100.64.0.0/10"],
)


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("https://example.com/hook", None),
        ("http://example.com:8080/h?x=1", None),
        ("ftp://example.com/", "http or https"),
        ("file:///etc/passwd", "http or https"),
        ("https:///nohost", "no host"),
        ("https://user:pw@example.com/", "credentials"),
        ("https://example.com:99999/", "not a URL"),
        ("https://example.com/" + "a" * 2048, "longer than 2048"),
    ],
)
def test_the_form_of_a_callback_url(url: str, problem: str | None) -> None:
    found = url_problem(url)
    assert (found is None) if problem is None else (found is not None and problem in found), found


@pytest.mark.parametrize(
    ("address", "kind"),
    [
        ("127.0.0.1", "loopback"),
        ("::1", "loopback"),
        ("169.254.169.254", "link-local"),
        ("fe80::1", "link-local"),
        ("10.0.0.7", "private"),
        ("192.168.1.1", "private"),
        ("172.16.0.1", "private"),
        ("fd00::1", "private"),
        ("::ffff:127.0.0.1", "loopback"),
        ("0.0.0.0", "unspecified"),
        ("224.0.0.1", "multicast"),
        ("100.64.0.9", "cluster"),
    ],
)
def test_non_public_addresses_are_refused(address: str, kind: str) -> None:
    refusal = POLICY.refusal(host="h.example", addresses=[address])
    assert refusal is not None
    assert kind in refusal


def test_public_and_allowed_addresses_pass() -> None:
    assert POLICY.refusal(host="example.com", addresses=["93.184.216.34"]) is None
    assert POLICY.refusal(host="h", addresses=["10.1.0.1"]) is None  # an allowed CIDR
    assert POLICY.refusal(host="receiver.internal", addresses=["10.9.9.9"]) is None  # host
    # One bad address among good ones refuses the host (a delivery could connect to it).
    assert POLICY.refusal(host="h", addresses=["93.184.216.34", "127.0.0.1"]) is not None
    assert POLICY.refusal(host="h", addresses=[]) is not None


@pytest.mark.parametrize(
    ("url", "field"),
    [
        ("http://127.0.0.1:8080/hook", "loopback"),
        ("http://169.254.169.254/latest/meta-data", "link-local"),
        ("http://10.0.0.1/", "private"),
        ("ftp://example.com/", "http or https"),
        ("http://[::1]/", "loopback"),
        ("https://example.com/" + "a" * 2100, "2048"),
    ],
)
def test_submissions_with_a_refused_callback_get_422(url: str, field: str) -> None:
    app = create_app(GatewaySettings(namespace="t", pod_name="g", cache=False))
    store = FakeStore(now=1_700_000_000.4)
    app.dependency_overrides[get_store] = lambda: store
    with TestClient(app) as client:
        response = client.post("/jobs", json={"object_id": "a", "callback_url": url})
    assert response.status_code == 422, response.text
    (issue,) = response.json()["detail"]
    assert issue["loc"][-1] == "callback_url"
    assert field in issue["msg"]
    assert store.windows == {}  # nothing was claimed


def test_an_allowed_callback_is_accepted_and_kept_with_the_job() -> None:
    settings = GatewaySettings(
        namespace="t", pod_name="g", cache=False, callback_allowed_cidrs=["127.0.0.0/8"]
    )
    app = create_app(settings)
    store = FakeStore(now=1_700_000_000.4)
    app.dependency_overrides[get_store] = lambda: store
    with TestClient(app) as client:
        response = client.post(
            "/jobs", json={"object_id": "a", "callback_url": "http://127.0.0.1:9/hook"}
        )
    assert response.status_code == 201, response.text
    assert response.json()["callback_url"] == "http://127.0.0.1:9/hook"
