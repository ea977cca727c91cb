"""Shared fixtures: one aiohttp session per test, Hypothesis profiles, a count of packed
groups decoded."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator

import aiohttp
import pytest
from hypothesis import HealthCheck, settings

from syncd.http import new_session
from syncd.model import Record
from syncd.packed import Packed

settings.register_profile(
    "ci", max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile(
    "soak", max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    """The one shared client session, as the daemon has it."""
    async with new_session() as client:
        yield client


@pytest.fixture
def decoded(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The text of every packed group decoded while the test runs, in order."""
    texts: list[str] = []
    records = Packed.records

    def counted(self: Packed) -> tuple[Record, ...]:
        texts.append(self.text())
        return records(self)

    monkeypatch.setattr(Packed, "records", counted)
    return texts
