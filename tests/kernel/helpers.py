# SPDX-License-Identifier: Apache-2.0
"""Loaded probes that collect decoded events, for kernel tests."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar

from collector.source.kernel import decode_batch
from probes.events import Event
from probes.loader import Probes

E = TypeVar("E", bound=Event)


class Collected:
    def __init__(self, probes: Probes) -> None:
        self.probes = probes
        self.events: list[Event] = []
        self.decode_errors: list[str] = []
        self._lock = threading.Lock()
        self._first = 0  # find() looks at events from this index on (begin())

    def deliver(self, batch: list[bytes]) -> None:
        """The probes' reader thread hands each batch here: decoded as the kernel source decodes them."""
        errors: Counter[str] = Counter()
        events = decode_batch(batch, errors)
        with self._lock:
            self.events.extend(events)
            self.decode_errors.extend(errors.elements())

    def find(self, cls: type[E], pred: Callable[[E], bool], timeout: float = 3.0) -> list[E]:
        """Events of ``cls`` matching ``pred``, waiting until at least one arrives or the timeout."""
        deadline = time.monotonic() + timeout
        while True:
            with self._lock:
                found = [e for e in self.events[self._first :] if isinstance(e, cls) and pred(e)]
            if found or time.monotonic() > deadline:
                return found
            time.sleep(0.02)

    def begin(self, drain_s: float = 0.05) -> None:
        """Starts a test: find() no longer sees earlier tests' events. A test reuses fd numbers and may be
        given an earlier test's ephemeral port, so an old record could otherwise match its (tgid, fd, port).
        Records still in flight are let through first (the reader polls every 10 ms)."""
        time.sleep(drain_s)
        with self._lock:
            self._first = len(self.events)

    def settle(self, seconds: float = 0.3) -> None:
        """Let records in flight reach the list."""
        time.sleep(seconds)


@contextmanager
def loaded_probes() -> Iterator[Collected]:
    probes = Probes()
    probes.load()
    collected = Collected(probes)
    probes.start(collected.deliver)
    try:
        yield collected
    finally:
        probes.close()
