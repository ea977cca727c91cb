"""The registry: what is shared between routes."""

from __future__ import annotations

from pathlib import Path

import aiohttp

from syncd import registry
from syncd.config import load_config
from syncd.state import State
from tests.builders import write

TWO_ROUTES = """\
state: state.db
calendars:
  a: {kind: ics_file, path: a.ics}
  b: {kind: ics_file, path: b.ics}
vendors:
  salesask: {kind: salesask, api_key: k, base_url: "http://127.0.0.1:9"}
  other: {kind: salesask, api_key: k2, base_url: "http://127.0.0.1:9"}
routes:
  ra: {calendar: a, vendor: salesask, rep: {email: rep@example.com}}
  rb: {calendar: b, vendor: salesask, rep: {email: rep@example.com}}
  rc: {calendar: a, vendor: other, rep: {email: rep@example.com}}
"""


async def test_routes_to_one_vendor_account_share_its_rate_budget(tmp_path: Path):
    config = load_config(write(tmp_path, "config.yaml", TWO_ROUTES))
    async with aiohttp.ClientSession() as session:
        runners = registry.runners(config, State(None), session, list(config.routes))
    funnel = {name: runner.vendor.http for name, runner in runners.items()}  # type: ignore[attr-defined]
    assert funnel["ra"] is funnel["rb"]
    assert funnel["ra"] is not funnel["rc"]
    assert runners["ra"].calendar is runners["rc"].calendar
    assert runners["ra"].calendar is not runners["rb"].calendar
