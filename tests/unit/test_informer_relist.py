"""The informer announces each (re)list before applying it: the gateway's claim history needs
to know when consecutive changes may skip versions (docs/design.md, "The cached paths")."""

from typing import Any, cast

from reportjobs_kube.client import KubeClient
from reportjobs_kube.errors import Gone
from reportjobs_kube.informer import Informer
from tests.unit.test_informer import ScriptedApi, _obj, _run_until


async def test_on_relist_comes_after_the_list_and_before_its_changes() -> None:
    events: list[str] = []
    api = ScriptedApi([_obj("a", 5)], rv=9, scripts=[Gone(410, "too old", server_time=0.0), []])
    api.listings.append(([_obj("a", 12), _obj("b", 11)], 12))

    def changed(old: Any, new: Any) -> None:
        events.append(f"change {(new or old)['metadata']['name']}")

    def relisted() -> None:
        events.append(f"relist after {len([r for r in api.requests if r.startswith('list')])}")

    informer = Informer(
        client=cast(KubeClient, api), path="/x", on_change=changed, on_relist=relisted
    )
    await _run_until(informer, api, watches=3)
    assert events[:2] == ["relist after 1", "change a"]
    assert events[2] == "relist after 2"
    assert set(events[3:5]) == {"change a", "change b"}
