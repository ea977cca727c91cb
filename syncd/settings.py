"""The models of `config.yaml`, one per calendar kind, vendor kind and route.

Adding a vendor kind: one `_VendorBase` subclass (its `kind`, `base_url` and
`rate_limit` defaults, credentials, `needs_rep`, `options_model`) and one line in the
`VendorConfig` union.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import Annotated, Any, ClassVar, Literal, Self

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SecretStr,
    ValidationInfo,
    field_validator,
    model_validator,
)

from syncd.config_types import (
    BaseUrl,
    Domain,
    Duration,
    Email,
    Frozen,
    PositiveDuration,
    Regex,
    ResolvedPath,
    _http_secret,
    _time_zone,
)
from syncd.secrets import Secret

# --- log and calendars -------------------------------------------------------------------


class LogConfig(Frozen):
    level: Literal["debug", "info", "warning", "error"] = "info"
    format: Literal["text", "json"] = "text"


class ExpansionLimits(Frozen):
    """Caps on recurrence expansion: occurrences per series and per calendar."""

    per_series: int = Field(default=1000, ge=1)
    per_calendar: int = Field(default=100_000, ge=1)


class _CalendarBase(Frozen):
    poll: PositiveDuration = timedelta(minutes=5)
    timezone: Annotated[str, AfterValidator(_time_zone)] = "UTC"
    limits: ExpansionLimits = ExpansionLimits()

    @property
    def writable(self) -> bool:
        """Whether syncd may write events into this calendar."""
        return True


class IcsUrlCalendar(_CalendarBase):
    """An iCalendar feed over HTTP(S); read-only. The URL is a secret (it may hold a token)."""

    kind: Literal["ics_url"] = "ics_url"
    url: Annotated[Secret, AfterValidator(_http_secret)]
    username: str | None = None
    password: Secret | None = None
    timeout: PositiveDuration = timedelta(seconds=30)
    max_bytes: int = Field(default=50 * 1024 * 1024, gt=0)

    @property
    def writable(self) -> bool:
        return False

    @field_validator("password")
    @classmethod
    def _password_needs_username(cls, value: SecretStr | None, info: ValidationInfo) -> object:
        if value is not None and info.data.get("username") is None:
            raise ValueError("needs username too (basic auth)")
        return value


class IcsFileCalendar(_CalendarBase):
    """One local `.ics` file; read-only for now (writing back into it is not built yet)."""

    kind: Literal["ics_file"] = "ics_file"
    path: ResolvedPath

    @property
    def writable(self) -> bool:
        return False


class IcsDirCalendar(_CalendarBase):
    """A vdir folder: one `.ics` file per event."""

    kind: Literal["ics_dir"] = "ics_dir"
    path: ResolvedPath


CalendarConfig = Annotated[
    IcsUrlCalendar | IcsFileCalendar | IcsDirCalendar, Field(discriminator="kind")
]


# --- vendors -----------------------------------------------------------------------------


class RateLimit(Frozen):
    requests: float = Field(gt=0)
    per: PositiveDuration


def _rate_limit_off(value: object) -> object:
    if value is False:
        return None
    if value is True:
        raise ValueError("must be {requests: N, per: DURATION} or off")
    return value


RateLimitSetting = Annotated[RateLimit | None, BeforeValidator(_rate_limit_off)]


class _VendorBase(Frozen):
    """What every vendor account has. Subclasses give `base_url` and `rate_limit` defaults."""

    needs_rep: ClassVar[bool] = False
    """Whether routes to this kind must say who the rep (the record's owner) is."""
    options_model: ClassVar[type[BaseModel]]
    """The model of a route's `options` for this kind."""

    base_url: BaseUrl
    poll: PositiveDuration = timedelta(minutes=10)
    rate_limit: RateLimitSetting
    concurrency: int = Field(default=4, ge=1, le=32)
    timeout: PositiveDuration = timedelta(seconds=30)

    def parse_options(self, options: Mapping[str, Any]) -> BaseModel:
        """A route's `options`, validated for this kind."""
        return self.options_model.model_validate(dict(options))


class SalesAskOptions(Frozen):
    """Sales Ask takes no route options yet."""


class SalesAskVendor(_VendorBase):
    needs_rep: ClassVar[bool] = True
    options_model: ClassVar[type[BaseModel]] = SalesAskOptions

    kind: Literal["salesask"] = "salesask"
    base_url: BaseUrl = "https://integrations.salesask.com"
    rate_limit: RateLimitSetting = RateLimit(requests=5, per=timedelta(seconds=1))
    api_key: Secret


VendorConfig = Annotated[SalesAskVendor, Field(discriminator="kind")]


# --- routes ------------------------------------------------------------------------------


class WindowConfig(Frozen):
    past: Duration = timedelta(days=1)
    future: PositiveDuration = timedelta(days=60)


class RepRule(Frozen):
    """Who the rep is: a fixed `email`, or the event's organizer or attendee (`from`)."""

    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        validate_by_name=True,
        validate_by_alias=True,
        serialize_by_alias=True,
    )

    email: Email | None = None
    from_: Literal["organizer", "attendee"] | None = Field(default=None, alias="from")
    domain: Domain | None = None

    @model_validator(mode="after")
    def _one_rule(self) -> Self:
        if (self.email is None) == (self.from_ is None):
            raise ValueError("set exactly one of email or from")
        if self.from_ == "attendee" and self.domain is None:
            raise ValueError("from: attendee needs domain (the company's, to tell reps apart)")
        return self

    def domain_of_rep(self) -> str | None:
        """The company's domain: `domain`, else the rep email's, else None."""
        if self.domain is not None:
            return self.domain.lower()
        if self.email is not None:
            return self.email.rpartition("@")[2].lower()
        return None


class FilterConfig(Frozen):
    skip_private: bool = True
    skip_declined: bool = True
    skip_free: bool = False
    skip_all_day: bool = False
    require_external_attendee: bool = False
    title_include: Regex | None = None
    title_exclude: Regex | None = None


class SafetyConfig(Frozen):
    max_delete_count: int = Field(default=50, ge=0)
    max_delete_fraction: float = Field(default=0.2, ge=0, le=1)


class RouteConfig(Frozen):
    calendar: str
    vendor: str
    direction: Literal["both", "to_vendor", "to_calendar"] = "to_vendor"
    window: WindowConfig = WindowConfig()
    conflict: Literal["calendar", "vendor", "newest"] = "calendar"
    rep: RepRule | None = None
    filter: FilterConfig = FilterConfig()
    safety: SafetyConfig = SafetyConfig()
    on_vendor_delete: Literal["recreate", "keep_deleted"] = "recreate"
    import_new: bool = False
    options: dict[str, Any] = Field(default_factory=dict)
