# SPDX-License-Identifier: Apache-2.0
"""Event sources: where the agent's events come from, the kernel (live) or a recording (replay).

The Agent drives either through one interface, so that `coalmine run` and
`coalmine replay` share the pipeline, the error counting and the shutdown;
only the source differs (httpx's MockTransport idea, STYLE.md). A source:

- ``origin``: the node name and the boot's clock that alerts are stamped with;
- ``open(metrics)``: the fatal part of starting, in the main thread, before
  the web stack is imported (the kernel source compiles its probes here: the
  agent's memory peak); registers what it counts on ``metrics``;
- ``start(processes)``: begins delivering; a live source returns what only it
  can add (the /proc seed and lookups, ``Live``), a recording ``None``;
- ``next_batch()``: the next events in order, ``None`` once there are no more;
- ``housekeeping()``: background work until cancelled (the socket sweep);
- ``status()`` and ``ready`` for /readyz; ``close()`` frees what it holds.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from collector.alerts.clock import Clock
from collector.enrich.process import ProcessTable
from collector.enrich.sockets import LocalEndLookup
from collector.metrics import Metrics
from probes.events import Event


@dataclass(frozen=True, slots=True)
class Origin:
    """Whose events these are: the node's name, and the clock of the boot they were seen in."""

    host: str
    clock: Clock


@dataclass(frozen=True, slots=True)
class Live:
    """What only a live source adds: the processes in /proc now, and the lookups the pipeline makes
    while the processes still exist (their results are recorded, so a replay needs neither)."""

    seed: list[Event]
    annotate: Callable[[Event], list[Event]]
    local_end: LocalEndLookup


class EventSource(Protocol):
    name: str

    @property
    def origin(self) -> Origin: ...

    @property
    def ready(self) -> bool: ...

    def open(self, metrics: Metrics) -> None: ...

    def start(self, processes: ProcessTable) -> Live | None: ...

    async def next_batch(self) -> list[Event] | None: ...

    async def housekeeping(self) -> None: ...

    def status(self) -> list[dict[str, Any]]: ...

    def close(self) -> None: ...
