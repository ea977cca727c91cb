"""The registry: what is shared between routes."""

from __future__ import annotations

import subprocess
import sys
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


IMPORTS_OF_A_SALES_ASK_DAEMON = """\
import asyncio, sys
from pathlib import Path
import aiohttp
import syncd.cli, syncd.daemon
from syncd import registry
from syncd.config import load_config
from syncd.state import State

LAZY = ("syncd.vendors.", "syncd.calendars.caldav")

def loaded():
    return sorted(m for m in sys.modules if m.startswith(LAZY))

print(loaded())

async def build():
    async with aiohttp.ClientSession() as session:
        config = load_config(Path(sys.argv[1]))
        registry.runners(config, State(None), session, list(config.routes))

asyncio.run(build())
print(loaded())
"""


def test_a_daemon_imports_only_the_vendors_and_calendar_kinds_its_config_names(tmp_path: Path):
    """A fresh `syncd run` holds no vendor module and no CalDAV (each a MiB or so of
    resident memory); building the runners of a Sales Ask config imports that one."""
    config = write(tmp_path, "config.yaml", TWO_ROUTES)
    script = write(tmp_path, "probe.py", IMPORTS_OF_A_SALES_ASK_DAEMON)
    found = subprocess.run(
        [sys.executable, str(script), str(config)],
        capture_output=True,
        text=True,
        check=True,
        cwd=tmp_path,
    ).stdout.splitlines()
    assert found == ["[]", "['syncd.vendors.salesask']"]
