"""The closed error vocabulary.

Adapters raise only `AdapterError` subclasses; the runner alone decides what to
retry, when, and what to log. The names say what the caller can do about each one.
"""

from __future__ import annotations


class SyncdError(Exception):
    """Base of every error syncd raises on purpose."""


class ConfigError(SyncdError):
    """The configuration is invalid: one `path: message` line per problem."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("\n".join(problems))


class RouteBusy(SyncdError):
    """Another process holds the route's lock."""

    def __init__(self, route: str, holder: str) -> None:
        self.route = route
        self.holder = holder
        super().__init__(f"route {route} is being synced by {holder}; try again when it ends")


class AdapterError(SyncdError):
    """A side refused or failed an operation; `key` names the item when there is one."""

    retryable = False

    def __init__(self, message: str, *, key: str = "") -> None:
        self.key = key
        super().__init__(message)


class Unavailable(AdapterError):
    """Timeouts, connection errors, 5xx: try again later, with backoff."""

    retryable = True


class RateLimited(Unavailable):
    """The side asked us to slow down; `retry_after` seconds when it said so."""

    def __init__(self, message: str, *, retry_after: float | None = None, key: str = "") -> None:
        self.retry_after = retry_after
        super().__init__(message, key=key)


class AuthFailed(AdapterError):
    """Credentials were refused: stop the route, say so once, keep the others running."""


class Gone(AdapterError):
    """The item does not exist (404/410)."""


class VersionMismatch(AdapterError):
    """Somebody else wrote first (409/412): re-plan on the next run."""


class Rejected(AdapterError):
    """The side refused this item (400/422, an inactive rep, ...): quarantine it."""


class Malformed(AdapterError):
    """The side answered with something that is not what it should be (an HTML page
    instead of a calendar, a truncated body): the listing failed, nothing is deleted."""
