"""The API server's behaviour that the claim protocol relies on, as one table that runs against
both the real API server (tests/e2e/test_api_contract.py) and the unit tests' fake
(tests/unit/test_fake_contract.py): wherever the fake is kinder or stricter than the server,
one of the two fails.

Each row writes a ConfigMap of its own through the gateway's store port (the same calls the
dedup protocol makes: create, read, JSON patch, replace) and records what the API server did:
applied, refused (a failed `test`, or a stale resourceVersion), or exists (a create that met
the name). The expectations are those of the test bed's Kubernetes 1.20.2, whose API server
(built with Go 1.19) encodes the stored object with Go's encoding/json and compares a JSON
patch's `test` value with that encoding byte for byte (evanphx/json-patch), while our client
sends Python's JSON (`reportjobs_kube.client.encode_body`: non-ASCII as `\\u` escapes).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from reportjobs_gateway.ports import AlreadyExists, Read, Stale
from reportjobs_model.crd import FINALIZER
from reportjobs_model.reportjob import build_reportjob
from reportjobs_model.window import Claim, build_window_shard

Outcome = Literal["applied", "refused", "exists"]


class Store(Protocol):
    """What a row uses of the gateway's JobStore port (KubeStore, or the fake)."""

    async def get_window(self, name: str) -> Read: ...

    async def create_window(self, body: dict[str, Any]) -> dict[str, Any]: ...

    async def replace_window(self, body: dict[str, Any]) -> dict[str, Any]: ...

    async def patch_window(
        self, name: str, patch: list[dict[str, Any]], *, based_on: str
    ) -> dict[str, Any]: ...


CHARACTER_CLASSES: dict[str, str] = {
    "ascii": "invoice-2024-0042",
    "ampersand": "a&b",
    "less-than": "a<b",
    "greater-than": "a>b",
    "quote": 'a"b',
    "backslash": "a\\b",
    "slash": "a/b",
    "non-ascii": "café 中文",
    "emoji": "report 😀",
    "control": "a\x01b",
    "newline-tab": "a\nb\tc",
    "backspace": "a\bb",
    "delete": "a\x7fb",
    "line-separator": "a\u2028b",
    "256-characters": "x" * 256,
    "256-mixed": ('&<>"\\/é😀\x01' * 29)[:256],
}
"""The strings a user may send, one class each."""

RAW_TEST_APPLIES: dict[str, bool] = {
    "ascii": True,
    "ampersand": False,  # Go writes \u0026
    "less-than": False,  # \u003c
    "greater-than": False,  # \u003e
    "quote": True,
    "backslash": True,
    "slash": True,
    "non-ascii": False,  # Go writes UTF-8, we send \u escapes
    "emoji": False,  # UTF-8 against a surrogate pair of escapes
    "control": True,  # \u0001 both
    "newline-tab": True,  # \n and \t both
    "backspace": False,  # Go 1.19 writes \u0008, Python \b (Go 1.22 and later write \b too)
    "delete": False,  # Go writes DEL raw, Python as \u007f
    "line-separator": True,  # \u2028 both
    "256-characters": True,
    "256-mixed": False,
}
"""Whether a `test` of a stored value, sent back as our client sends it, matches."""


def claim_entry(text: str) -> str:
    """A claim whose object id and callback URL hold `text`, as the gateway writes it."""
    claim = Claim.new(
        object_id=text,
        now=1_700_000_000,
        window_seconds=300,
        timeout_seconds=60,
        callback_url=f"https://example.com/hook?q={text}&x=<y>",
    )
    return claim.to_entry()


@dataclass(frozen=True)
class Row:
    name: str
    expected: Outcome
    run: Callable[[Store, str], Awaitable[Outcome]]
    """Runs the row on a ConfigMap of the given name (created by the row); what happened."""


async def _created(store: Store, name: str, data: dict[str, str] | None) -> dict[str, Any]:
    body = build_window_shard(name=name, data=data or {})
    if data is None:
        del body["data"]
    return await store.create_window(body)


async def _patch(store: Store, name: str, patch: list[dict[str, Any]]) -> Outcome:
    try:
        await store.patch_window(name, patch, based_on="")
    except Stale:
        return "refused"
    return "applied"


def _test_then_add(path: str, value: object) -> list[dict[str, Any]]:
    return [
        {"op": "test", "path": path, "value": value},
        {"op": "add", "path": "/data/after", "value": "1"},
    ]


def _raw_test(text: str) -> Callable[[Store, str], Awaitable[Outcome]]:
    async def run(store: Store, name: str) -> Outcome:
        await _created(store, name, {"k": text})
        return await _patch(store, name, _test_then_add("/data/k", text))

    return run


def _entry_test(text: str) -> Callable[[Store, str], Awaitable[Outcome]]:
    async def run(store: Store, name: str) -> Outcome:
        entry = claim_entry(text)
        await _created(store, name, {"k": entry})
        return await _patch(store, name, _test_then_add("/data/k", entry))

    return run


