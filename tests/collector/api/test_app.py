# SPDX-License-Identifier: Apache-2.0
"""The HTTP API on a stand-in agent: health, readiness with reasons, Prometheus metrics."""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp.test_utils import TestClient, TestServer

from collector.api.app import create_app
from collector.metrics import Metrics


class StandInAgent:
    def __init__(self, ready: bool) -> None:
        self.ready = ready
        self.metrics = Metrics()
        self.metrics.events["exec"] = 3
        self.metrics.alerts["mining.stratum"] = 1
        self.metrics.kernel_lost = lambda: {"payload": 2}
        self.metrics.counters["sockets_not_tracked_total"] = ("Connections not tracked.", lambda: 7)

    def sensor_status(self) -> list[dict[str, Any]]:
        error = None if self.ready else "syscalls:sys_enter_write (on_enter_write): attach failed: Permission denied"
        return [{"name": "payload", "attached": [], "error": error}]


def _get(agent: StandInAgent, path: str) -> tuple[int, str, str]:
    async def go() -> tuple[int, str, str]:
        async with TestClient(TestServer(create_app(agent))) as client:  # type: ignore[arg-type]
            resp = await client.get(path)
            return resp.status, await resp.text(), resp.headers["Content-Type"]

    return asyncio.run(go())


def test_healthz() -> None:
    """/healthz answers while the process lives, ready or not."""
    assert _get(StandInAgent(ready=False), "/healthz")[:2] == (200, "ok\n")


def test_readyz_says_why_not() -> None:
    """/readyz is 503 with the failing sensor's error until every sensor is attached, then 200."""
    status, body, _ = _get(StandInAgent(ready=False), "/readyz")
    assert status == 503 and "attach failed" in body
    assert _get(StandInAgent(ready=True), "/readyz")[0] == 200


def test_metrics_text() -> None:
    """/metrics is Prometheus text with events, alerts and kernel losses."""
    status, body, ctype = _get(StandInAgent(ready=True), "/metrics")
    assert status == 200 and ctype.startswith("text/plain")
    assert 'coalmine_events_total{kind="exec"} 3' in body
    assert 'coalmine_alerts_total{rule="mining.stratum"} 1' in body
    assert 'coalmine_ringbuf_lost_total{kind="payload"} 2' in body
    assert "# TYPE coalmine_dropped_total counter" in body
    assert "# TYPE coalmine_sockets_not_tracked_total counter\ncoalmine_sockets_not_tracked_total 7" in body
