# SPDX-License-Identifier: Apache-2.0
"""The agent's HTTP API: /healthz, /readyz, /metrics."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

if TYPE_CHECKING:
    from collector.agent import Agent

AGENT: web.AppKey[Agent] = web.AppKey("agent")


async def healthz(request: web.Request) -> web.Response:
    return web.Response(text="ok\n")


async def readyz(request: web.Request) -> web.Response:
    """200 once every sensor is attached and the process table is seeded; 503 before, with why."""
    agent = request.app[AGENT]
    body = {"ready": agent.ready, "sensors": agent.sensor_status()}
    return web.json_response(body, status=200 if agent.ready else 503)


async def metrics(request: web.Request) -> web.Response:
    text = request.app[AGENT].metrics.render()
    return web.Response(text=text, content_type="text/plain", headers={"X-Content-Format": "prometheus-0.0.4"})


def create_app(agent: Agent) -> web.Application:
    app = web.Application()
    app[AGENT] = agent
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics)
    return app
