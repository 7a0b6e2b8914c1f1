# SPDX-License-Identifier: Apache-2.0
"""Compile, attach and read the sensors with bcc.

common.bpf.c owns the ring buffer and is compiled first; each sensor then
compiles on its own and attaches hook by hook, so a failure names the sensor
and the tracepoint. One thread (probes/reader.py) polls the ring buffer and
hands copied records, in batches, to a callback (the agent's event loop).
"""

from __future__ import annotations

import ctypes as ct
import logging
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

from probes import PROBES_DIR, gpu, tracefs
from probes.cflags import cflags
from probes.clock import JiffyClock
from probes.errors import ProbeError
from probes.layout import EventKind
from probes.memory import release_compiler_memory
from probes.reader import RingReader
from probes.sensors import SENSORS, Sensor, present_optional
from probes.testrun import ProgramRunner
from probes.tracked import TRACKED_BUSY, TRACKED_MAX

log = logging.getLogger(__name__)

POLL_INTERVAL_MS = 10  # how often the reader drains the ring buffer (only a ring half full wakes it sooner)
SWEEP_INTERVAL_S = 5.0  # how often the agent forgets tracked sockets of exited processes (Probes.sweep)


@dataclass(slots=True)
class SensorStatus:
    name: str
    attached: list[str] = field(default_factory=list)
    error: str | None = None


def pid_alive(tgid: int) -> bool:
    """Whether a process exists (a zombie counts: its fds are gone, but its pid is not free yet)."""
    return os.path.exists(f"/proc/{tgid}")


def _per_cpu_total(bpf: Any, counter: bytes) -> int:
    """A one-slot per-CPU counter of a loaded sensor, summed over CPUs; 0 before the sensor loads."""
    return 0 if bpf is None else sum(int(v) for v in bpf[counter][ct.c_uint32(0)])


