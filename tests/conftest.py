"""Shared fixtures: one aiohttp session per test, Hypothesis profiles."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator

import aiohttp
import pytest
from hypothesis import HealthCheck, settings

from syncd.http import new_session

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
