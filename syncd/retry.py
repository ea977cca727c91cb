"""Retries for transient failures: exponential backoff with jitter that honours
`RateLimited.retry_after`, never for 4xx. The runner wraps adapter calls in it;
adapters themselves never sleep or retry."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TypeVar

from tenacity import AsyncRetrying, RetryCallState, retry_if_exception, stop_after_attempt
from tenacity.wait import wait_random_exponential

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


def _retryable(exc: BaseException) -> bool:
    return isinstance(exc, AdapterError) and exc.retryable


def _refused(exc: BaseException) -> bool:
    return isinstance(exc, RateLimited)


class _Wait:
    def __init__(self, policy: RetryPolicy) -> None:
        self.policy = policy
        self.backoff = wait_random_exponential(multiplier=policy.base, max=policy.cap)

    def __call__(self, state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        if isinstance(exc, RateLimited) and exc.retry_after is not None:
            if exc.retry_after > self.policy.max_retry_after:
                raise exc  # a long pause: the run stops and the route backs off as a whole
            return exc.retry_after
        return float(self.backoff(state))


async def with_retries(
    call: Callable[[], Awaitable[T]], policy: RetryPolicy, *, refused_only: bool = False
) -> T:
    """Await `call()`, retrying transient `AdapterError`s by the policy. `refused_only`
    retries only rate-limit refusals, which certainly did nothing: for a create at a
    vendor that makes its own ids, a timeout may have stored the record already."""
    retryable = _refused if refused_only else _retryable
    retrying = AsyncRetrying(
        retry=retry_if_exception(retryable),
        stop=stop_after_attempt(policy.attempts),
        wait=_Wait(policy),
        sleep=policy.sleep,
        reraise=True,
    )
    async for attempt in retrying:
        with attempt:
            return await call()
    raise AssertionError("unreachable: tenacity reraises the last error")
