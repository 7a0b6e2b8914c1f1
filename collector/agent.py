# SPDX-License-Identifier: Apache-2.0
"""Agent: the one owner of the live lifecycle (start-up, main loop, shutdown, signals)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import socket
from pathlib import Path
from typing import Any

from collector import __version__
from collector.alerts.clock import Clock
from collector.config import Config, parse_listen
from collector.enrich import sockets
from collector.enrich.annotate import LiveAnnotator
from collector.enrich.cgroups import CgroupResolver, find_cgroup2_mount
from collector.errors import CoalmineError, DecodeError
from collector.metrics import Metrics
from collector.pipeline import Pipeline
from collector.sinks import Sink
from collector.source.queue import RecordQueue
from collector.source.recording import Recorder
from probes.decode import decode
from probes.loader import SWEEP_INTERVAL_S, Probes

log = logging.getLogger("coalmine")


def bind(listen: str) -> socket.socket:
    """A TCP socket bound to HOST:PORT (a name binds its first address), not yet listening.

    Bound before the probes compile, so a taken port fails the start at once; the
    API listens on it once they are attached.
    """
    host, port = parse_listen(listen)
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
        sock = socket.socket(family, kind, proto)
    except OSError as exc:
        raise CoalmineError(f"cannot listen on {listen}: {exc.strerror}") from exc
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as asyncio does: restart over TIME_WAIT
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        sock.bind(address)
    except OSError as exc:
        sock.close()
        raise CoalmineError(f"cannot listen on {listen}: {exc.strerror}") from exc
    return sock


def boot_id() -> str:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return "unknown"


class Agent:
    def __init__(self, config: Config, sinks: list[Sink], probes: Probes | None = None) -> None:
        self.config = config
        self.metrics = Metrics()
        self.probes = probes or Probes(config.ringbuf_pages, config.tracked_sockets)
        self.clock = Clock.now(boot_id())
        self.recorder: Recorder | None = None
        if config.record is not None:
            self.recorder = Recorder(
                config.record,
                {
                    "host": config.host,
                    "boot_id": self.clock.boot_id,
                    "realtime_offset_ns": self.clock.realtime_offset_ns,
                    "coalmine_version": __version__,
                },
            )
        self.pipeline = Pipeline(config.host, self.clock, sinks, metrics=self.metrics, recorder=self.recorder)
        self.cgroups = CgroupResolver(find_cgroup2_mount())
        self.sinks = sinks
        self._ready = False
        self._listener: socket.socket | None = None
        self._stop = asyncio.Event()
        self._queue = RecordQueue(config.queue_size, self.metrics)
        self.metrics.gauges["queue_records"] = lambda: len(self._queue)
        self.metrics.kernel_lost = self.probes.lost
        self.metrics.gauges["processes_tracked"] = lambda: len(self.pipeline.processes)
        # Nonzero counters in the kernel's hot-path filter (common.bpf.h): near FILTER_SLOTS, close() and
        # write() fall through to the hash map more often (slots shared, or left high by dead processes).
        self.metrics.gauges["socket_filter_busy_slots"] = lambda: sum(1 for n in self.probes.filter_counts() if n)
        self.metrics.gauges["sockets_tracked"] = lambda: self.probes.tracked_now
        self.metrics.counters["sockets_not_tracked_total"] = (
            "Connections (or fd copies of them) whose first payload goes unseen: the tracked-socket table was full.",
            self.probes.not_tracked,
        )
        self.metrics.counters["sockets_stale_total"] = (
            "Tracked fds that held no socket at their first send (closed by an exec): not taken for payloads.",
            self.probes.stale,
        )
        self.metrics.counters["sockets_swept_total"] = (
            "Tracked sockets forgotten because their process exited without close().",
            lambda: self.probes.swept,
        )

    @property
    def ready(self) -> bool:
        return self._ready and self.probes.ready

    def sensor_status(self) -> list[dict[str, Any]]:
        return [{"name": s.name, "attached": s.attached, "error": s.error} for s in self.probes.status]

    def stop(self) -> None:
        self._stop.set()

    def load(self) -> None:
        """Bind the API's port, then compile and attach the probes: before ``run()``, in the main thread.

        The compile is the agent's memory peak (clang and LLVM, in bcc), so it
        runs before the web stack is imported; the API answers from ``run()`` on.
        """
        self._listener = bind(self.config.listen)
        try:
            self.probes.load()
        except BaseException:
            self._listener.close()
            raise

    async def run(self) -> None:
        """Serve the API and raise alerts until stop(); ``load()`` first."""
        from aiohttp import web  # here, not at the top: see load()

        from collector.api.app import create_app

        if self._listener is None:
            raise CoalmineError("Agent.run() before Agent.load()")
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, self.stop)
        runner = web.AppRunner(create_app(self), access_log=None)
        try:
            await runner.setup()
            try:
                await web.SockSite(runner, self._listener).start()
            except OSError as exc:
                raise CoalmineError(f"cannot listen on {self.config.listen}: {exc.strerror}") from exc
            await self._startup(loop)
            await self._main_loop()
        finally:
            self._shutdown()
            await runner.cleanup()

    async def _startup(self, loop: asyncio.AbstractEventLoop) -> None:
        def deliver(batch: list[bytes]) -> None:  # runs in the reader thread
            loop.call_soon_threadsafe(self._queue.put_batch, batch)

        self.probes.start(deliver)
        annotator = LiveAnnotator(self.pipeline.processes, self.cgroups)
        seeded = annotator.seed()
        for event in seeded:
            self.pipeline.handle(event)
        self.pipeline.annotate = annotator
        self.pipeline.local_end = sockets.local_end
        self._ready = True
        attached = ", ".join(s.name for s in self.probes.status)
        log.info(
            "watching: sensors %s attached; %d processes from /proc; API on http://%s",
            attached,
            len(self.pipeline.processes),
            self.config.listen,
        )

    async def _sweeper(self) -> None:
        """Every SWEEP_INTERVAL_S, forget tracked sockets whose process exited without close()."""
        loop = asyncio.get_running_loop()
        full_before = 0
        while True:
            await asyncio.sleep(SWEEP_INTERVAL_S)
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

    async def _main_loop(self) -> None:
        stop = asyncio.create_task(self._stop.wait())
        sweeper = asyncio.create_task(self._sweeper())
        try:
            while not self._stop.is_set():
                get = asyncio.create_task(self._queue.get_batch())
                done, _ = await asyncio.wait({get, stop}, return_when=asyncio.FIRST_COMPLETED)
                if get not in done:
                    get.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await get
                    break
                self._ingest(get.result())
        finally:
            for task in (stop, sweeper):
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    def _ingest(self, records: list[bytes]) -> None:
        for raw in records:
            try:
                event = decode(raw)
            except DecodeError as exc:
                self.metrics.decode_errors[exc.reason] += 1
                continue
            try:
                self.pipeline.handle(event)
            except Exception:  # a bug must cost one event, counted, not the agent
                self.metrics.dropped["pipeline_error"] += 1
                log.exception("dropped a %s event after an internal error", event.KIND.value)
        if self.recorder is not None:
            self.recorder.flush()

    def _shutdown(self) -> None:
        self._ready = False
        lost = sum(self.probes.lost().values())  # read before the maps go
        self.probes.close()
        if self.recorder is not None:
            self.recorder.close()
        for sink in self.sinks:
            try:
                sink.close()
            except OSError as exc:
                log.warning("sink %s: close failed: %s", sink.name, exc)
        m = self.metrics
        log.info(
            "stopped: %d events, %d alerts, %d records lost in the kernel, %d dropped in the agent",
            sum(m.events.values()),
            sum(m.alerts.values()),
            lost,
            sum(m.dropped.values()),
        )
