# SPDX-License-Identifier: Apache-2.0
"""Live-only context, added as events before the recorder sees them.

What the kernel record lacks but /proc and the cgroup mount know (a process
met without its exec, the path of a cgroup id, the resolved executable, the
ssh_config lines an SSH client will apply) is turned into events here, so that a recording replays with the same context
and detectors stay pure.
"""

from __future__ import annotations

import dataclasses
import os
import stat
from collections.abc import Iterable
from pathlib import Path

from collector.enrich import procfs
from collector.enrich.cache import Bounded
from collector.enrich.cgroups import CgroupResolver
from collector.enrich.process import ProcessTable
from collector.enrich.relay import RelayFinder
from collector.enrich.sockets import has_listener
from collector.enrich.sshconf import SshConfigReader
from probes import gpu
from probes.events import CgroupEvent, Event, ExecEvent, ExitEvent, GpuOpenEvent, ProcEvent, StdioEvent

MAX_BACKFILL = 64  # ancestors read from /proc for one unknown process
# cgroup ids whose path was emitted lately: an id forgotten is emitted again on its next event. The pipeline
# keeps paths with the same bound and sees the ids in the same order, so it forgets the same ones.
CGROUP_IDS_MAX = 65536


class LiveAnnotator:
    def __init__(
        self,
        processes: ProcessTable,
        cgroups: CgroupResolver,
        proc: Path = Path("/proc"),
        known_cgroups_max: int = CGROUP_IDS_MAX,
        ssh_config: SshConfigReader | None = None,
        *,
        gpu_majors: Iterable[int] = gpu.DEFAULT_MAJORS,
    ) -> None:
        self._processes = processes
        self._cgroups = cgroups
        self._proc = proc
        self._known_cgroups: Bounded[int, None] = Bounded(known_cgroups_max)
        self.ssh_config = ssh_config or SshConfigReader(str(proc))  # .skipped: config files not read, by reason
        self.relay = RelayFinder(proc)  # .skipped: relays not looked for, by reason
        self._gpu_majors = frozenset(gpu_majors)

    def __call__(self, event: Event) -> list[Event]:
        out: list[Event] = []
        if isinstance(event, ExecEvent):
            event = self.ssh_config(dataclasses.replace(event, exe=procfs.exe(event.tgid, self._proc)))
            self._backfill(event.ppid, out)
        elif not isinstance(event, ExitEvent | CgroupEvent | ProcEvent):
            if isinstance(event, GpuOpenEvent) and event.how == "failed":
                found = self._gpu_device(event)
                if found is None:
                    return out  # the path is no GPU device: an ENXIO of something else
                event = found
            if isinstance(event, StdioEvent) and event.proto == "tcp":
                event = dataclasses.replace(event, inbound=has_listener(event.tgid, event.sport, self._proc))
            before = len(out)
            self._backfill(event.tgid, out)
            if len(out) == before and event.tgid not in self._processes and event.ppid:
                # gone before we looked (a forked subshell that ran one command): its parent may remain
                self._backfill(event.ppid, out)
        self._cgroup(event, out)
        out.append(event)
        relay = self.relay(event)
        if relay is not None:
            out.append(relay)
        return out

    def _gpu_device(self, event: GpuOpenEvent) -> GpuOpenEvent | None:
        """A failed open of a path that is no GPU prefix (exec.bpf.c GPU_OPEN_FAILED, an ENXIO or ENODEV): the
        device number of the file at that path, in the process's own root (or cwd, for a relative path), or
        its parent's when the process is gone, if it is a char device of a GPU major; None when it is
        anything else. When neither is there to look, the event is kept with no device number (0:0)."""
        base = "root" if event.path.startswith("/") else "cwd"
        for pid in (event.tgid, event.ppid):
            where = self._proc / str(pid)
            if not pid or not where.exists():
                continue
            try:
                st = os.stat(where / base / event.path.lstrip("/"))
            except (OSError, ValueError):
                return None
            if not stat.S_ISCHR(st.st_mode) or os.major(st.st_rdev) not in self._gpu_majors:
                return None
            return dataclasses.replace(event, major=os.major(st.st_rdev), minor=os.minor(st.st_rdev))
        return event

    def seed(self) -> list[Event]:
        """Every process in /proc now, with their cgroups: the table's starting point."""
        out: list[Event] = []
        for pid in procfs.pids(self._proc):
            snap = procfs.snapshot(pid, self._cgroups, self._proc)
            if snap is not None:
                self._cgroup(snap, out)
                out.append(snap)
        return out

    def _backfill(self, pid: int, out: list[Event]) -> None:
        chain: list[ProcEvent] = []
        while pid > 0 and pid not in self._processes and len(chain) < MAX_BACKFILL:
            snap = procfs.snapshot(pid, self._cgroups, self._proc)
            if snap is None or any(s.pid == pid for s in chain):
                break
            chain.append(snap)
            pid = snap.ppid
        for snap in reversed(chain):  # parents first
            self._cgroup(snap, out)
            out.append(snap)

    def _cgroup(self, event: Event, out: list[Event]) -> None:
        cid = event.cgroup_id
        if not cid or cid in self._known_cgroups:
            return
        path = self._cgroups.path(cid)
        if path is None:
            return  # unknown now; the resolver retries after its rescan interval
        self._known_cgroups[cid] = None
        out.append(CgroupEvent(event.ktime_ns, 0, 0, 0, 0, cid, "", path))
