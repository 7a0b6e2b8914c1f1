# SPDX-License-Identifier: Apache-2.0
"""gpu.unapproved: a process opened a GPU and matches no entry of the approved GPU workloads in the config."""

from __future__ import annotations

import fnmatch
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from collector.detect import Finding, Rule, Severity, State
from probes.events import Event, GpuOpenEvent, Kind

RULE = Rule(
    id="gpu.unapproved",
    category="gpu",
    severity=Severity.MEDIUM,
    description=(
        "A process opened a GPU device file (the gpu_open sensor: by path prefix, or a GPU major's char device "
        "under another path) and matches no entry of `gpu_approved` in the config. An entry approves a process "
        "when every key it gives matches: `exe` (a glob on the executable's path), `cgroup` (a glob on the "
        "cgroup v2 path: a Kubernetes pod's or Slurm job's slice), `uid`, `comm` (a glob). With no entries the "
        "rule is off (the default: allow all), so it is opt-in. One alert per process. Known false positives: "
        "GPU tools the policy forgot (nvidia-smi, DCGM, the device plugin, monitoring agents: approve them by "
        "exe), a workload that moved to another cgroup layout. Bypasses: a process that is approved by its exe "
        "or cgroup and runs unapproved work (a miner inside an approved training image: gpu.miner_process and "
        "gpu.miner_kernel judge the work), GPU use through another process's open device (an approved "
        "server's), and devices opened before the agent started. Kubernetes namespace and pod labels are not "
        "matched yet (the attribution issue adds them)."
    ),
    tags=("maturity_incubating", "host", "container", "process", "mitre_impact", "T1496"),
    consumes=frozenset({Kind.GPU_OPEN}),
)

KEYS = frozenset({"exe", "cgroup", "uid", "comm"})
SEEN_MAX = 8192  # processes alerted: oldest forgotten first


@dataclass(frozen=True, slots=True)
class Approval:
    exe: str | None = None
    cgroup: str | None = None
    uid: int | None = None
    comm: str | None = None

    def approves(self, exe: str | None, cgroup: str | None, uid: int, comm: str) -> bool:
        return (
            (self.exe is None or (exe is not None and fnmatch.fnmatchcase(exe, self.exe)))
            and (self.cgroup is None or (cgroup is not None and fnmatch.fnmatchcase(cgroup, self.cgroup)))
            and (self.uid is None or uid == self.uid)
            and (self.comm is None or fnmatch.fnmatchcase(comm, self.comm))
        )


def approvals(entries: Sequence[Mapping[str, Any]]) -> tuple[Approval, ...]:
    """The config's entries as approvals; ValueError naming the first bad one (the config checks them first)."""
    out = []
    for i, entry in enumerate(entries):
        unknown = set(entry) - KEYS
        if unknown or not entry:
            raise ValueError(f"entry {i + 1}: keys must be some of {', '.join(sorted(KEYS))}, got {sorted(entry)}")
        for key in ("exe", "cgroup", "comm"):
            if key in entry and not (isinstance(entry[key], str) and entry[key]):
                raise ValueError(f"entry {i + 1}: {key} must be a non-empty glob")
        if "uid" in entry and not (isinstance(entry["uid"], int) and not isinstance(entry["uid"], bool)):
            raise ValueError(f"entry {i + 1}: uid must be an integer")
        out.append(Approval(entry.get("exe"), entry.get("cgroup"), entry.get("uid"), entry.get("comm")))
    return tuple(out)


class UnapprovedDetector:
    rule = RULE

    def __init__(self, entries: Sequence[Mapping[str, Any]] = ()) -> None:
        self.approvals = approvals(entries)
        self._alerted: OrderedDict[int, None] = OrderedDict()

    def detect(self, event: Event, state: State) -> list[Finding]:
        if not self.approvals or not isinstance(event, GpuOpenEvent) or not event.opened:
            return []
        proc = state.processes.get(event.tgid)
        exe = proc.exe if proc else None
        cgroup = state.cgroup_paths.get(event.cgroup_id)
        if any(a.approves(exe, cgroup, event.uid, event.comm) for a in self.approvals):
            return []
        if event.tgid in self._alerted:
            return []
        self._alerted[event.tgid] = None
        while len(self._alerted) > SEEN_MAX:
            self._alerted.popitem(last=False)
        summary = (
            f"{event.comm} (pid {event.tgid}, uid {event.uid}) opened {event.path or 'a GPU device'} "
            f"({event.major}:{event.minor}) and is no approved GPU workload"
        )
        evidence = {
            "signature": "gpu use outside the approved workloads",
            "device": event.path,
            "major": event.major,
            "minor": event.minor,
            "exe": exe,
            "cgroup": cgroup,
            "uid": event.uid,
            "approvals": len(self.approvals),
        }
        return [Finding(RULE, event, summary, evidence)]
