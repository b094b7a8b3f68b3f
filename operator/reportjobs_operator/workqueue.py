"""Keys waiting to be reconciled (client-go's workqueue, in small).

A key is queued at most once however many events name it, and is never handed to two workers
at once: an event for a key being worked on queues it again for after. A key whose reconcile
failed comes back after an exponential backoff.
"""

import asyncio

BACKOFF_BASE_SECONDS = 0.5
BACKOFF_MAX_SECONDS = 60.0


class WorkQueue:
    def __init__(self) -> None:
        self._queue: asyncio.Queue[str] = asyncio.Queue()
        self._queued: set[str] = set()
        self._active: set[str] = set()
        self._again: set[str] = set()
        self._failures: dict[str, int] = {}

    def add(self, key: str) -> None:
        if key in self._queued:
            return
        if key in self._active:
            self._again.add(key)
            return
        self._queued.add(key)
        self._queue.put_nowait(key)

    async def get(self) -> str:
        key = await self._queue.get()
        self._queued.discard(key)
        self._active.add(key)
        return key

    def done(self, key: str, *, failed: bool = False) -> None:
        """The worker is finished with the key; a failed one is retried after a backoff."""
        self._active.discard(key)
        if failed:
            count = self._failures[key] = self._failures.get(key, 0) + 1
            delay = min(BACKOFF_BASE_SECONDS * 2 ** (count - 1), BACKOFF_MAX_SECONDS)
            asyncio.get_running_loop().call_later(delay, self.add, key)
        else:
            self._failures.pop(key, None)
        if key in self._again:
            self._again.discard(key)
            self.add(key)

    def __len__(self) -> int:
        return len(self._queued)
