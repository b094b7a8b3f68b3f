"""The informer against a scripted API: list, watch from the list's version, relist on 410."""

import asyncio
from collections.abc import AsyncIterator, Mapping
from typing import Any, cast

from reportjobs_kube.client import Answer, KubeClient
from reportjobs_kube.errors import Gone, Unreachable
from reportjobs_kube.informer import Informer, running


def _obj(name: str, rv: int, uid: str = "u", **status: Any) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "uid": uid, "resourceVersion": str(rv), "managedFields": [1]},
        "status": status,
    }


class ScriptedApi:
    """Lists answer `listing`; each watch plays the next script (a list of events, or an
    exception to raise), then ends; with no script left, a watch blocks."""

    def __init__(self, listing: list[dict[str, Any]], rv: int, scripts: list[Any]) -> None:
        self.listings = [(listing, rv)]
        self.scripts = scripts
        self.requests: list[str] = []

    async def request(self, method: str, path: str, *, query: Mapping[str, str]) -> Answer:
        self.requests.append(f"list limit={query['limit']}")
        listing, rv = self.listings.pop(0) if len(self.listings) > 1 else self.listings[0]
        data = {"items": listing, "metadata": {"resourceVersion": str(rv)}}
        return Answer(data=data, server_time=0.0)

    async def watch(
        self, path: str, *, query: Mapping[str, str], timeout_seconds: int
    ) -> AsyncIterator[dict[str, Any]]:
        self.requests.append(f"watch from {query['resourceVersion']}")
        if not self.scripts:
            await asyncio.Event().wait()
        script = self.scripts.pop(0)
        if isinstance(script, Exception):
            raise script
        for event in script:
            yield event


async def _run_until(informer: Informer, api: ScriptedApi, watches: int) -> None:
    async with running(informer):
        for _ in range(200):
            if sum(r.startswith("watch") for r in api.requests) >= watches:
                break
            await asyncio.sleep(0.01)


async def test_lists_then_watches_from_the_lists_version_and_trims() -> None:
    changes: list[tuple[Any, Any]] = []
    api = ScriptedApi(
        [_obj("a", 5)],
        rv=9,
        scripts=[
            [
                {"type": "ADDED", "object": _obj("b", 10)},
                {"type": "MODIFIED", "object": _obj("a", 11, phase="Running")},
                {"type": "BOOKMARK", "object": {"metadata": {"resourceVersion": "12"}}},
                {"type": "DELETED", "object": _obj("b", 13)},
            ]
        ],
    )
    informer = Informer(
        client=cast(KubeClient, api), path="/x", on_change=lambda o, n: changes.append((o, n))
    )
    await _run_until(informer, api, watches=2)
    assert api.requests[:3] == ["list limit=500", "watch from 9", "watch from 13"]
    assert [o["metadata"]["name"] for o in informer] == ["a"]
    assert informer.get("a")["status"] == {"phase": "Running"}  # type: ignore[index]
    assert "managedFields" not in informer.get("a")["metadata"]  # type: ignore[index]
    assert [(o and o["metadata"]["name"], n and n["metadata"]["name"]) for o, n in changes] == [
        (None, "a"),
        (None, "b"),
        ("a", "a"),
        ("b", None),
    ]


async def test_a_gone_version_means_a_new_list_and_vanished_objects_are_deleted() -> None:
    changes: list[tuple[Any, Any]] = []
    gone = Gone(410, "too old", server_time=0)
    api = ScriptedApi([_obj("a", 5), _obj("b", 6)], rv=9, scripts=[gone])
    api.listings.append(([_obj("a", 5)], 20))  # b was deleted while nobody watched
    informer = Informer(
        client=cast(KubeClient, api), path="/x", on_change=lambda o, n: changes.append((o, n))
    )
    async with running(informer):
        for _ in range(200):
            if "watch from 20" in api.requests:
                break
            await asyncio.sleep(0.01)
    assert api.requests[:4] == ["list limit=500", "watch from 9", "list limit=500", "watch from 20"]
    assert [o["metadata"]["name"] for o in informer] == ["a"]
    deleted = [old["metadata"]["name"] for old, new in changes if new is None]
    assert deleted == ["b"]


async def test_an_error_event_or_a_broken_watch_resumes() -> None:
    api = ScriptedApi(
        [],
        rv=3,
        scripts=[
            Unreachable("reset"),
            [{"type": "ERROR", "object": {"code": 410, "message": "too old"}}],
        ],
    )
    informer = Informer(client=cast(KubeClient, api), path="/x")
    async with running(informer):
        for _ in range(400):
            if api.requests.count("list limit=500") >= 2:
                break
            await asyncio.sleep(0.01)
    # broken watch: the same version again (after a backoff); an ERROR event: a new list
    assert api.requests[:4] == ["list limit=500", "watch from 3", "watch from 3", "list limit=500"]


async def test_a_write_through_is_never_replaced_by_an_older_event() -> None:
    api = ScriptedApi([], rv=1, scripts=[])
    informer = Informer(client=cast(KubeClient, api), path="/x")
    informer.remember(_obj("a", 8, phase="Running"))
    informer._apply({"type": "MODIFIED", "object": _obj("a", 7, phase="Pending")})
    assert informer.get("a")["status"] == {"phase": "Running"}  # type: ignore[index]
    informer.forget(_obj("a", 8, uid="other"))  # another object of that name: kept
    assert informer.get("a") is not None
    informer.forget(_obj("a", 8))
    assert informer.get("a") is None
