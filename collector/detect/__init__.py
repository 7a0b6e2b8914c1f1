# SPDX-License-Identifier: Apache-2.0
"""Detectors: pure functions from (event, state) to findings, one threat per module.

Each detector carries Falco-style metadata (id, description with its known
false positives and bypasses, severity, tags with maturity and MITRE
technique) and the event kinds it consumes, so the pipeline only offers it
the events it can match. No I/O, no clock: time comes from the event.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol

from collector.enrich.process import ProcessTable
from probes.events import Event, Kind


class Severity(StrEnum):
    INFO = "info"
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    CRITICAL = "critical"


@dataclass(frozen=True, slots=True)
class Rule:
    id: str  # dotted, e.g. "mining.stratum"
    category: str  # "mining" | "tunnel" | "reverse_shell" | "gpu"
    severity: Severity
    description: str
    tags: tuple[str, ...]
    consumes: frozenset[Kind]


@dataclass(frozen=True, slots=True)
class Finding:
    rule: Rule
    event: Event
    summary: str
    evidence: dict[str, Any] = field(default_factory=dict)
    # Where one rule spans several severities (a SOCKS forward is medium, a local forward low: issue 13),
    # the finding's own; None takes the rule's.
    severity: Severity | None = None

    @property
    def level(self) -> Severity:
        """The severity the alert carries: the finding's own, else its rule's."""
        return self.severity or self.rule.severity


@dataclass(frozen=True, slots=True)
class State:
    """What detectors may read (never write) besides the event."""

    processes: ProcessTable
    cgroup_paths: Mapping[int, str] = field(default_factory=dict)  # cgroup id -> path, from cgroup events


class Detector(Protocol):
    rule: Rule

    def detect(self, event: Event, state: State) -> list[Finding]: ...


def index(detectors: Iterable[Detector]) -> dict[Kind, list[Detector]]:
    """Detectors by the event kinds they consume (Falco's evttype index)."""
    by_kind: dict[Kind, list[Detector]] = {kind: [] for kind in Kind}
    for detector in detectors:
        for kind in detector.rule.consumes:
            by_kind[kind].append(detector)
    return by_kind


def default_detectors(gpu_approved: Sequence[Mapping[str, Any]] = ()) -> list[Detector]:
    """Every rule; ``gpu_approved`` is the config's approved GPU workloads (gpu.unapproved: empty, off)."""
    from collector.detect.gpu.miner_process import MinerProcessDetector
    from collector.detect.gpu.unapproved import UnapprovedDetector
    from collector.detect.mining.stratum import StratumDetector
    from collector.detect.reverse_shell.relay import RelayDetector
    from collector.detect.reverse_shell.socket_stdio import SocketStdioDetector
    from collector.detect.tunnel.dns import DnsTunnelDetector
    from collector.detect.tunnel.icmp import IcmpDetector
    from collector.detect.tunnel.ssh_egress import SshEgressDetector
    from collector.detect.tunnel.ssh_forward import SshForwardDetector
    from collector.detect.tunnel.ssh_reverse import SshReverseDetector
    from collector.detect.tunnel.tool import ToolDetector
    from collector.detect.tunnel.tun_device import TunDeviceDetector

    return [
        StratumDetector(),
        SshReverseDetector(),
        SshForwardDetector(),
        ToolDetector(),
        SshEgressDetector(),
        SocketStdioDetector(),
        RelayDetector(),
        IcmpDetector(),
        TunDeviceDetector(),
        DnsTunnelDetector(),
        MinerProcessDetector(),
        UnapprovedDetector(gpu_approved),
    ]
