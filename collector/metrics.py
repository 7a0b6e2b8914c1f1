# SPDX-License-Identifier: Apache-2.0
"""Counters the agent exports on /metrics, in the Prometheus text format."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping

PREFIX = "coalmine"


class Metrics:
    def __init__(self) -> None:
        self.events: Counter[str] = Counter()  # by kind
        self.alerts: Counter[str] = Counter()  # by rule
        self.decode_errors: Counter[str] = Counter()  # by reason
        self.dropped: Counter[str] = Counter()  # records dropped in user space, by reason
        self.sink_errors: Counter[str] = Counter()  # by sink
        self.detector_errors: Counter[str] = Counter()  # by rule
        self.socket_lookups: Counter[str] = Counter()  # local ends looked up for alerts, by result
        self.dns_skipped: Counter[str] = Counter()  # DNS messages that did not parse, by reason
        self.kernel_lost: Callable[[], Mapping[str, int]] = dict  # ring-buffer records lost, by kind
        self.gauges: dict[str, Callable[[], float]] = {}
        self.counters: dict[str, tuple[str, Callable[[], float]]] = {}  # name -> (help, read), kept elsewhere
        # Labelled counters kept elsewhere: name -> (help, label, read), e.g. ssh config files skipped by reason.
        self.families: dict[str, tuple[str, str, Callable[[], Mapping[str, float]]]] = {}
        # Gauges under their own names, with labels (the DCGM exporter's GPU gauges): name -> (help, series)
        self.named_gauges: Callable[[], Mapping[str, tuple[str, list[tuple[dict[str, str], float]]]]] = dict

    def render(self) -> str:
        out: list[str] = []

        def family(name: str, kind: str, help_: str, label: str, values: Mapping[str, float]) -> None:
            out.append(f"# HELP {PREFIX}_{name} {help_}")
            out.append(f"# TYPE {PREFIX}_{name} {kind}")
            for key, value in sorted(values.items()):
                out.append(f'{PREFIX}_{name}{{{label}="{_escape(key)}"}} {value}')

        family("events_total", "counter", "Events processed, by kind.", "kind", self.events)
        family("alerts_total", "counter", "Alerts raised, by rule.", "rule", self.alerts)
        lost = self.kernel_lost()
        family("ringbuf_lost_total", "counter", "Records the kernel dropped: ring buffer full.", "kind", lost)
        family("dropped_total", "counter", "Records dropped in the agent, by reason.", "reason", self.dropped)
        family("decode_errors_total", "counter", "Kernel records that failed to decode.", "reason", self.decode_errors)
        family("sink_errors_total", "counter", "Alert writes that failed, by sink.", "sink", self.sink_errors)
        family("detector_errors_total", "counter", "Detector exceptions, by rule.", "rule", self.detector_errors)
        family(
            "socket_lookups_total",
            "counter",
            "Local ends of sockets looked up in /proc for alerts, by result (closed: the socket was gone).",
            "result",
            self.socket_lookups,
        )
        family(
            "dns_skipped_total",
            "counter",
            "DNS messages the kernel captured that did not parse (or parsed only in part), by reason.",
            "reason",
            self.dns_skipped,
        )
        for name, (help_, label, read_family) in sorted(self.families.items()):
            family(name, "counter", help_, label, read_family())
        for name, (help_, read_counter) in sorted(self.counters.items()):
            out.append(f"# HELP {PREFIX}_{name} {help_}")
            out.append(f"# TYPE {PREFIX}_{name} counter")
            out.append(f"{PREFIX}_{name} {read_counter()}")
        for name, read in sorted(self.gauges.items()):
            out.append(f"# TYPE {PREFIX}_{name} gauge")
            out.append(f"{PREFIX}_{name} {read()}")
        for name, (help_, series) in sorted(self.named_gauges().items()):
            out.append(f"# HELP {name} {help_}")
            out.append(f"# TYPE {name} gauge")
            for labels, value in series:
                text = ",".join(f'{k}="{_escape(v)}"' for k, v in labels.items())
                out.append(f"{name}{{{text}}} {value}")
        return "\n".join(out) + "\n"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
