# SPDX-License-Identifier: Apache-2.0
"""The live source: the kernel's records from bcc's ring buffer, decoded, with what /proc adds.

bcc's blocking poll runs in the probes' reader thread, which hands copied
records in batches to a bounded queue on the event loop (RecordQueue: the
newest are dropped and counted when it is full). Records are decoded here; a
malformed one is counted by reason and the rest go on (Tetragon's
HandlePerfData). Records the kernel could not queue are counted there
(``coalmine_ringbuf_lost_total``).
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Protocol

from collector.alerts.clock import Clock
from collector.enrich import sockets
from collector.enrich.annotate import LiveAnnotator
from collector.enrich.cgroups import CgroupResolver, find_cgroup2_mount
from collector.enrich.process import ProcessTable
from collector.metrics import Metrics
from collector.source import Live, Origin
from collector.source.nvml import GpuSampler, PyNvml, dcgm_series
from collector.source.queue import RecordQueue
from probes.decode import decode
from probes.errors import DecodeError
from probes.events import Event
from probes.loader import SWEEP_INTERVAL_S, SensorStatus

log = logging.getLogger("coalmine")


class Sensors(Protocol):
    """What the kernel source needs of the loaded probes (probes.loader.Probes; tests stand in a fake)."""

    status: list[SensorStatus]
    swept: int
    tracked_now: int
    gpu_majors: tuple[int, ...]  # what the GPU sensor takes for a GPU's device major (the annotator checks paths)

    @property
    def ready(self) -> bool: ...

    def load(self) -> None: ...

    def start(self, deliver: Callable[[list[bytes]], None]) -> None: ...

    def lost(self) -> Mapping[str, int]: ...

    def filter_counts(self) -> list[int]: ...

    def not_tracked(self) -> int: ...

    def stale(self) -> int: ...

    def sweep(self) -> int: ...

    def close(self) -> None: ...


def boot_id(path: Path = Path("/proc/sys/kernel/random/boot_id")) -> str:
    try:
        return path.read_text().strip()
    except OSError:
        return "unknown"


def decode_batch(records: list[bytes], errors: Counter[str]) -> list[Event]:
    """The records that decode, in order; each one that does not is counted in ``errors[reason]``."""
    events: list[Event] = []
    for raw in records:
        try:
            events.append(decode(raw))
        except DecodeError as exc:
            errors[exc.reason] += 1
    return events


GPU_INTERVAL_S = 1.0  # NVML sampling (issue 14: every second by default)


class KernelSource:
    name = "kernel"

    def __init__(
        self,
        host: str,
        probes: Sensors,
        queue_size: int,
        *,
        cgroups: CgroupResolver | None = None,
        proc: Path = Path("/proc"),
        sweep_interval_s: float = SWEEP_INTERVAL_S,
        gpus: GpuSampler | None = None,
        gpu_interval_s: float = GPU_INTERVAL_S,
    ) -> None:
        self.probes = probes
        self._origin = Origin(host, Clock.now(boot_id()))
        self._queue_size = queue_size
        self._cgroups = cgroups
        self._proc = proc
        self._sweep_interval_s = sweep_interval_s
        self._metrics = Metrics()
        self._queue: RecordQueue | None = None
        self.gpus = gpus if gpus is not None else GpuSampler(PyNvml)
        self._gpu_interval_s = gpu_interval_s

    @property
    def origin(self) -> Origin:
        return self._origin

    @property
    def ready(self) -> bool:
        return self.probes.ready

    def open(self, metrics: Metrics) -> None:
        """Compile and attach the probes (ProbeError names the sensor that failed); count on ``metrics``."""
        self._metrics = metrics
        self._queue = queue = RecordQueue(self._queue_size, metrics)
        probes = self.probes
        metrics.gauges["queue_records"] = lambda: len(queue)
        metrics.kernel_lost = probes.lost
        # Nonzero counters in the kernel's hot-path filter (probes/tracked.bpf.h): near FILTER_SLOTS, close()
        # and write() fall through to the table more often (slots shared, or left high by dead processes).
        metrics.gauges["socket_filter_busy_slots"] = lambda: sum(1 for n in probes.filter_counts() if n)
        metrics.gauges["sockets_tracked"] = lambda: probes.tracked_now
        metrics.counters["sockets_not_tracked_total"] = (
            "Connections (or fd copies of them) whose first payload goes unseen: the tracked-socket table was full.",
            probes.not_tracked,
        )
        metrics.counters["sockets_stale_total"] = (
            "Tracked fds that held no socket at their first send (closed by an exec): not taken for payloads.",
            probes.stale,
        )
        gpus, host = self.gpus, self._origin.host
        metrics.gauges["nvml_up"] = lambda: 1.0 if gpus.up else 0.0
        metrics.families["nvml_errors_total"] = ("NVML calls that failed, by NVML error.", "reason", gpus.errors.copy)
        metrics.named_gauges = lambda: dcgm_series(gpus.latest, host)
        metrics.counters["sockets_swept_total"] = (
            "Tracked sockets forgotten because their process exited without close().",
            lambda: probes.swept,
        )
        probes.load()

    def start(self, processes: ProcessTable) -> Live:
        """Start the reader thread; the /proc seed and the lookups for the pipeline."""
        queue = self._queue
        if queue is None:
            raise RuntimeError("KernelSource.start() before open()")
        loop = asyncio.get_running_loop()

        def deliver(batch: list[bytes]) -> None:  # runs in the reader thread
            loop.call_soon_threadsafe(queue.put_batch, batch)

        self.probes.start(deliver)
        cgroups = self._cgroups or CgroupResolver(find_cgroup2_mount())
        annotator = LiveAnnotator(processes, cgroups, self._proc, gpu_majors=self.probes.gpu_majors)
        self._metrics.families["ssh_config_skipped_total"] = (
            "ssh config files (or lines) an SSH client's exec could not have read for it, by reason.",
            "reason",
            lambda: {reason.replace(" ", "_"): n for reason, n in annotator.ssh_config.skipped.items()},
        )
        self._metrics.families["relay_skipped_total"] = (
            "Shell stdio or helper fds that could not be read from /proc to look for a relayed shell, by reason.",
            "reason",
            lambda: dict(annotator.relay.skipped),
        )
        proc = self._proc

        def local_end(tgid: int, fd: int, daddr: str, dport: int) -> sockets.LocalEnd | sockets.Lookup:
            return sockets.local_end(tgid, fd, daddr, dport, proc)

        return Live(seed=annotator.seed(), annotate=annotator, local_end=local_end)

    async def next_batch(self) -> list[Event] | None:
        """The next records, decoded; live records never run out (the agent stops the loop)."""
        assert self._queue is not None
        return decode_batch(await self._queue.get_batch(), self._metrics.decode_errors)

    async def housekeeping(self) -> None:
        """Every sweep interval, forget tracked sockets whose process exited without close(); every GPU
        interval, sample NVML."""
        await asyncio.gather(self._sweeps(), self._gpu_samples())

    async def _gpu_samples(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            try:
                await loop.run_in_executor(None, self.gpus.sample)  # NVML calls block
            except Exception:  # the sampler counts NVML's failures itself: anything else is logged
                log.exception("GPU sampling failed")
            await asyncio.sleep(self._gpu_interval_s)

    async def _sweeps(self) -> None:
        loop = asyncio.get_running_loop()
        full_before = 0
        while True:
            await asyncio.sleep(self._sweep_interval_s)
            try:
                await loop.run_in_executor(None, self.probes.sweep)
                full = self.probes.not_tracked()
            except Exception:  # the sweep is housekeeping: a failure is logged, the agent goes on
                log.exception("tracked-socket sweep failed")
                continue
            if full > full_before:
                log.warning(
                    "%d connections not tracked for their first payload: the tracked-socket table is full",
                    full - full_before,
                )
            full_before = full

    def status(self) -> list[dict[str, Any]]:
        return [{"name": s.name, "attached": s.attached, "error": s.error} for s in self.probes.status]

    def close(self) -> None:
        """Detach the probes; what the kernel lost is read first and kept for the metrics."""
        lost = dict(self.probes.lost())
        self._metrics.kernel_lost = lambda: lost
        self.probes.close()
