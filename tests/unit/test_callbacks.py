"""callback_url: its form, and the addresses it may resolve to (no SSRF)."""

import ipaddress

import pytest
from fastapi.testclient import TestClient

from reportjobs_gateway import callback_check
from reportjobs_gateway.deps import get_store
from reportjobs_gateway.main import create_app
from reportjobs_gateway.settings import GatewaySettings
from reportjobs_model.callbacks import AddressPolicy, embedded_ipv4, url_problem
from tests.unit.fakes import FakeStore

POLICY = AddressPolicy.of(
    allowed_cidrs=["10.1.0.1/32"],
    allowed_hosts=["receiver.internal"],
    blocked_cidrs=["8.8.4.0/24"],  # a cluster range of public addresses
)
NOTHING_CONFIGURED = AddressPolicy()
# Teredo 2001:0:<server>:<flags>:<port>:<client>, the client's IPv4 and port stored inverted:
# server 65.54.227.120 (4136:e378), client 10.0.0.1 (~0a00:0001 = f5ff:fffe).
TEREDO_OF_10_0_0_1 = "2001:0:4136:e378:8000:63bf:f5ff:fffe"
HOST_253 = ".".join(["a" * 63, "b" * 63, "c" * 63, "d" * 61])


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("https://example.com/hook", None),
        ("http://example.com:8080/h?x=1", None),
        ("http://example.com./", None),
        ("http://exämple.com/", None),
        (f"http://{HOST_253}/", None),
        ("http://[2606:4700:4700::1111]:8080/", None),
        ("ftp://example.com/", "http or https"),
        ("file:///etc/passwd", "http or https"),
        ("https:///nohost", "no host"),
        ("https://user:pw@example.com/", "credentials"),
        ("https://example.com:99999/", "not a URL"),
        ("https://example.com/" + "a" * 2048, "longer than 2048"),
        ("http://a..b/", "empty label"),
        ("http://.example.com/", "empty label"),
        ("http://a。。b/", "empty label"),  # IDNA's other dots
        ("http://" + "a" * 64 + ".example.com/", "longer than 63"),
        ("http://" + "é" * 60 + ".example.com/", "longer than 63"),  # 63+ once punycoded
        (f"http://{HOST_253}e/", "longer than 253"),
        ("http://a\x00b/", "control characters"),
        ("http://example.com/\x01", "control characters"),
        ("http://a b/", "space, control or format"),
        ("http://a\u200bb.com/", "space, control or format"),
        ("http://a\u2028b.com/", "space, control or format"),
        ("http://[fe80::1%25eth0]/", "zone id"),
        ("http://[v1.fe]/", "not an IPv6 address"),
        ("http://example.com/\ud800", "lone surrogates"),
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
        ("0.0.0.0", "unspecified"),
        ("::", "unspecified"),
        ("224.0.0.1", "multicast"),
        ("ff02::1", "multicast"),
        ("100.64.0.9", "shared address space"),
        ("100.100.100.200", "shared address space"),  # a cloud metadata service
        ("192.0.0.1", "IETF protocol assignment"),
        ("198.18.0.1", "benchmarking"),
        ("192.0.2.1", "documentation"),
        ("198.51.100.7", "documentation"),
        ("203.0.113.7", "documentation"),
        ("192.88.99.1", "6to4 relay anycast"),
        ("240.0.0.1", "reserved"),
        ("255.255.255.255", "broadcast"),
        ("::ffff:127.0.0.1", "loopback"),
        ("::ffff:100.100.100.200", "shared address space"),
        ("2002:7f00:1::1", "loopback, through 6to4"),  # 6to4 of 127.0.0.1
        ("2002:0a00:0001::1", "private, through 6to4"),  # 6to4 of 10.0.0.1
        ("2002:808:808::1", "6to4"),  # 6to4 itself is not reachable for sure
        (TEREDO_OF_10_0_0_1, "private, through Teredo"),
        ("64:ff9b::a00:1", "private, through NAT64"),  # NAT64 of 10.0.0.1
        ("64:ff9b::7f00:1", "loopback, through NAT64"),  # NAT64 of 127.0.0.1
        ("64:ff9b:1::808:808", "local-use IPv4/IPv6 translation"),
        ("2001:db8::1", "documentation"),
        ("100::1", "discard-only"),
        ("fec0::1", "site-local"),
        ("::a00:1", "reserved"),  # IPv4-compatible (deprecated), outside 2000::/3
        ("fe80::1%eth0", "link-local"),  # with the zone id getaddrinfo may give
    ],
)
def test_addresses_that_are_not_public_are_refused_with_nothing_configured(
    address: str, kind: str
) -> None:
    refusal = NOTHING_CONFIGURED.refusal(host="h.example", addresses=[address])
    assert refusal == f"callback_url host 'h.example' is not a public address ({kind})"


