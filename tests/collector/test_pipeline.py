# SPDX-License-Identifier: Apache-2.0
"""Events through the pipeline to alerts that follow DESIGN.md's schema exactly."""

from __future__ import annotations

import dataclasses
import json
import re
from typing import Any

import pytest

from collector.alerts.clock import Clock
from collector.detect import Finding, Rule, Severity, State
from collector.enrich.sockets import LocalEnd, Lookup
from collector.pipeline import Pipeline
from probes.events import Event, Kind
from tests.collector.detect.protocols.test_stratum import XMRIG_LOGIN
from tests.factories import cgroup_event, exec_event, payload_event, proc_event

CID = "3f1b2c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4c5d6e7f809"
CLOCK = Clock("boot-1", 1_700_000_000 * 10**9)


class ListSink:
    name = "list"

    def __init__(self) -> None:
        self.alerts: list[dict[str, Any]] = []

    def write(self, alert: dict[str, Any]) -> None:
        self.alerts.append(json.loads(json.dumps(alert)))

    def close(self) -> None:
        pass


def _run(events: list[Event], **kw: Any) -> tuple[Pipeline, ListSink]:
    sink = ListSink()
    pipeline = Pipeline("gpu-node-7", CLOCK, [sink], **kw)
    for event in events:
        pipeline.handle(event)
    return pipeline, sink


CONTAINER_TREE = [
    cgroup_event(1, "/"),
    cgroup_event(
        9, f"/kubepods.slice/kubepods-pod0a1b2c3d_4e5f_6a7b_8c9d_0e1f2a3b4c5d.slice/cri-containerd-{CID}.scope"
    ),
    proc_event(1, 0, ("/sbin/init",), "/sbin/init", cgroup_id=1),
    proc_event(50, 1, ("containerd-shim-runc-v2", "-id", CID[:12]), "/usr/bin/containerd-shim-runc-v2", cgroup_id=1),
    proc_event(60, 50, ("python", "train.py"), "/usr/bin/python3.11", cgroup_id=9),
    proc_event(70, 60, ("sh", "-c", "./x &"), "/bin/dash", cgroup_id=9),
    exec_event(["./x", "-o", "pool.example:3333"], exe="/tmp/x", pid=80, ppid=70, cgroup_id=9, comm="x"),
    payload_event(XMRIG_LOGIN, pid=80, ppid=1, cgroup_id=9, comm="x", ktime_ns=5_000_000_123),
]


def test_alert_schema() -> None:
    """An alert has exactly the contract's keys, types and values."""
    _, sink = _run(CONTAINER_TREE)
    (alert,) = sink.alerts
    assert list(alert) == [
        "kind",
        "id",
        "time",
        "host",
        "rule",
        "category",
        "severity",
        "summary",
        "process",
        "ancestors",
        "k8s",
        "job",
        "network",
        "gpu",
        "evidence",
        "action",
        "tags",
    ]
    assert alert["kind"] == "alert" and alert["host"] == "gpu-node-7"
    assert alert["time"] == "2023-11-14T22:13:25.000000123Z"
    assert re.fullmatch(r"[0-9a-f-]{36}", alert["id"])
    assert (alert["rule"], alert["category"], alert["severity"]) == ("mining.stratum", "mining", "critical")
    assert alert["process"] == {
        "pid": 80,
        "ppid": 70,
        "uid": 1000,
        "comm": "x",
        "exe": "/tmp/x",
        "args": ["./x", "-o", "pool.example:3333"],
        "cgroup": CONTAINER_TREE[1].path,  # type: ignore[attr-defined]
        "container_id": CID,
    }
    assert set(alert["network"]) == {"proto", "saddr", "sport", "daddr", "dport", "sni", "dns_name"}
    assert alert["network"]["dport"] == 3333 and alert["action"] == {"taken": "none"}
    assert alert["evidence"]["signature"] == "cryptonote:login" and "XMRig" in alert["evidence"]["agent"]


