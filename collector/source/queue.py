# SPDX-License-Identifier: Apache-2.0
"""A bounded buffer of kernel records between the reader thread and the event loop."""

from __future__ import annotations

import asyncio
from collections import deque

from collector.metrics import Metrics


class RecordQueue:
    """Batches in from the loop thread; when full, the newest records are dropped and counted."""

    def __init__(self, max_records: int, metrics: Metrics) -> None:
        self._items: deque[bytes] = deque()
        self._max = max_records
        self._metrics = metrics
        self._ready = asyncio.Event()

    def __len__(self) -> int:
        return len(self._items)

    def put_batch(self, batch: list[bytes]) -> None:
        room = self._max - len(self._items)
        if len(batch) > room:
            self._metrics.dropped["queue_full"] += len(batch) - max(room, 0)
            batch = batch[: max(room, 0)]
        self._items.extend(batch)
        if self._items:
            self._ready.set()

    async def get_batch(self, limit: int = 1024) -> list[bytes]:
        """Up to ``limit`` records, waiting for at least one."""
        while not self._items:
            self._ready.clear()
            await self._ready.wait()
        n = min(limit, len(self._items))
        return [self._items.popleft() for _ in range(n)]
