# SPDX-License-Identifier: Apache-2.0
"""The pipeline: events in order through state, detectors, alerts and sinks.

Live and replay share it; live runs add a LiveAnnotator in front and may
record what the annotator emits. An event that raises an alert is recorded
after detection, with what the live run looked up for the alert (the
socket's local end), so that a replay builds the same alert.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Iterable
from typing import Any, Protocol

from collector.alerts.alert import build
from collector.alerts.clock import Clock
from collector.detect import Detector, Finding, State, default_detectors, index
from collector.detect.protocols.dns import DnsError, parse
from collector.enrich.annotate import CGROUP_IDS_MAX
from collector.enrich.cache import Bounded
from collector.enrich.dns_names import DnsNames
from collector.enrich.process import ProcessTable
from collector.enrich.sockets import LocalEndLookup, Lookup
from collector.metrics import Metrics
from collector.sinks import Sink
from probes.events import CgroupEvent, ConnectEvent, DnsEvent, Event, Kind, PayloadEvent

log = logging.getLogger(__name__)


class EventLog(Protocol):
    """Where the pipeline records the events it saw (collector.source.recording.Recorder)."""

    def write(self, event: Event) -> None: ...


class Pipeline:
    def __init__(
        self,
        host: str,
        clock: Clock,
        sinks: Iterable[Sink],
        *,
        metrics: Metrics | None = None,
        detectors: Iterable[Detector] | None = None,
        recorder: EventLog | None = None,
    ) -> None:
        self.host = host
        self.clock = clock
        self.sinks = list(sinks)
        self.metrics = metrics or Metrics()
        self.recorder = recorder
        self.processes = ProcessTable()
        self.cgroup_paths: Bounded[int, str] = Bounded(CGROUP_IDS_MAX)  # as many as the annotator emits
        self.dns_names = DnsNames()  # address -> the name it answered, from the DNS answers seen
        self.annotate: Callable[[Event], list[Event]] | None = None
        self.local_end: LocalEndLookup | None = None
        self.on_alert: list[Callable[[dict[str, Any]], None]] = []
        chosen = list(detectors) if detectors is not None else default_detectors()
        self._detectors = index(chosen)
        self._state = State(self.processes, self.cgroup_paths)
        for kind in Kind:  # every series exists from the start, at 0 (Prometheus practice)
            self.metrics.events[kind.value] += 0
        for detector in chosen:
            self.metrics.alerts[detector.rule.id] += 0
        for result in Lookup:
            self.metrics.socket_lookups[result.value] += 0

    def handle(self, event: Event) -> None:
        if self.annotate is None:
            self._process(event)
            return
        for e in self.annotate(event):
            self._process(e)

    def _process(self, event: Event) -> None:
        kind = event.KIND
        self.metrics.events[kind.value] += 1
        if isinstance(event, CgroupEvent):
            self._record(event)
            self.cgroup_paths[event.cgroup_id] = event.path
            return
        self.processes.apply(event)
        if isinstance(event, DnsEvent):
            self._learn(event)
        findings: list[Finding] = []
        for detector in self._detectors[kind]:
            try:
                findings.extend(detector.detect(event, self._state))
            except Exception:
                self.metrics.detector_errors[detector.rule.id] += 1
                log.exception("detector %s failed on a %s event", detector.rule.id, kind.value)
        if findings and isinstance(event, ConnectEvent | PayloadEvent) and self.local_end and event.proto is None:
            event = self._with_local_end(event)
            findings = [dataclasses.replace(f, event=event) for f in findings]
        self._record(event)
        for finding in findings:
            self._raise(build(finding, self.host, self.clock, self.processes, self.cgroup_paths, names=self.dns_names))

    def _learn(self, event: DnsEvent) -> None:
        """Names from an answer, into the cache alerts read network.dns_name from; a message that does not
        parse, or parses only in part, is counted by the reason it stopped."""
        try:
            message = parse(event.data)
        except DnsError as exc:
            self.metrics.dns_skipped[exc.reason] += 1
            return
        if message.stopped is not None:  # cut ("truncated"), "count_lies", or a malformation after the question
            self.metrics.dns_skipped[message.stopped] += 1
        if event.direction == "answer":
            self.dns_names.learn(message, event.ktime_ns)

    def _with_local_end(self, event: ConnectEvent | PayloadEvent) -> ConnectEvent | PayloadEvent:
        assert self.local_end is not None
        try:
            found = self.local_end(event.tgid, event.fd, event.daddr, event.dport)
        except Exception:  # an enrichment must never cost the alert
            log.exception("socket lookup failed for pid %d fd %d", event.tgid, event.fd)
            found = Lookup.NOT_LISTED
        if isinstance(found, Lookup):
            self.metrics.socket_lookups[found.value] += 1
            return event
        self.metrics.socket_lookups[Lookup.FOUND.value] += 1
        return dataclasses.replace(event, proto=found.proto, saddr=found.saddr, sport=found.sport)

    def _record(self, event: Event) -> None:
        if self.recorder is None:
            return
        try:
            self.recorder.write(event)
        except (OSError, ValueError) as exc:
            self.metrics.sink_errors["record"] += 1
            if self.metrics.sink_errors["record"] == 1:
                log.error("recording: cannot write (%s); events are still processed", exc)

    def _raise(self, alert: dict[str, Any]) -> None:
        self.metrics.alerts[alert["rule"]] += 1
        for sink in self.sinks:
            try:
                sink.write(alert)
            except (OSError, ValueError) as exc:
                self.metrics.sink_errors[sink.name] += 1
                log.error("sink %s: cannot write alert %s: %s", sink.name, alert["id"], exc)
        for callback in self.on_alert:
            callback(alert)
