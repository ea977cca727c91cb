"""Serving a simulator's aiohttp application on loopback, shared by every simulator."""

from __future__ import annotations

import json
from typing import Any

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


def json_object(text: str) -> dict[str, Any]:
    """A request body as a JSON object (empty for an empty body); `ValueError` says what
    is wrong, for each simulator to answer in its vendor's error shape."""
    try:
        body = json.loads(text) if text.strip() else {}
    except ValueError:
        raise ValueError("The body is not valid JSON.") from None
    if not isinstance(body, dict):
        raise ValueError("The body must be a JSON object.")
    return body