def test_lineage_is_taken_at_exec_and_stops_at_the_container_init() -> None:
    """The reparented miner (ppid 1 now) still names the shell that launched it; lineage ends inside the container."""
    _, sink = _run(CONTAINER_TREE)
    assert [a["pid"] for a in sink.alerts[0]["ancestors"]] == [70, 60]
    assert sink.alerts[0]["ancestors"][0]["args"] == ["sh", "-c", "./x &"]


def test_host_lineage_runs_to_init_and_slurm_job_is_named() -> None:
    """Outside containers lineage reaches pid 1; a Slurm cgroup names the job."""
    events = [
        cgroup_event(3, "/system.slice/slurmstepd.scope/job_1392969/step_0/user/task_0"),
        proc_event(1, 0, ("/sbin/init",), cgroup_id=1),
        proc_event(10, 1, ("slurmstepd",), cgroup_id=1),
        exec_event(
            ["ssh", "-fNR", "2222:localhost:22", "a@203.0.113.9"], exe="/usr/bin/ssh", pid=11, ppid=10, cgroup_id=3
        ),
    ]
    _, sink = _run(events)
    (alert,) = sink.alerts
    assert alert["rule"] == "tunnel.ssh_reverse" and alert["network"] is None
    assert [a["pid"] for a in alert["ancestors"]] == [10, 1]
    assert alert["job"] == {"scheduler": "slurm", "id": "1392969"}
    assert alert["process"]["container_id"] is None


def test_unknown_process_still_alerts() -> None:
    """A payload from a process the table never saw alerts with what the event carries."""
    _, sink = _run([payload_event(XMRIG_LOGIN, pid=999, comm="kworker")])
    (alert,) = sink.alerts
    assert alert["process"]["pid"] == 999 and alert["process"]["exe"] is None and alert["ancestors"] == []


def test_alert_ids_are_reproducible() -> None:
    """The same events give the same alert ids (a replay does not duplicate alerts in a SIEM)."""
    assert _run(CONTAINER_TREE)[1].alerts == _run(CONTAINER_TREE)[1].alerts


def test_alert_ids_differ_by_boot_time_process_and_rule() -> None:
    """Alerts that differ in boot, kernel time, process or rule get distinct ids."""
    login = CONTAINER_TREE[-1]
    ssh = ["ssh", "-R", "1:l:1", "h"]
    events = [
        login,
        dataclasses.replace(login, ktime_ns=login.ktime_ns + 1),
        dataclasses.replace(login, pid=81, tgid=81),
        exec_event(ssh, exe="/usr/bin/ssh", pid=80, ktime_ns=login.ktime_ns),  # same pid and time, other rule
    ]
    ids = [a["id"] for a in _run(events)[1].alerts]
    sink = ListSink()
    other_boot = Pipeline("gpu-node-7", Clock("boot-2", CLOCK.realtime_offset_ns), [sink])
    other_boot.handle(login)
    ids.append(sink.alerts[0]["id"])
    assert len(ids) == 5 and len(set(ids)) == 5


class Broken:
    rule = Rule(
        "test.broken",
        "test",
        Severity.LOW,
        "always raises; no false positives; no bypass",
        ("maturity_sandbox", "T0000"),
        frozenset({Kind.EXEC}),
    )

    def detect(self, event: Event, state: State) -> list[Finding]:
        raise RuntimeError("bug")


class FailingSink(ListSink):
    name = "failing"

    def write(self, alert: dict[str, Any]) -> None:
        raise OSError(28, "No space left on device")


