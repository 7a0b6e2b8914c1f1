# SPDX-License-Identifier: Apache-2.0
"""Findings to alerts: the JSON object of DESIGN.md's alert contract."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

from collector.alerts.clock import Clock
from collector.detect import Finding
from collector.enrich import cgroups
from collector.enrich.dns_names import DnsNames
from collector.enrich.process import Process, ProcessTable
from probes.events import ConnectEvent, DnsEvent, Event, GpuOpenEvent, PayloadEvent, RelayEvent, StdioEvent

_ALERT_NS = uuid.UUID("5b0c8f4e-6c1e-4f0e-9a57-636f616c6d69")  # fixed: ids are reproducible


def _process_dict(proc: Process | None, event: Event, cgroup: str | None, container: str | None) -> dict[str, Any]:
    return {
        "pid": event.tgid,
        "ppid": proc.ppid if proc else event.ppid,
        "uid": event.uid,
        "comm": event.comm,
        "exe": proc.exe if proc else None,
        "args": list(proc.args) if proc else [],
        "cgroup": cgroup,
        "container_id": container,
    }


_ENDS = ("proto", "saddr", "sport", "daddr", "dport")


def _gpu(event: Event) -> dict[str, Any] | None:
    """The GPU an alert is about, as far as the event knows it (NVML adds the UUID and use: issue 14)."""
    if not isinstance(event, GpuOpenEvent):
        return None
    return {"device": event.path or None, "minor": event.minor if event.major else None, "uuid": None,
            "kernels": [], "utilisation": None, "memory": None}  # fmt: skip


def _network(event: Event, names: DnsNames | None) -> dict[str, Any] | None:
    if isinstance(event, DnsEvent):  # the name server asked
        return {**dict(zip(_ENDS, (event.proto, None, None, event.server, event.port), strict=True)), "sni": None,
                "dns_name": None}  # fmt: skip
    if isinstance(event, RelayEvent):  # the holder's connection: its own end is not looked up
        ends: tuple[Any, ...] = (None, None, None, event.daddr, event.dport)
    elif isinstance(event, StdioEvent | ConnectEvent | PayloadEvent):
        # stdio: both ends from the kernel; connect and payload: the local end, when the live run found the
        # socket still open
        ends = (event.proto, event.saddr, event.sport, event.daddr, event.dport)
    else:
        return None
    # the name the destination was looked up by, from the DNS answers seen before (collector.enrich.dns_names)
    name = names.lookup(ends[3], event.ktime_ns) if names is not None else None
    return {**dict(zip(_ENDS, ends, strict=True)), "sni": None, "dns_name": name}


def build(
    finding: Finding,
    host: str,
    clock: Clock,
    processes: ProcessTable,
    cgroup_paths: Mapping[int, str],
    *,
    names: DnsNames | None = None,
) -> dict[str, Any]:
    """One alert; ``cgroup_paths`` maps cgroup ids to paths (from cgroup events)."""
    event = finding.event
    proc = processes.get(event.tgid)
    cgroup = cgroup_paths.get(event.cgroup_id)
    container = cgroups.container_id(cgroup) if cgroup else None

    def same_container(p: Process) -> bool:
        path = cgroup_paths.get(p.cgroup_id)
        return (cgroups.container_id(path) if path else None) == container

    inside = same_container if container else None
    lineage = processes.ancestors(event.tgid, inside=inside)
    if proc is None and event.ppid and (parent := processes.get(event.ppid)) is not None:
        # a process never seen to exec (a fork that came and went): its record still names its parent
        lineage = [parent, *processes.ancestors(parent.pid, inside=inside)]
    job_id = cgroups.slurm_job(cgroup) if cgroup else None
    return {
        "kind": "alert",
        "id": str(uuid.uuid5(_ALERT_NS, f"{clock.boot_id}/{event.ktime_ns}/{event.pid}/{finding.rule.id}")),
        "time": clock.rfc3339(event.ktime_ns),
        "host": host,
        "rule": finding.rule.id,
        "category": finding.rule.category,
        "severity": finding.level.value,
        "summary": finding.summary,
        "process": _process_dict(proc, event, cgroup, container),
        "ancestors": [{"pid": p.pid, "comm": p.comm, "exe": p.exe, "args": list(p.args)} for p in lineage],
        "k8s": None,
        "job": {"scheduler": "slurm", "id": job_id} if job_id else None,
        "network": _network(event, names),
        "gpu": _gpu(event),
        "evidence": finding.evidence,
        "action": {"taken": "none"},
        "tags": list(finding.rule.tags),
    }
