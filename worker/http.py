"""The operational HTTP endpoint of every process: /metrics, /healthz and /readyz."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from worker.metrics import Metrics

log = logging.getLogger(__name__)

#: Returns the reasons the process is not ready; an empty list means ready.
ReadinessCheck = Callable[[], Awaitable[list[str]]]


def ops_app(metrics: Metrics, readiness: ReadinessCheck) -> web.Application:
    async def metrics_view(_: web.Request) -> web.Response:
        body = generate_latest(metrics.registry)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def healthz(_: web.Request) -> web.Response:
        # Answering at all proves the event loop is running.
        return web.json_response({"status": "ok"})

    async def readyz(_: web.Request) -> web.Response:
        try:
            problems = await readiness()
        except Exception as exc:  # a failing check means "not ready", never a 500
            problems = [f"readiness check failed: {type(exc).__name__}"]
        if problems:
            return web.json_response({"status": "not ready", "problems": problems}, status=503)
        return web.json_response({"status": "ready"})

    app = web.Application()
    app.router.add_get("/metrics", metrics_view)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    return app


async def start_ops_server(
    metrics: Metrics, readiness: ReadinessCheck, host: str, port: int
) -> web.AppRunner:
    """Serve the ops endpoints; the caller cleans the runner up. Port 0 disables the server."""
    runner = web.AppRunner(ops_app(metrics, readiness), access_log=None)
    await runner.setup()
    if port:
        await web.TCPSite(runner, host, port).start()
        log.info("metrics and health on http://%s:%d/metrics", host, port)
    return runner
