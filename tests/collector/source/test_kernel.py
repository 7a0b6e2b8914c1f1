# SPDX-License-Identifier: Apache-2.0
"""The kernel source driven by the Agent, with stand-in probes that deliver real record bytes from a thread."""

from __future__ import annotations

import asyncio
import ctypes as ct
import socket
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from collector.agent import Agent
from collector.config import Config
from collector.enrich.cgroups import CgroupResolver
from collector.source.kernel import KernelSource
from probes.layout import PAYLOAD_MAX, EventKind, ExitRecord, PayloadRecord, PayloadSyscall
from probes.loader import SensorStatus
from tests.collector.detect.protocols.test_stratum import XMRIG_LOGIN
from tests.collector.test_pipeline import ListSink


def _header(rec: ct.Structure, kind: EventKind, size: int, pid: int) -> None:
    h = rec.hdr  # type: ignore[attr-defined]
    h.kind, h.size, h.ktime_ns, h.pid, h.tgid, h.ppid, h.uid, h.comm = kind, size, 10**9 + pid, pid, pid, 1, 0, b"x"


def exit_record(pid: int) -> bytes:
    rec = ExitRecord()
    _header(rec, EventKind.EXIT, ct.sizeof(rec), pid)
    return bytes(rec)


def payload_record(sent: bytes, pid: int = 4242) -> bytes:
    """The record of a first send of ``sent``, captured as far as the probe captures (PAYLOAD_MAX bytes)."""
    rec = PayloadRecord()
    data = sent[:PAYLOAD_MAX]
    size = PayloadRecord.data.offset + len(data)
    _header(rec, EventKind.PAYLOAD, size, pid)
    rec.fd, rec.family, rec.dport, rec.data_len, rec.len_raw = 5, socket.AF_INET, 3333, len(data), len(sent)
    rec.syscall = PayloadSyscall.WRITE
    ct.memmove(rec.daddr, bytes([203, 0, 113, 7]), 4)
    ct.memmove(rec.data, data, len(data))
    return bytes(rec)[:size]


class FakeProbes:
    """Stands in for probes.loader.Probes: delivers the given batches from its own thread, as bcc's reader does."""

    def __init__(self, batches: list[list[bytes]], sweep: Callable[[], int] = lambda: 0) -> None:
        self.batches = batches
        self.status = [SensorStatus("exec", ["sched:sched_process_exec"])]
        self.swept = 0
        self.tracked_now = 3
        self.gpu_majors = (195,)
        self.loaded = self.closed = False
        self.sweeps = 0
        self._sweep = sweep

    @property
    def ready(self) -> bool:
        return self.loaded and not self.closed

    def load(self) -> None:
        self.loaded = True

    def start(self, deliver: Callable[[list[bytes]], None]) -> None:
        threading.Thread(target=lambda: [deliver(b) for b in self.batches], daemon=True).start()

    def lost(self) -> dict[str, int]:
        return {"exec": 0 if self.closed else 2}  # the real maps are gone after close(): read before

    def filter_counts(self) -> list[int]:
        return [0, 3, 0, 1]

    def not_tracked(self) -> int:
        return 0

    def stale(self) -> int:
        return 0

    def sweep(self) -> int:
        self.sweeps += 1
        return self._sweep()

    def close(self) -> None:
        self.closed = True


def _agent(tmp_path: Path, probes: FakeProbes, queue_size: int = 1000, **kw: Any) -> tuple[Agent, ListSink]:
    (tmp_path / "proc").mkdir(exist_ok=True)  # an empty /proc: no seed, no backfill
    source = KernelSource(
        "node-1", probes, queue_size, cgroups=CgroupResolver(None), proc=tmp_path / "proc", **kw
    )
    sink = ListSink()
    agent = Agent(Config(), [sink], source, api=False)
    agent.load()
    return agent, sink


def _run_until(agent: Agent, done: Callable[[], bool], timeout: float = 5.0) -> None:
    """Run the agent until ``done()`` holds, then stop it as SIGTERM would, and wait for its shutdown."""

    async def go() -> None:
        task = asyncio.create_task(agent.run())
        deadline = asyncio.get_running_loop().time() + timeout
        while not done() and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.01)
        agent.stop()
        await task

    asyncio.run(go())


