# SPDX-License-Identifier: Apache-2.0
"""Findings to alerts: the JSON object of DESIGN.md's alert contract."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

from collector.alerts.clock import Clock
from collector.detect import Finding
from collector.enrich import cgroups
from collector.enrich.process import Process, ProcessTable
from probes.events import ConnectEvent, Event, PayloadEvent

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


def _network(event: Event) -> dict[str, Any] | None:
    if not isinstance(event, ConnectEvent | PayloadEvent):
        return None
    return {
        "proto": event.proto,  # the local end, when the live run found the socket still open
        "saddr": event.saddr,
        "sport": event.sport,
        "daddr": event.daddr,
        "dport": event.dport,
        "sni": None,
        "dns_name": None,
    }


def build(
    finding: Finding,
    host: str,
    clock: Clock,
    processes: ProcessTable,
    cgroup_paths: Mapping[int, str],
) -> dict[str, Any]:
    """One alert; ``cgroup_paths`` maps cgroup ids to paths (from cgroup events)."""
    event = finding.event
    proc = processes.get(event.tgid)
    cgroup = cgroup_paths.get(event.cgroup_id)
    container = cgroups.container_id(cgroup) if cgroup else None

    def same_container(p: Process) -> bool:
        path = cgroup_paths.get(p.cgroup_id)
        return (cgroups.container_id(path) if path else None) == container

    lineage = processes.ancestors(event.tgid, inside=same_container if container else None)
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
        "network": _network(event),
        "gpu": None,
        "evidence": finding.evidence,
        "action": {"taken": "none"},
        "tags": list(finding.rule.tags),
    }
