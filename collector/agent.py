# SPDX-License-Identifier: Apache-2.0
"""Agent: the one owner of the lifecycle (start-up, main loop, shutdown, signals), live or replayed.

`coalmine run` gives it the kernel source and the API; `coalmine replay` a
recording and no API. Everything else is the same: the pipeline, the
recorder, the counting of what goes wrong, and a shutdown that closes the
source, the recording and every sink.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import socket
from collections.abc import Awaitable, Callable
from typing import Any

from collector.config import Config, parse_listen
from collector.detect import default_detectors
from collector.errors import CoalmineError
from collector.metrics import Metrics
from collector.pipeline import Pipeline
from collector.sinks import Sink
from collector.source import EventSource
from collector.source.recording import Recorder, header
from probes.events import Event

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


class Agent:
    def __init__(self, config: Config, sinks: list[Sink], source: EventSource, *, api: bool = True) -> None:
        self.config = config
        self.sinks = sinks
        self.source = source
        self.metrics = Metrics()
        self.recorder = Recorder(config.record, header(source.origin)) if config.record is not None else None
        origin = source.origin
        self.pipeline = Pipeline(
            origin.host,
            origin.clock,
            sinks,
            metrics=self.metrics,
            recorder=self.recorder,
            detectors=default_detectors(config.gpu_approved),
        )
        self.metrics.gauges["processes_tracked"] = lambda: len(self.pipeline.processes)
        self._api = api
        self._ready = False
        self._listener: socket.socket | None = None
        self._stop = asyncio.Event()

    @property
    def ready(self) -> bool:
        return self._ready and self.source.ready

    def sensor_status(self) -> list[dict[str, Any]]:
        return self.source.status()

    def stop(self) -> None:
        self._stop.set()

    def load(self) -> None:
        """Bind the API's port, then open the source (compile and attach the probes): before ``run()``, in
        the main thread.

        The compile is the agent's memory peak (clang and LLVM, in bcc), so it
        runs before the web stack is imported; the API answers from ``run()`` on.
        """
        if self._api:
            self._listener = bind(self.config.listen)
        try:
            self.source.open(self.metrics)
        except BaseException:
            if self._listener is not None:
                self._listener.close()
            raise

    async def run(self) -> None:
        """Serve the API (if any) and raise alerts until stop() or the source runs out; ``load()`` first."""
        if self._api and self._listener is None:
            raise CoalmineError("Agent.run() before Agent.load()")
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, self.stop)
        cleanup = None
        try:
            if self._listener is not None:
                cleanup = await self._serve(self._listener)
            self._startup()
            await self._main_loop()
        finally:
            self._shutdown()
            if cleanup is not None:
                await cleanup()

    async def _serve(self, listener: socket.socket) -> Callable[[], Awaitable[None]]:
        """Start the API on the bound socket; returns the coroutine function that stops it."""
        from aiohttp import web  # here, not at the top: see load()

        from collector.api.app import create_app

        runner = web.AppRunner(create_app(self), access_log=None)
        await runner.setup()
        try:
            await web.SockSite(runner, listener).start()
        except OSError as exc:
            await runner.cleanup()
            raise CoalmineError(f"cannot listen on {self.config.listen}: {exc.strerror}") from exc
        return runner.cleanup

    def _startup(self) -> None:
        live = self.source.start(self.pipeline.processes)
        if live is not None:
            for event in live.seed:
                self.pipeline.handle(event)
            self.pipeline.annotate = live.annotate
            self.pipeline.local_end = live.local_end
        self._ready = True
        if self._listener is not None:
            log.info(
                "watching: sensors %s attached; %d processes from /proc; API on http://%s",
                ", ".join(s["name"] for s in self.source.status()),
                len(self.pipeline.processes),
                self.config.listen,
            )

    async def _main_loop(self) -> None:
        stop = asyncio.create_task(self._stop.wait())
        housekeeping = asyncio.create_task(self.source.housekeeping())
        try:
            while not self._stop.is_set():
                get = asyncio.create_task(self.source.next_batch())
                done, _ = await asyncio.wait({get, stop}, return_when=asyncio.FIRST_COMPLETED)
                if get not in done:
                    get.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await get
                    break
                batch = get.result()
                if batch is None:
                    break  # a recording's end
                self._ingest(batch)
        finally:
            for task in (stop, housekeeping):
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    def _ingest(self, events: list[Event]) -> None:
        for event in events:
            try:
                self.pipeline.handle(event)
            except Exception:  # a bug must cost one event, counted, not the agent
                self.metrics.dropped["pipeline_error"] += 1
                log.exception("dropped a %s event after an internal error", event.KIND.value)
        if self.recorder is not None:
            self.recorder.flush()

    def _shutdown(self) -> None:
        self._ready = False
        try:
            self.source.close()
        except Exception:  # the process is leaving: the sinks must still be closed
            log.exception("closing the %s source failed", self.source.name)
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
            sum(m.kernel_lost().values()),
            sum(m.dropped.values()),
        )