@pytest.mark.parametrize(
    "address",
    ["8.8.8.8", "1.1.1.1", "93.184.216.34", "2606:4700:4700::1111", "64:ff9b::808:808"],
)
def test_public_addresses_pass_with_nothing_configured(address: str) -> None:
    assert NOTHING_CONFIGURED.refusal(host="example.com", addresses=[address]) is None


def test_the_ranges_refused_do_not_depend_on_what_ipaddress_calls_global(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The table refuses them even where a Python version's `is_global` would let them by."""
    for cls in (ipaddress.IPv4Address, ipaddress.IPv6Address):
        monkeypatch.setattr(cls, "is_global", property(lambda _: True))
    for address in ["100.64.0.9", "224.0.0.1", "192.0.0.1", "2002:808:808::1", "ff02::1"]:
        assert NOTHING_CONFIGURED.refusal(host="h", addresses=[address]) is not None, address


def test_teredo_gives_its_server_and_its_inverted_client() -> None:
    assert embedded_ipv4(ipaddress.ip_address(TEREDO_OF_10_0_0_1)) == (
        (ipaddress.IPv4Address("10.0.0.1"), "Teredo"),
        (ipaddress.IPv4Address("65.54.227.120"), "Teredo"),
    )


def test_a_refusal_does_not_name_the_address_a_host_resolved_to() -> None:
    for address in ["10.96.0.10", "fd12:3456::7", "::ffff:10.96.0.10", "64:ff9b::a60:a"]:
        refusal = NOTHING_CONFIGURED.refusal(host="kube-dns.internal", addresses=[address])
        assert refusal is not None
        assert "kube-dns.internal" in refusal
        assert "10.96" not in refusal
        assert address not in refusal
        assert "a60:a" not in refusal


def test_cluster_ranges_are_refused_and_allowed_ones_pass() -> None:
    blocked = POLICY.refusal(host="h", addresses=["8.8.4.4"])
    assert blocked == "callback_url host 'h' resolves to a cluster address (blocked)"
    assert "through NAT64" in str(POLICY.refusal(host="h", addresses=["64:ff9b::808:404"]))
    assert POLICY.refusal(host="h", addresses=["10.1.0.1"]) is None  # an allowed CIDR
    assert POLICY.refusal(host="receiver.internal", addresses=["10.9.9.9"]) is None  # host
    assert POLICY.refusal(host="receiver.internal.", addresses=["127.0.0.1"]) is None
    # One bad address among good ones refuses the host (a delivery could connect to it).
    assert POLICY.refusal(host="h", addresses=["93.184.216.34", "127.0.0.1"]) is not None
    assert POLICY.refusal(host="h", addresses=[]) == "callback_url host 'h' does not resolve"


def test_allowed_cidrs_let_a_non_public_or_cluster_address_through() -> None:
    policy = AddressPolicy.of(
        allowed_cidrs=["10.0.0.0/8", "100.100.100.200/32", "8.8.4.4/32"],
        allowed_hosts=[],
        blocked_cidrs=["8.8.4.0/24", "10.96.0.0/12"],
    )
    for address in ["10.1.2.3", "::ffff:10.1.2.3", "64:ff9b::a01:203", "100.100.100.200"]:
        assert policy.refusal(host="h", addresses=[address]) is None, address
    assert policy.refusal(host="h", addresses=["10.96.0.10"]) is None  # allowed beats blocked
    assert policy.refusal(host="h", addresses=["8.8.4.4"]) is None
    assert policy.refusal(host="h", addresses=["8.8.4.5"]) is not None
    assert policy.refusal(host="h", addresses=["100.100.100.201"]) is not None
    # 6to4 is refused as such even when the IPv4 address it leads to is allowed.
    assert policy.refusal(host="h", addresses=["2002:a01:203::1"]) is not None


def _client(settings: GatewaySettings) -> tuple[TestClient, FakeStore]:
    app = create_app(settings)
    store = FakeStore(now=1_700_000_000.4)
    app.dependency_overrides[get_store] = lambda: store
    return TestClient(app), store


@pytest.mark.parametrize(
    ("url", "field"),
    [
        ("http://127.0.0.1:8080/hook", "loopback"),
        ("http://169.254.169.254/latest/meta-data", "link-local"),
        ("http://100.100.100.200/latest/meta-data", "shared address space"),
        ("http://10.0.0.1/", "private"),
        ("ftp://example.com/", "http or https"),
        ("http://[::1]/", "loopback"),
        ("http://[::ffff:100.100.100.200]/", "shared address space"),
        ("https://example.com/" + "a" * 2100, "2048"),
        # Schema-valid, and each once answered 500 (an IDNA UnicodeError out of getaddrinfo).
        ("http://a..b/", "empty label"),
        ("http://" + "a" * 64 + ".example.com/", "longer than 63"),
        (f"http://{HOST_253}e/", "longer than 253"),
        ("http://./", "empty label"),
        ("http://a\x00b/", "control characters"),
        ("http://[fe80::1%25eth0]/", "zone id"),
    ],
)
def test_submissions_with_a_refused_callback_get_422(url: str, field: str) -> None:
    client, store = _client(GatewaySettings(namespace="t", pod_name="g", cache=False))
    with client:
        response = client.post("/jobs", json={"object_id": "a", "callback_url": url})
    assert response.status_code == 422, response.text
    (issue,) = response.json()["detail"]
    assert issue["loc"][-1] == "callback_url"
    assert field in issue["msg"]
    assert store.windows == {}  # nothing was claimed


def test_a_host_name_is_refused_without_the_address_it_resolved_to() -> None:
    client, _ = _client(GatewaySettings(namespace="t", pod_name="g", cache=False))
    with client:
        response = client.put("/jobs", json={"object_id": "a", "callback_url": "http://localhost/"})
    assert response.status_code == 422, response.text
    (issue,) = response.json()["detail"]
    assert issue["msg"] == "callback_url host 'localhost' is not a public address (loopback)"


async def test_a_host_getaddrinfo_cannot_encode_is_refused_not_raised(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The resolution's own guard, behind the form check (here taken away)."""
    monkeypatch.setattr(callback_check, "url_problem", lambda _: None)
    refusal = await callback_check.callback_refusal("http://a..b/", policy=NOTHING_CONFIGURED)
    assert refusal == "callback_url host 'a..b' is not a valid host name"


def test_an_allowed_callback_is_accepted_and_kept_with_the_job() -> None:
    settings = GatewaySettings(
        namespace="t", pod_name="g", cache=False, callback_allowed_cidrs=["127.0.0.0/8"]
    )
    client, _ = _client(settings)
    with client:
        response = client.post(
            "/jobs", json={"object_id": "a", "callback_url": "http://127.0.0.1:9/hook"}
        )
    assert response.status_code == 201, response.text
    assert response.json()["callback_url"] == "http://127.0.0.1:9/hook"


def test_the_document_says_a_valid_submission_may_be_refused_for_its_callback() -> None:
    """What lets schemathesis's positive_data_acceptance take a 422 on POST/PUT /jobs."""
    client, _ = _client(GatewaySettings(namespace="t", pod_name="g", cache=False))
    with client:
        paths = client.get("/openapi.json").json()["paths"]
    for method in ("post", "put"):
        description = paths["/jobs"][method]["responses"]["422"]["description"]
        assert "callback_url" in description
        assert "does not resolve" in description
        assert "not public" in description
    assert "callback_url" not in paths["/jobs"]["get"]["responses"]["422"]["description"]
