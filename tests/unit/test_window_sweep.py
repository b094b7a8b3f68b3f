"""The operator's sweep of the gateway's window shards."""

from pathlib import Path

from reportjobs_gateway.manifests import build_window_shard
from reportjobs_model.window import SHARD_COUNT, SHARD_PREFIX, Claim
from reportjobs_operator.windows import pruned_shard, sweep_window_shards
from tests.unit.fakes import FakeStore

T0 = 1_700_000_000
HELPERS = Path(__file__).resolve().parents[2] / "deploy/helm/reportjobs/templates/_helpers.tpl"


def _entry(object_id: str, accepted: int, window: int = 10) -> str:
    return Claim.new(
        object_id=object_id, now=accepted, window_seconds=window, timeout_seconds=5
    ).to_entry()


async def test_only_shards_with_closed_claims_are_replaced() -> None:
    store = FakeStore(now=T0 + 11.5)
    for name, data in {
        "reportjobs-windows-00": {"a": _entry("a", T0), "b": _entry("b", T0 + 5)},
        "reportjobs-windows-01": {"c": _entry("c", T0 + 1)},
        "reportjobs-windows-02": {"d": _entry("d", T0 + 9)},
    }.items():
        await store.create_window(build_window_shard(name=name, data=data, resource_version=None))
    store.calls.clear()

    assert await sweep_window_shards(api=store) == 2

    assert set(store.windows["reportjobs-windows-00"]["data"]) == {"b"}
    assert store.windows["reportjobs-windows-01"]["data"] == {}
    assert set(store.windows["reportjobs-windows-02"]["data"]) == {"d"}
    assert sorted(store.calls) == [
        "replace_window reportjobs-windows-00",
        "replace_window reportjobs-windows-01",
    ]


async def test_a_shard_written_since_the_list_is_left_to_its_writer() -> None:
    store = FakeStore(now=T0 + 20)
    shard = build_window_shard(
        name="reportjobs-windows-00", data={"a": _entry("a", T0)}, resource_version=None
    )
    await store.create_window(shard)
    listed, now = await store.list_window_shards()
    replacement = pruned_shard(listed[0], now=now)
    assert replacement is not None
    current = store.windows["reportjobs-windows-00"]
    await store.replace_window({**current, "data": {"x": _entry("x", T0 + 19)}})
    assert await sweep_window_shards(api=_Stale(store, listed)) == 0
    assert set(store.windows["reportjobs-windows-00"]["data"]) == {"x"}


class _Stale:
    """Answers the list from before a concurrent write."""

    def __init__(self, store: FakeStore, listed: list[dict[str, object]]) -> None:
        self.store, self.listed = store, listed

    async def list_window_shards(self) -> tuple[list[dict[str, object]], float]:
        return self.listed, self.store.now

    async def replace_window_shard(self, *, body: dict[str, object]) -> None:
        await self.store.replace_window_shard(body=body)


def test_the_chart_grants_exactly_the_model_shards() -> None:
    text = HELPERS.read_text()
    assert f'printf "{SHARD_PREFIX}%02x"' in text
    assert f"until {SHARD_COUNT}" in text
