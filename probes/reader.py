# SPDX-License-Identifier: Apache-2.0
"""The ring-buffer reader: one thread drains the shared ring buffer and hands copied records, in batches, on."""

from __future__ import annotations

import ctypes as ct
import select
import threading
from collections.abc import Callable
from typing import Any

from probes.clock import JiffyClock


class RingReader:
    """Drains common.bpf.c's `events` ring buffer every ``interval_ms``, or as soon as the ring is half full
    (ringbuf.bpf.h submit_flags()); ``deliver`` gets each batch, copied, in ring order."""

    def __init__(
        self, common: Any, clock: JiffyClock, deliver: Callable[[list[bytes]], None], interval_ms: int
    ) -> None:
        self._common = common
        self._clock = clock
        self._deliver = deliver
        self._interval_ms = interval_ms
        self._batch: list[bytes] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _on_record(self, _ctx: Any, data: Any, size: int) -> int:
        # exec and payload records are reserved at their largest and filled in place: the header's
        # size field (bytes 2-3) says how much is used. A size past the record is left for decode().
        used = int.from_bytes(ct.string_at(data + 2, 2), "little") if size >= 4 else size
        record = ct.string_at(data, used if 4 <= used <= size else size)
        if len(record) >= 16:  # the kernel's jiffies to CLOCK_MONOTONIC ns (JiffyClock)
            ns = self._clock.ns(int.from_bytes(record[8:16], "little"))
            record = record[:8] + ns.to_bytes(8, "little") + record[16:]
        self._batch.append(record)
        return 0

    def start(self) -> None:
        """Open the ring buffer and start the reader thread."""
        self._common[b"events"].open_ring_buffer(self._on_record)

        # Edge-triggered: a wait ends at the timer or at a wakeup (a record that filled the ring past
        # half), not whenever the ring holds a record, so records are drained in batches.
        wakeups = select.epoll()
        wakeups.register(self._common[b"events"].map_fd, select.EPOLLIN | select.EPOLLET)

        def run() -> None:
            try:
                while not self._stop.is_set():
                    wakeups.poll(self._interval_ms / 1000)
                    self._common.ring_buffer_consume()
                    if self._batch:
                        records = self._batch[:]
                        self._batch.clear()
                        self._deliver(records)
            finally:
                wakeups.close()

        self._thread = threading.Thread(target=run, name="coalmine-ringbuf", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop the thread and wait for it (briefly), unless called from it (a ``deliver`` that closes)."""
        self._stop.set()
        if self._thread and self._thread is not threading.current_thread():
            self._thread.join(timeout=2)
