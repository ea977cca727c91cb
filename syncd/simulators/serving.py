"""Serving a simulator's aiohttp application on loopback, shared by every simulator."""

from __future__ import annotations

from aiohttp import web


async def start(app: web.Application, host: str, port: int) -> web.AppRunner:
    """Serve `app` until `runner.cleanup()`; port 0 picks a free one."""
    runner = web.AppRunner(app, shutdown_timeout=5.0)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    return runner


def origin(runner: web.AppRunner) -> str:
    """`http://host:port` where a started runner listens."""
    host, port = runner.addresses[0][:2]
    return f"http://{host}:{port}"