def test_bad_records_are_counted_by_reason_and_the_rest_go_on(tmp_path: Path) -> None:
    """Malformed records are counted by reason; the records after them still raise their alert."""
    batch = [exit_record(10), b"\x01" * 10, bytes([99]) + bytes(80), payload_record(XMRIG_LOGIN)]
    agent, sink = _agent(tmp_path, FakeProbes([batch]))
    _run_until(agent, lambda: bool(sink.alerts))
    assert dict(agent.metrics.decode_errors) == {"short_record": 1, "unknown_kind": 1}
    assert (agent.metrics.events["exit"], agent.metrics.events["payload"]) == (1, 1)
    assert [a["rule"] for a in sink.alerts] == ["mining.stratum"]
    assert 'coalmine_decode_errors_total{reason="short_record"} 1' in agent.metrics.render()


def test_a_full_queue_drops_the_newest_records_and_counts_them(tmp_path: Path) -> None:
    """Past queue_size records waiting, the newest are dropped and counted; the ones queued are processed."""
    agent, _sink = _agent(tmp_path, FakeProbes([[exit_record(pid) for pid in range(10, 15)]]), queue_size=3)
    _run_until(agent, lambda: agent.metrics.events["exit"] == 3 and agent.metrics.dropped["queue_full"] == 2)
    assert agent.metrics.dropped["queue_full"] == 2 and agent.metrics.events["exit"] == 3


def test_the_sweeper_runs_on_its_interval_and_survives_a_failing_sweep(tmp_path: Path) -> None:
    """The socket sweep runs every interval; one that raises is logged and the next still runs."""
    calls = iter([RuntimeError("map gone"), 0, 0])

    def sweep() -> int:
        result = next(calls, 0)
        if isinstance(result, Exception):
            raise result
        return result

    probes = FakeProbes([], sweep=sweep)
    agent, _sink = _agent(tmp_path, probes, sweep_interval_s=0.01)
    _run_until(agent, lambda: probes.sweeps >= 3)
    assert probes.sweeps >= 3


def test_shutdown_closes_the_probes_and_every_sink_and_keeps_the_loss_counts(tmp_path: Path) -> None:
    """stop() ends the loop; the probes and sinks are closed, and what the kernel lost is still exported."""
    probes = FakeProbes([[exit_record(10)]])
    agent, sink = _agent(tmp_path, probes)
    closed: list[str] = []
    sink.close = lambda: closed.append("list")  # type: ignore[method-assign]
    _run_until(agent, lambda: agent.metrics.events["exit"] == 1)
    assert probes.closed and closed == ["list"] and not agent.ready
    assert 'coalmine_ringbuf_lost_total{kind="exec"} 2' in agent.metrics.render()


def test_the_sources_gauges_and_readiness(tmp_path: Path) -> None:
    """The kernel source exports its gauges and counters, and /readyz's sensor list, once open."""
    agent, _sink = _agent(tmp_path, FakeProbes([]))
    text = agent.metrics.render()
    assert "coalmine_socket_filter_busy_slots 2" in text and "coalmine_sockets_tracked 3" in text
    assert "coalmine_queue_records 0" in text and "coalmine_sockets_not_tracked_total 0" in text
    assert agent.sensor_status() == [{"name": "exec", "attached": ["sched:sched_process_exec"], "error": None}]
    assert not agent.ready  # not until run() has seeded the process table


def test_start_before_open_is_refused(tmp_path: Path) -> None:
    """A source must be opened (probes loaded) before it starts delivering."""
    source = KernelSource("n", FakeProbes([]), 10, cgroups=CgroupResolver(None), proc=tmp_path)

    async def go() -> None:
        source.start(Agent(Config(), [], source, api=False).pipeline.processes)

    with pytest.raises(RuntimeError, match="before open"):
        asyncio.run(go())


def test_ssh_config_files_skipped_are_exported_by_reason(tmp_path: Path) -> None:
    """Once the source runs, the live annotator's unread ssh config files are on /metrics by reason."""
    agent, _sink = _agent(tmp_path, FakeProbes([[exit_record(10)]]))
    seen: list[str] = []

    def check() -> bool:
        live = agent.pipeline.annotate
        if live is None:
            return False
        live.ssh_config.skipped["too large"] += 1  # type: ignore[attr-defined]  # as sshconf.py counts it
        seen.append(agent.metrics.render())
        return True

    _run_until(agent, check)
    assert 'coalmine_ssh_config_skipped_total{reason="too_large"} 1' in seen[-1]
    assert "# TYPE coalmine_ssh_config_skipped_total counter" in seen[-1]