async def _null_on_absent(store: Store, name: str) -> Outcome:
    await _created(store, name, {"other": "1"})
    return await _patch(store, name, _test_then_add("/data/k", None))


async def _null_on_present(store: Store, name: str) -> Outcome:
    await _created(store, name, {"k": "1"})
    return await _patch(store, name, _test_then_add("/data/k", None))


async def _null_without_parent(store: Store, name: str) -> Outcome:
    await _created(store, name, None)
    return await _patch(store, name, [{"op": "test", "path": "/data/k", "value": None}])


async def _other_value(store: Store, name: str) -> Outcome:
    await _created(store, name, {"k": "1"})
    return await _patch(store, name, _test_then_add("/data/k", "2"))


async def _remove_absent(store: Store, name: str) -> Outcome:
    await _created(store, name, {"other": "1"})
    return await _patch(store, name, [{"op": "remove", "path": "/data/k"}])


def _replace(
    version: Literal["stale", "none", "current"],
) -> Callable[[Store, str], Awaitable[Outcome]]:
    async def run(store: Store, name: str) -> Outcome:
        created = await _created(store, name, {"k": "1"})
        if version == "stale":
            await _patch(store, name, _test_then_add("/data/k", "1"))  # moves it on
        read = (await store.get_window(name)).obj
        assert read is not None
        body = {**read, "data": {"k": "2"}}
        if version == "stale":
            body["metadata"] = {
                **read["metadata"],
                "resourceVersion": created["metadata"]["resourceVersion"],
            }
        elif version == "none":
            body["metadata"] = {k: v for k, v in read["metadata"].items() if k != "resourceVersion"}
        try:
            await store.replace_window(body)
        except Stale:
            return "refused"
        return "applied"

    return run


async def _create_twice(store: Store, name: str) -> Outcome:
    await _created(store, name, {"k": "1"})
    try:
        await _created(store, name, {"k": "2"})
    except AlreadyExists:
        return "exists"
    return "applied"


ROWS: list[Row] = [
    *(
        Row(
            f"test-raw-{label}",
            "applied" if RAW_TEST_APPLIES[label] else "refused",
            _raw_test(text),
        )
        for label, text in CHARACTER_CLASSES.items()
    ),
    *(
        Row(f"test-claim-entry-{label}", "applied", _entry_test(text))
        for label, text in CHARACTER_CLASSES.items()
    ),
    Row("test-null-on-absent-member", "applied", _null_on_absent),
    Row("test-null-on-present-member", "refused", _null_on_present),
    Row("test-null-without-parent", "refused", _null_without_parent),
    Row("test-other-value", "refused", _other_value),
    Row("remove-absent-member", "refused", _remove_absent),
    Row("replace-stale-resourceversion", "refused", _replace("stale")),
    Row("replace-without-resourceversion", "applied", _replace("none")),
    Row("replace-current-resourceversion", "applied", _replace("current")),
    Row("create-existing-name", "exists", _create_twice),
]


async def run_rows(store: Store, *, prefix: str) -> dict[str, Outcome]:
    """Every row, each on its own ConfigMap `<prefix><n>`: what happened, by row name."""
    observed: dict[str, Outcome] = {}
    for number, row in enumerate(ROWS):
        observed[row.name] = await row.run(store, f"{prefix}{number}")
    return observed


def expected() -> dict[str, Outcome]:
    return {row.name: row.expected for row in ROWS}


async def dates(store: Store, *, name: str, count: int = 5) -> list[float]:
    """The server's time of `count` answers in a row (the Date header)."""
    return [(await store.get_window(name)).server_time for _ in range(count)]


def date_problems(seen: list[float]) -> list[str]:
    """What the protocol assumes of the Date header: whole seconds, never going back."""
    problems = [f"{date} is not a whole second" for date in seen if date != math.floor(date)]
    problems += [
        f"{later} after {earlier}" for earlier, later in itertools.pairwise(seen) if later < earlier
    ]
    return problems


class JobsStore(Protocol):
    """What the ReportJob rows use of the gateway's JobStore port."""

    async def create(self, body: dict[str, Any]) -> Read: ...

    async def get(self, name: str) -> Read: ...

    async def request_cancel(self, name: str, *, uid: str) -> dict[str, Any] | None: ...


def _reportjob(object_id: str) -> dict[str, Any]:
    claim = Claim.new(
        object_id=object_id, now=1_700_000_000, window_seconds=300, timeout_seconds=60
    )
    return build_reportjob(object_id=object_id, claim=claim)


