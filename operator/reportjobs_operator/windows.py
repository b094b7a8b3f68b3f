"""The sweep of the gateway's window shards: closed claims are pruned.

The gateway prunes a shard whenever it writes it; this sweep covers shards nobody writes. A
claim is removed only when the server's own clock (the Date of the list answer) says its window
is over, by a replace that carries the resourceVersion listed: a submission that later finds no
claim for its object is at least a window after the object's last job, so a new job is due.
"""

import logging

from reportjobs_model.window import pruned
from reportjobs_operator.ports import Conflict, Obj, WindowApi

log = logging.getLogger(__name__)


def pruned_shard(shard: Obj, *, now: float) -> Obj | None:
    """The shard without its closed claims; None when it has none."""
    data = shard.get("data") or {}
    kept = pruned(data, now=now)
    return None if kept == data else {**shard, "data": kept}


async def sweep_window_shards(*, api: WindowApi) -> int:
    """One list, then one replace per shard with closed claims; returns how many were pruned."""
    shards, now = await api.list_window_shards()
    count = 0
    for shard in shards:
        replacement = pruned_shard(shard, now=now)
        if replacement is None:
            continue
        try:
            await api.replace_window_shard(body=replacement)
        except Conflict:  # written meanwhile, and pruned by that writer
            continue
        count += 1
    if count:
        log.info("pruned closed dedup windows from %d shard(s)", count)
    return count
