# SPDX-License-Identifier: Apache-2.0
"""The process table: who is who, kept by exec/exit/proc events, for alert lineage.

Exited processes stay a while in a bounded graveyard, so that a miner whose
launching shell has exited (and which the kernel reparented to init) still
names that shell among its ancestors: lineage is taken at exec time.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from probes.events import Event, ExecEvent, ExitEvent, ProcEvent


@dataclass(slots=True)
class Process:
    pid: int
    ppid: int
    uid: int
    comm: str
    exe: str | None
    args: tuple[str, ...]
    cgroup_id: int
    exited: bool = False


class ProcessTable:
    def __init__(self, max_live: int = 131072, max_exited: int = 8192) -> None:
        self._live: OrderedDict[int, Process] = OrderedDict()
        self._exited: OrderedDict[int, Process] = OrderedDict()
        self._max_live = max_live
        self._max_exited = max_exited

    def __len__(self) -> int:
        return len(self._live)

    def __contains__(self, pid: int) -> bool:
        return pid in self._live

    def get(self, pid: int) -> Process | None:
        return self._live.get(pid) or self._exited.get(pid)

    def apply(self, event: Event) -> None:
        """Update the table from one event; kinds that say nothing about processes are ignored."""
        if isinstance(event, ExecEvent):
            exe = event.exe or (event.filename if event.filename.startswith("/") else None)
            self._put(Process(event.tgid, event.ppid, event.uid, event.comm, exe, event.args, event.cgroup_id))
        elif isinstance(event, ProcEvent):
            self._put(Process(event.tgid, event.ppid, event.uid, event.comm, event.exe, event.args, event.cgroup_id))
        elif isinstance(event, ExitEvent):
            proc = self._live.pop(event.tgid, None)
            if proc is not None:
                proc.exited = True
                self._exited[event.tgid] = proc
                self._exited.move_to_end(event.tgid)
                while len(self._exited) > self._max_exited:
                    self._exited.popitem(last=False)
        elif event.tgid in self._live:
            self._live.move_to_end(event.tgid)

    def _put(self, proc: Process) -> None:
        self._exited.pop(proc.pid, None)
        self._live[proc.pid] = proc
        self._live.move_to_end(proc.pid)
        while len(self._live) > self._max_live:
            self._live.popitem(last=False)

    def ancestors(
        self, pid: int, inside: Callable[[Process], bool] | None = None, max_depth: int = 32
    ) -> list[Process]:
        """Parent first, up to init (pid 1) or the first unknown parent.

        With ``inside`` (e.g. "is in the same container"), stop at the last
        ancestor for which it holds: the container's init.
        """
        chain: list[Process] = []
        proc = self.get(pid)
        seen = {pid}
        while proc is not None and proc.ppid and proc.ppid not in seen and len(chain) < max_depth:
            parent = self.get(proc.ppid)
            if parent is None or (inside is not None and not inside(parent)):
                break
            chain.append(parent)
            seen.add(parent.pid)
            proc = parent
        return chain
