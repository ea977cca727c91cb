"""Field types of the configuration: ids, durations, resolved paths, time zones,
URLs, emails, domains and regexes, each validating itself with a plain message."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path
from typing import Annotated
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    PlainSerializer,
    SecretStr,
    StringConstraints,
    ValidationInfo,
)

from syncd.secrets import context_of

DEFAULT_CONFIG_PATH = Path("/etc/syncd/config.yaml")
DEFAULT_STATE_PATH = Path("/var/lib/syncd/state.db")
ID_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,63}$"
ID_RULE = (
    "ids are lowercase letters, digits, - and _, start with a letter or digit, at most 64 long"
)
DURATION_HINT = "a duration like 30s, 5m, 2h, 7d or 1h30m"

Id = Annotated[str, StringConstraints(pattern=ID_PATTERN)]
Loc = tuple[str | int, ...]
Problem = tuple[Loc, str]


class Frozen(BaseModel):
    """A config model: unknown keys are errors, values never change."""

    model_config = ConfigDict(extra="forbid", frozen=True)


# --- field types -------------------------------------------------------------------------

_DURATION = re.compile(r"(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m(?!s))?(?:(\d+)s)?(?:(\d+)ms)?")


def parse_duration(text: str) -> timedelta:
    """`30s`, `5m`, `2h`, `7d`, `1h30m`, `500ms` (units in that order) as a timedelta;
    milliseconds are for simulators and benches with a scaled clock."""
    match = _DURATION.fullmatch(text)
    if not text or match is None:
        unit = " (with a unit)" if text.isdigit() else ""
        raise ValueError(f"must be {DURATION_HINT}{unit}")
    days, hours, minutes, seconds, millis = (int(group or 0) for group in match.groups())
    try:
        return timedelta(
            days=days, hours=hours, minutes=minutes, seconds=seconds, milliseconds=millis
        )
    except OverflowError:
        raise ValueError("is too long") from None


def format_duration(value: timedelta) -> str:
    """The inverse of `parse_duration`: 5400s -> `1h30m`, 0.5s -> `500ms`."""
    millis = round(value.total_seconds() * 1000) % 1000
    seconds = int(value.total_seconds())
    days, seconds = divmod(seconds, 86400)
    hours, seconds = divmod(seconds, 3600)
    minutes, seconds = divmod(seconds, 60)
    parts = zip((days, hours, minutes, seconds), "dhms", strict=True)
    text = "".join(f"{amount}{unit}" for amount, unit in parts if amount)
    return text + (f"{millis}ms" if millis else "") or "0s"


def _duration(value: object) -> object:
    if isinstance(value, timedelta):
        return value
    if isinstance(value, str):
        return parse_duration(value.strip())
    raise ValueError(f"must be {DURATION_HINT}, written as a string with a unit")


def _not_negative(value: timedelta) -> timedelta:
    if value < timedelta(0):
        raise ValueError("must not be negative")
    return value


def _positive(value: timedelta) -> timedelta:
    if value <= timedelta(0):
        raise ValueError("must be longer than 0s")
    return value


_AS_TEXT = PlainSerializer(format_duration, return_type=str, when_used="json")
Duration = Annotated[timedelta, BeforeValidator(_duration), AfterValidator(_not_negative), _AS_TEXT]
PositiveDuration = Annotated[
    timedelta, BeforeValidator(_duration), AfterValidator(_positive), _AS_TEXT
]


def _not_blank(value: object) -> object:
    if isinstance(value, str) and not value.strip():
        raise ValueError("must not be empty")
    return value


def _resolve_path(value: Path, info: ValidationInfo) -> Path:
    return context_of(info).path(value)


ResolvedPath = Annotated[Path, BeforeValidator(_not_blank), AfterValidator(_resolve_path)]
"""A path; a relative one is taken against the config file's folder, `~` is expanded."""


def _time_zone(name: str) -> str:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(
            f"unknown time zone {name!r}; use an IANA name like Europe/Berlin"
        ) from None
    return name


TimeZone = Annotated[str, AfterValidator(_time_zone)]


def _regex(value: object) -> object:
    if isinstance(value, str):
        try:
            return re.compile(value)
        except re.error as error:
            raise ValueError(f"invalid regular expression: {error}") from None
    return value


def _check_http(url: str) -> str:
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme == "webcal":
        raise ValueError("webcal:// is not fetched as such: write https:// (or http://) instead")
    if scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("must be an http:// or https:// URL")
    return url


def _http_secret(value: SecretStr) -> SecretStr:
    _check_http(value.get_secret_value())
    return value


def _base_url(value: str) -> str:
    return _check_http(value).rstrip("/")


BaseUrl = Annotated[str, AfterValidator(_base_url)]


def _email(value: str) -> str:
    if not re.fullmatch(r"[^@\s]+@[^@\s]+", value):
        raise ValueError("must be an email address like rep@company.com")
    return value


def _domain(value: str) -> str:
    if not re.fullmatch(r"[\w-]+(\.[\w-]+)+", value):
        raise ValueError("must be a domain like company.com (no @)")
    return value


Email = Annotated[str, AfterValidator(_email)]
Domain = Annotated[str, AfterValidator(_domain)]
Regex = Annotated[re.Pattern[str], BeforeValidator(_regex)]
