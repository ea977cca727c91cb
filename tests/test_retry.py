"""The retry policy: transient errors are retried with capped, jittered exponential
backoff, a Retry-After is honoured (a long one stops the run), refusals are not retried,
and a create that may have been stored is retried only after a rate-limit refusal."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest

from syncd.errors import AdapterError, RateLimited, Rejected, Unavailable
from syncd.retry import RetryPolicy, with_retries


def failing(*errors: AdapterError) -> tuple[Callable[[], Awaitable[str]], list[int]]:
    """A call that raises `errors` in turn, then answers "ok"; and its call count."""
    calls: list[int] = []

    async def call() -> str:
        calls.append(1)
        if len(calls) <= len(errors):
            raise errors[len(calls) - 1]
        return "ok"

    return call, calls


def policy(slept: list[float], attempts: int = 5) -> RetryPolicy:
    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    return RetryPolicy(attempts=attempts, base=0.5, cap=1.5, sleep=sleep)


async def test_transient_errors_are_retried_with_capped_growing_backoff(monkeypatch) -> None:
    monkeypatch.setattr("syncd.retry.random.uniform", lambda low, high: high)  # jitter at top
    slept: list[float] = []
    call, calls = failing(*(Unavailable("down") for _ in range(4)))
    assert await with_retries(call, policy(slept)) == "ok"
    assert len(calls) == 5
    assert slept == [0.5, 1.0, 1.5, 1.5]  # doubling from `base`, held at `cap`


async def test_the_last_error_is_raised_when_the_attempts_run_out() -> None:
    slept: list[float] = []
    call, calls = failing(*(Unavailable(f"down {n}") for n in range(3)))
    with pytest.raises(Unavailable, match="down 2"):
        await with_retries(call, policy(slept, attempts=3))
    assert (len(calls), len(slept)) == (3, 2)


async def test_a_refusal_is_not_retried_and_retry_after_is_honoured() -> None:
    slept: list[float] = []
    call, calls = failing(Rejected("no"))
    with pytest.raises(Rejected):
        await with_retries(call, policy(slept))
    assert (len(calls), slept) == (1, [])
    call, _ = failing(RateLimited("slow down", retry_after=7.0))
    assert await with_retries(call, policy(slept)) == "ok"
    assert slept == [7.0]


async def test_a_long_retry_after_stops_at_once() -> None:
    slept: list[float] = []
    call, calls = failing(RateLimited("come back tomorrow", retry_after=86_400.0))
    with pytest.raises(RateLimited):
        await with_retries(call, policy(slept))
    assert (len(calls), slept) == (1, [])


async def test_a_create_that_may_have_been_stored_is_retried_only_after_a_refusal() -> None:
    slept: list[float] = []
    call, calls = failing(Unavailable("timeout"))
    with pytest.raises(Unavailable):
        await with_retries(call, policy(slept), refused_only=True)
    assert len(calls) == 1
    call, calls = failing(RateLimited("429", retry_after=1.0))
    assert await with_retries(call, policy(slept), refused_only=True) == "ok"
    assert len(calls) == 2