class Probes:
    """The loaded sensors and the ring-buffer reader thread."""

    _loaded: ClassVar[bool] = False  # load() ran in this process

    def __init__(
        self,
        ringbuf_pages: int = 1024,
        tracked_max: int = TRACKED_MAX,
        gpu_prefixes: Sequence[str] = gpu.DEFAULT_PREFIXES,
        gpu_majors: Sequence[int] = gpu.DEFAULT_MAJORS,
    ) -> None:
        self.ringbuf_pages = ringbuf_pages
        self.tracked_max = tracked_max
        self.gpu_prefixes = tuple(gpu_prefixes)
        self.gpu_majors = tuple(gpu_majors)
        self.swept = 0  # tracked sockets forgotten because their process exited without close()
        self.tracked_now = 0  # tracked sockets awaiting their first payload, at the last sweep
        self._connect: Any = None
        self._payload: Any = None
        self._forget: ProgramRunner | None = None
        self.status: list[SensorStatus] = []
        self._bpf: list[Any] = []
        self._modules: dict[str, Any] = {}  # source file -> its compiled module
        self._hooks: list[tuple[Any, str, str]] = []  # (bpf, tracepoint, function) attached
        self._attached = False
        self._common: Any = None
        self.clock: JiffyClock | None = None  # set by load()
        self._reader: RingReader | None = None

    @property
    def ready(self) -> bool:
        return bool(self.status) and all(s.error is None for s in self.status)

    def load(self) -> None:
        """Compile and attach every sensor; ProbeError names the first that failed."""
        if Probes._loaded:  # bcc keeps exported maps (the ring buffer, `tracked`) by name for the process's life
            raise ProbeError("the probes load once per process: start a new process to load them again")
        try:
            from bcc import BPF
        except ImportError as exc:
            raise ProbeError(f"bcc is not importable ({exc}): install python3-bpfcc") from exc
        try:
            tracefs.ensure()
        except OSError as exc:
            raise ProbeError(str(exc.args[-1])) from exc
        flags = cflags(self.ringbuf_pages, self.tracked_max, self.gpu_prefixes, self.gpu_majors)
        Probes._loaded = True
        release_compiler_memory()  # what loading bcc touched: the first compile reads back only what it runs
        try:
            self._common = BPF(src_file=bytes(PROBES_DIR / "common.bpf.c"), cflags=flags)
        except Exception as exc:
            raise ProbeError(f"common.bpf.c: cannot compile the shared maps: {exc}") from exc
        finally:
            release_compiler_memory()
        self._bpf.append(self._common)
        flags.append(f"-DEVENTS_MAP_FD={self._common[b'events'].map_fd}")  # ringbuf.bpf.h submit_flags()
        try:
            sample_clocks = ProgramRunner(self._common.load_func(b"sample_clocks", BPF.SOCKET_FILTER).fd)
            first_edge = self._tick_edge(sample_clocks)
        except Exception as exc:
            self.close()
            raise ProbeError(f"common.bpf.c: cannot pair jiffies with CLOCK_MONOTONIC: {exc}") from exc
        for sensor in SENSORS:
            status = SensorStatus(sensor.name)
            self.status.append(status)
            self._load_sensor(BPF, sensor, flags, status)
            if status.error:
                break
        failed = next((s for s in self.status if s.error), None)
        if failed:
            self.close()
            raise ProbeError(f"sensor {failed.name}: {failed.error}")
        time.sleep(max(0.0, 0.5 - (time.monotonic_ns() - first_edge[1]) / 1e9))  # HZ from edges >= 0.5 s apart
        self.clock = JiffyClock.from_edges(first_edge, self._tick_edge(sample_clocks))
        self._attached = True

    def _load_sensor(self, BPF: Any, sensor: Sensor, flags: list[str], status: SensorStatus) -> None:
        """Compile one sensor's source (once: sensors that share a source share its module) and attach its
        hooks; a failure goes in ``status.error``."""
        bpf = self._modules.get(sensor.source)
        if bpf is None:
            try:
                bpf = BPF(src_file=bytes(PROBES_DIR / sensor.source), cflags=flags)
            except Exception as exc:
                status.error = f"{sensor.source}: compile or load failed: {exc}"
                return
            finally:
                release_compiler_memory()  # each compile's peak, not their sum
            self._bpf.append(bpf)
            self._modules[sensor.source] = bpf
        for tp, fn in sensor.hooks + present_optional(sensor):
            try:
                bpf.attach_tracepoint(tp=tp.encode(), fn_name=fn.encode())
            except Exception as exc:
                status.error = f"{tp} ({fn}): attach failed: {exc}"
                return
            status.attached.append(tp)
            self._hooks.append((bpf, tp, fn))
        if sensor.name == "connect":
            try:
                self._forget = ProgramRunner(bpf.load_func(b"forget_socket", BPF.SOCKET_FILTER).fd)
            except Exception as exc:
                status.error = f"{sensor.source}: cannot load the socket sweep (forget_socket): {exc}"
                return
            self._connect = bpf
        if sensor.name == "payload":
            self._payload = bpf

    def _tick_edge(self, sample_clocks: ProgramRunner) -> tuple[int, int]:
        """(jiffies, CLOCK_MONOTONIC ns) sampled just after a timer tick: runs ``sample_clocks`` (common.bpf.c)
        until jiffies change."""
        pair = self._common[b"clock_pair"]

        def sample() -> tuple[int, int]:
            sample_clocks()
            return int(pair[ct.c_int(0)].value), int(pair[ct.c_int(1)].value)

        before, _ = sample()
        deadline = time.monotonic() + 1.0
        while time.monotonic() < deadline:
            jiffies, ns = sample()
            if jiffies != before:
                return jiffies, ns
        raise ProbeError("jiffies did not advance in 1 s")

    def start(self, deliver: Callable[[list[bytes]], None], interval_ms: int = POLL_INTERVAL_MS) -> None:
        """Drain the ring buffer in a thread every ``interval_ms``, or as soon as the ring is half full;
        ``deliver`` gets each batch, copied."""
        if self.clock is None:
            raise ProbeError("start() needs the probes loaded: call load() first")
        self._reader = RingReader(self._common, self.clock, deliver, interval_ms)
        self._reader.start()

    def set_attached(self, on: bool) -> None:
        """Detach every hook, or attach them again: loaded programs and maps stay (for benchmarks)."""
        if on == self._attached:
            return
        for bpf, tp, fn in self._hooks:
            if on:
                bpf.attach_tracepoint(tp=tp.encode(), fn_name=fn.encode())
            else:
                bpf.detach_tracepoint(tp=tp.encode())
        self._attached = on

    def program_fds(self) -> dict[str, int]:
        """fd of each loaded BPF program, by function name (for run-time statistics)."""
        return {fn.name.decode(): fn.fd for bpf in self._bpf for fn in bpf.funcs.values()}

    def lost(self) -> dict[str, int]:
        """Records the kernel could not put in the full ring buffer, by kind."""
        if self._common is None:
            return {}
        table = self._common[b"lost"]
        counts: dict[str, int] = {}
        for kind in EventKind:
            values = table[ct.c_uint32(kind.value)]
            counts[kind.name.lower()] = sum(int(v) for v in values)
        return counts

    def filter_counts(self) -> list[int]:
        """The tracked-socket filter's counters (tracked.bpf.h); [] before the connect sensor loads."""
        for bpf in self._bpf:
            try:
                table = bpf[b"tracked_filter"]
            except KeyError:
                continue
            return [int(n) for n in table[ct.c_uint32(0)].count]
        return []

    def sweep(self, alive: Callable[[int], bool] = pid_alive) -> int:
        """Forget the tracked sockets of processes that exited without close() (the kernel closed their fds:
        no probe saw it), uncounting them in the filter; returns how many. The agent calls this every
        SWEEP_INTERVAL_S; without it they would stay until the table is full."""
        if self._connect is None or self._forget is None:
            return 0
        keys = self.tracked_keys()
        request = self._connect[b"sweep_key"]
        gone = 0
        for key in keys:
            if alive(key >> 32):
                continue
            request[ct.c_uint32(0)] = ct.c_uint64(key)
            gone += self._forget()
        self.swept += gone
        self.tracked_now = len(keys) - gone
        return gone

    def tracked_keys(self) -> list[int]:
        """Keys (tgid << 32 | fd) of the sockets awaiting their first payload."""
        if self._connect is None:
            return []
        return [int(k) & ~TRACKED_BUSY for ways in self._connect[b"tracked"].values() for k in ways.key if k]

    def not_tracked(self) -> int:
        """Connections reported but not tracked for their first payload: the tracked-socket table was full
        (or, for a copy made by dup()/fcntl(F_DUPFD), no memory to hold it until the call returned)."""
        return _per_cpu_total(self._connect, b"tracked_full")

    def stale(self) -> int:
        """Tracked fds that held no socket at their first send (an exec closed it): not reported as payloads."""
        return _per_cpu_total(self._payload, b"tracked_stale")

    def close(self) -> None:
        if self._reader is not None:
            self._reader.stop()
        for bpf in reversed(self._bpf):
            try:
                bpf.cleanup()
            except Exception as exc:  # cleanup is best effort: the process is leaving
                log.debug("bcc cleanup: %s", exc)
        self._bpf.clear()
        self._modules.clear()
        self._hooks.clear()
        self._common = None
        self._connect = None
        self._payload = None
        self._forget = None
