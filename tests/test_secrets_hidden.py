"""Secrets never reach a repr, a run report, a log line or the state file."""

from __future__ import annotations

import logging
from pathlib import Path

import aiohttp

from syncd import registry
from syncd.config import load_config
from syncd.state import State
from tests.builders import config_text, run_sync, write

TOKEN, PASSWORD, KEY = "feed-token-5e3c", "hunter2-9af1", "api-key-77d0"


def secret_config(tmp_path: Path) -> Path:
    # Port 9 (discard) on loopback refuses connections: the feed fetch fails.
    block = (
        f"    kind: ics_url\n    url: http://127.0.0.1:9/feed.ics?token={TOKEN}\n"
        f"    username: someone\n    password: {PASSWORD}"
    )
    text = config_text("http://127.0.0.1:9", block).replace("api_key: sim-key", f"api_key: {KEY}")
    return write(tmp_path, "config.yaml", text)


def assert_clean(text: str) -> None:
    for secret in (TOKEN, PASSWORD, KEY):
        assert secret not in text


async def test_adapters_and_runners_do_not_show_secrets_in_repr(tmp_path):
    config = load_config(secret_config(tmp_path))
    state = State(None)
    async with aiohttp.ClientSession() as session:
        runners = registry.runners(config, state, session, ["r"])
        assert_clean(repr(runners))
        assert_clean(repr(config))


async def test_a_failing_feed_reports_and_logs_no_secret(tmp_path, caplog):
    caplog.set_level(logging.DEBUG)
    config_path = secret_config(tmp_path)

    [report] = await run_sync(config_path)

    assert report.outcome == "failed"
    assert_clean(report.error)
    assert_clean(caplog.text)
    assert_clean((tmp_path / "state.db").read_bytes().decode("latin-1"))
