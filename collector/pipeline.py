# SPDX-License-Identifier: Apache-2.0
"""The pipeline: events in order through state, detectors, alerts and sinks.

Live and replay share it; live runs add a LiveAnnotator in front and may
record what the annotator emits.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import Any

from collector.alerts import Clock, build
from collector.detectors import Detector, State, default_detectors, index
from collector.events import CgroupEvent, Event, Kind
from collector.metrics import Metrics
from collector.process import ProcessTable
from collector.recording import Recorder
from collector.sinks import Sink

log = logging.getLogger(__name__)


class Pipeline:
    def __init__(
        self,
        host: str,
        clock: Clock,
        sinks: Iterable[Sink],
        *,
        metrics: Metrics | None = None,
        detectors: Iterable[Detector] | None = None,
        recorder: Recorder | None = None,
    ) -> None:
        self.host = host
        self.clock = clock
        self.sinks = list(sinks)
        self.metrics = metrics or Metrics()
        self.recorder = recorder
        self.processes = ProcessTable()
        self.cgroup_paths: dict[int, str] = {}
        self.annotate: Callable[[Event], list[Event]] | None = None
        self.on_alert: list[Callable[[dict[str, Any]], None]] = []
        chosen = list(detectors) if detectors is not None else default_detectors()
        self._detectors = index(chosen)
        self._state = State(self.processes)
        for kind in Kind:  # every series exists from the start, at 0 (Prometheus practice)
            self.metrics.events[kind.value] += 0
        for detector in chosen:
            self.metrics.alerts[detector.rule.id] += 0

    def handle(self, event: Event) -> None:
        if self.annotate is None:
            self._process(event)
            return
        for e in self.annotate(event):
            self._process(e)

    def _process(self, event: Event) -> None:
        kind = event.KIND
        self.metrics.events[kind.value] += 1
        if self.recorder is not None:
            try:
                self.recorder.write(event)
            except (OSError, ValueError) as exc:
                self.metrics.sink_errors["record"] += 1
                if self.metrics.sink_errors["record"] == 1:
                    log.error("recording: cannot write (%s); events are still processed", exc)
        if isinstance(event, CgroupEvent):
            self.cgroup_paths[event.cgroup_id] = event.path
            return
        self.processes.apply(event)
        for detector in self._detectors[kind]:
            try:
                findings = detector.detect(event, self._state)
            except Exception:
                self.metrics.detector_errors[detector.rule.id] += 1
                log.exception("detector %s failed on a %s event", detector.rule.id, kind.value)
                continue
            for finding in findings:
                self._raise(build(finding, self.host, self.clock, self.processes, self.cgroup_paths))

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