async def reportjob_rows(store: JobsStore) -> dict[str, str]:
    """The ReportJob requests of the protocol: a create of a taken name, a cancel of the object
    of another uid (a ReportJob deleted and created again under its name), and of its own."""
    observed: dict[str, str] = {}
    created = (await store.create(_reportjob("contract-a"))).obj
    assert created is not None
    try:
        await store.create(_reportjob("contract-a"))
        observed["create-existing-name"] = "applied"
    except AlreadyExists:
        observed["create-existing-name"] = "exists"
    name, uid = created["metadata"]["name"], created["metadata"]["uid"]
    other = await store.request_cancel(name, uid="00000000-0000-0000-0000-000000000000")
    observed["cancel-another-uid"] = "refused" if other is None else "applied"
    own = await store.request_cancel(name, uid=uid)
    observed["cancel-its-uid"] = (
        "applied" if own is not None and own["spec"].get("cancel") else "refused"
    )
    gone = await store.request_cancel("rj-000000000000000000000000-1", uid=uid)
    observed["cancel-absent"] = "refused" if gone is None else "applied"
    read = await store.get(name)
    observed["finalizer-kept"] = (
        "applied"
        if read.obj and read.obj["metadata"].get("finalizers") == [FINALIZER]
        else "refused"
    )
    return observed


REPORTJOB_EXPECTED = {
    "create-existing-name": "exists",
    "cancel-another-uid": "refused",
    "cancel-its-uid": "applied",
    "cancel-absent": "refused",
    "finalizer-kept": "applied",
}


class OperatorStore(Protocol):
    """What the finalizer rows use of the operator's ReconcileApi and WindowApi."""

    async def create_reportjob(self, *, body: dict[str, Any]) -> dict[str, Any]: ...

    async def get_reportjob(self, *, name: str) -> dict[str, Any] | None: ...

    async def delete_reportjob(
        self, *, name: str, uid: str, resource_version: str | None = None
    ) -> None: ...

    async def set_reportjob_finalizers(
        self, *, name: str, uid: str, before: list[str], after: list[str]
    ) -> dict[str, Any]: ...

    async def get_window_shard(self, *, name: str) -> dict[str, Any] | None: ...


async def finalizer_rows(api: OperatorStore, *, conflict: type[Exception]) -> dict[str, str]:
    """The finalizer semantics "Deleting a job" relies on (D1): a DELETE leaves an object with
    finalizers, marked; a create of its name meets it; no finalizer can be added to it; a
    finalizer patch tests the list it read; a DELETE with another resourceVersion is refused;
    once its last finalizer goes, it is gone."""
    observed: dict[str, str] = {}

    async def outcome(call: Awaitable[object]) -> str:
        try:
            await call
        except conflict:
            return "refused"
        return "applied"

    body = _reportjob("contract-final")
    name = body["metadata"]["name"]
    created = await api.create_reportjob(body=body)
    uid, version = created["metadata"]["uid"], created["metadata"]["resourceVersion"]
    extra = await api.set_reportjob_finalizers(
        name=name, uid=uid, before=[FINALIZER], after=[FINALIZER, "example.com/x"]
    )
    await api.delete_reportjob(name=name, uid=uid, resource_version=version)  # stale version
    kept = await api.get_reportjob(name=name)
    observed["delete-another-version"] = (
        "refused" if kept and not kept["metadata"].get("deletionTimestamp") else "applied"
    )
    await api.delete_reportjob(name=name, uid=uid)
    marked = await api.get_reportjob(name=name)
    observed["delete-with-finalizers-marks"] = (
        "applied" if marked and marked["metadata"].get("deletionTimestamp") else "refused"
    )
    observed["create-while-terminating"] = await outcome(api.create_reportjob(body=body))
    observed["add-finalizer-while-deleting"] = await outcome(
        api.set_reportjob_finalizers(
            name=name,
            uid=uid,
            before=[FINALIZER, "example.com/x"],
            after=[FINALIZER, "example.com/x", "example.com/y"],
        )
    )
    observed["finalizers-from-a-stale-list"] = await outcome(
        api.set_reportjob_finalizers(name=name, uid=uid, before=[FINALIZER], after=[])
    )
    assert extra["metadata"]["finalizers"] == [FINALIZER, "example.com/x"]
    await api.set_reportjob_finalizers(
        name=name, uid=uid, before=[FINALIZER, "example.com/x"], after=["example.com/x"]
    )
    observed["gone-with-its-last-finalizer"] = await outcome(
        api.set_reportjob_finalizers(name=name, uid=uid, before=["example.com/x"], after=[])
    )
    observed["gone"] = "applied" if await api.get_reportjob(name=name) is None else "refused"
    observed["absent-shard-reads-none"] = (
        "applied" if await api.get_window_shard(name="reportjobs-windows-zz") is None else "refused"
    )
    return observed


FINALIZER_EXPECTED = {
    "delete-another-version": "refused",
    "delete-with-finalizers-marks": "applied",
    "create-while-terminating": "refused",
    "add-finalizer-while-deleting": "refused",
    "finalizers-from-a-stale-list": "refused",
    "gone-with-its-last-finalizer": "applied",
    "gone": "applied",
    "absent-shard-reads-none": "applied",
}
