# SPDX-License-Identifier: Apache-2.0
"""Events through the pipeline to alerts that follow DESIGN.md's schema exactly."""

from __future__ import annotations

import json
import struct
from typing import Any

import pytest

from collector.alerts.clock import Clock
from collector.detect import Finding, Rule, Severity, State
from collector.enrich.sockets import LocalEnd, Lookup
from collector.pipeline import Pipeline
from probes.events import DnsEvent, Event, Kind
from tests.collector.detect.protocols.test_stratum import XMRIG_LOGIN
from tests.factories import cgroup_event, common, exec_event, payload_event, proc_event

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


def _dns_event(data: bytes, direction: str = "answer", **kw: Any) -> DnsEvent:
    return DnsEvent(
        **common(**kw), fd=4, direction=direction, proto="udp", family="ipv4", server="10.96.0.10", port=53,
        syscall="recvfrom", len_raw=len(data), data=data,
    )  # fmt: skip


# pool.example.test A -> 203.0.113.7, TTL 300: a resolver's answer (RFC 1035 4.1; the answer's name a pointer to 12)
POOL_ANSWER = (
    struct.pack("!6H", 0x1234, 0x8180, 1, 1, 0, 0)
    + b"\x04pool\x07example\x04test\x00\x00\x01\x00\x01"
    + b"\xc0\x0c\x00\x01\x00\x01" + struct.pack("!IH", 300, 4) + bytes([203, 0, 113, 7])
)  # fmt: skip


def test_connections_carry_the_name_their_address_was_looked_up_by() -> None:
    """After an answer for pool.example.test, an alert on a connection to its address names it in dns_name;
    a DNS message that does not parse is counted by reason."""
    pipeline, sink = _run(
        [
            exec_event(["./miner"], exe="/tmp/miner"),
            _dns_event(POOL_ANSWER),
            _dns_event(b"\x12\x34", direction="query"),
            payload_event(XMRIG_LOGIN, daddr="203.0.113.7", ktime_ns=2_000_000_000),
            payload_event(XMRIG_LOGIN, daddr="203.0.113.8", ktime_ns=3_000_000_000, pid=4343),
        ]
    )
    assert [a["network"]["dns_name"] for a in sink.alerts] == ["pool.example.test", None]
    assert pipeline.metrics.dns_skipped == {"short_header": 1}


def test_a_message_parsed_only_in_part_counts_the_reason_it_stopped() -> None:
    """An answer cut inside its record still teaches nothing wrong and counts as truncated."""
    pipeline, _sink = _run([_dns_event(POOL_ANSWER[:-2])])
    assert pipeline.metrics.dns_skipped == {"truncated": 1}
