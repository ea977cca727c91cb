"""Retries for transient failures: exponential backoff with full jitter that honours
`RateLimited.retry_after`, never for 4xx. The runner wraps adapter calls in it;
adapters themselves never sleep or retry.

A plain loop rather than tenacity: its per-call state objects form reference cycles,
one per call, and on a first sync of 10,000 writes the cyclic collector they kept
busy cost a quarter of the writing time (4,700 -> 6,500 writes/s without them).
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TypeVar

from syncd.errors import AdapterError, RateLimited

T = TypeVar("T")


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how patiently to retry one call."""

    attempts: int = 5
    base: float = 0.5  # seconds; the first backoff is up to this, doubling each time
    cap: float = 60.0  # the longest backoff between two attempts
    max_retry_after: float = 300.0  # a longer Retry-After gives up this run instead
    sleep: Callable[[float], Awaitable[None]] = field(default=asyncio.sleep)


def _retryable(exc: AdapterError) -> bool:
    return exc.retryable


def _refused(exc: AdapterError) -> bool:
    return isinstance(exc, RateLimited)


def pause_after(policy: RetryPolicy, exc: AdapterError, attempt: int) -> float:
    """How long to wait after failed attempt number `attempt` (1 for the first): the
    side's Retry-After, else a random share of `base * 2**(attempt-1)`, at most `cap`
    (full jitter). A Retry-After longer than `max_retry_after` is raised: the run
    stops and the route backs off as a whole."""
    if isinstance(exc, RateLimited) and exc.retry_after is not None:
        if exc.retry_after > policy.max_retry_after:
            raise exc
        return exc.retry_after
    return random.uniform(0, min(policy.cap, policy.base * 2 ** (attempt - 1)))


async def with_retries(
    call: Callable[[], Awaitable[T]], policy: RetryPolicy, *, refused_only: bool = False
) -> T:
    """Await `call()`, retrying transient `AdapterError`s by the policy. `refused_only`
    retries only rate-limit refusals, which certainly did nothing: for a create at a
    vendor that makes its own ids, a timeout may have stored the record already."""
    retryable = _refused if refused_only else _retryable
    for attempt in range(1, policy.attempts):
        try:
            return await call()
        except AdapterError as exc:
            if not retryable(exc):
                raise
            await policy.sleep(pause_after(policy, exc, attempt))
    return await call()  # the last attempt: its error is the caller's