def test_a_failing_detector_or_sink_is_counted_not_fatal() -> None:
    """One detector's bug and one sink's write error are counted; other sinks still get the alert."""
    from collector.detect import default_detectors

    good = ListSink()
    pipeline = Pipeline("n", CLOCK, [FailingSink(), good], detectors=[Broken(), *default_detectors()])
    pipeline.handle(exec_event(["ssh", "-R", "1:l:1", "h"], exe="/usr/bin/ssh"))
    assert pipeline.metrics.detector_errors["test.broken"] == 1
    assert pipeline.metrics.sink_errors["failing"] == 1
    assert len(good.alerts) == 1 and pipeline.metrics.alerts["tunnel.ssh_reverse"] == 1


class FullDisk:
    def write(self, event: Event) -> None:
        raise OSError(28, "No space left on device")


def test_a_failing_recording_is_counted_and_detection_goes_on() -> None:
    """A recording that cannot be written is counted; alerts are still raised."""
    pipeline, sink = _run(CONTAINER_TREE, recorder=FullDisk())
    assert pipeline.metrics.sink_errors["record"] == len(CONTAINER_TREE)
    assert len(sink.alerts) == 1


class Recording:
    def __init__(self) -> None:
        self.events: list[Event] = []

    def write(self, event: Event) -> None:
        self.events.append(event)


def test_an_alert_names_the_sockets_local_end_and_a_replay_does_too() -> None:
    """A live run looks the local end up for the alerting event only and records it; a replay matches."""
    # The replay has no lookup: the local end comes from the recording, so the alert is the same.
    asked: list[tuple[int, int, str, int]] = []

    def lookup(tgid: int, fd: int, daddr: str, dport: int) -> LocalEnd | Lookup:
        asked.append((tgid, fd, daddr, dport))
        return LocalEnd("tcp", "10.0.0.5", 40112)

    quiet = payload_event(b"GET / HTTP/1.1\r\n\r\n", pid=81, dport=80)
    recording = Recording()
    sink = ListSink()
    live = Pipeline("gpu-node-7", CLOCK, [sink], recorder=recording)  # type: ignore[arg-type]
    live.local_end = lookup
    for event in [*CONTAINER_TREE, quiet]:
        live.handle(event)
    assert asked == [(80, 5, "203.0.113.7", 3333)]  # not for the quiet HTTP payload
    (alert,) = sink.alerts
    assert alert["network"] == {
        "proto": "tcp",
        "saddr": "10.0.0.5",
        "sport": 40112,
        "daddr": "203.0.113.7",
        "dport": 3333,
        "sni": None,
        "dns_name": None,
    }
    assert [type(e) for e in recording.events] == [type(e) for e in [*CONTAINER_TREE, quiet]]
    assert recording.events[-2].sport == 40112 and recording.events[-1] == quiet  # type: ignore[attr-defined]
    assert live.metrics.socket_lookups == {"found": 1, "closed": 0, "not_listed": 0, "reused": 0}
    _, replayed = _run(recording.events)
    assert replayed.alerts == sink.alerts


@pytest.mark.parametrize("result", [Lookup.CLOSED, Lookup.REUSED, RuntimeError("bug")])
def test_a_failed_socket_lookup_is_counted_and_the_alert_still_goes(result: Lookup | Exception) -> None:
    """A lookup that finds no socket, or raises, is counted by result; the alert goes with a null local end."""
    def lookup(tgid: int, fd: int, daddr: str, dport: int) -> LocalEnd | Lookup:
        if isinstance(result, Exception):
            raise result
        return result

    sink = ListSink()
    live = Pipeline("n", CLOCK, [sink])
    live.local_end = lookup
    for event in CONTAINER_TREE:
        live.handle(event)
    (alert,) = sink.alerts
    assert (alert["network"]["proto"], alert["network"]["saddr"], alert["network"]["sport"]) == (None, None, None)
    assert alert["network"]["dport"] == 3333
    counted = "not_listed" if isinstance(result, Exception) else result.value
    assert live.metrics.socket_lookups[counted] == 1
    assert f'coalmine_socket_lookups_total{{result="{counted}"}} 1' in live.metrics.render()
