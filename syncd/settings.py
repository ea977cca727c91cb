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
    Problem,
    Regex,
    ResolvedPath,
    TimeZone,
    _http_secret,
)
from syncd.secrets import Secret

# --- log and calendars -------------------------------------------------------------------


class LogConfig(Frozen):
    level: Literal["debug", "info", "warning", "error"] = "info"
    format: Literal["text", "json"] = "text"


class DaemonConfig(Frozen):
    """How `syncd run` works. `first_sync: process` runs a route's first sync (a route
    with nothing synced yet) in a `syncd` process of its own, whose memory goes back to
    the system when it exits; `inline` runs it in the daemon like every other run."""

    first_sync: Literal["process", "inline"] = "process"


class ExpansionLimits(Frozen):
    """Caps on recurrence expansion: occurrences per series and per calendar."""

    per_series: int = Field(default=1000, ge=1)
    per_calendar: int = Field(default=100_000, ge=1)


class _CalendarBase(Frozen):
    poll: PositiveDuration = timedelta(minutes=5)
    timezone: TimeZone = "UTC"
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
        return _needs_username(value, info)


def _needs_username(value: SecretStr | None, info: ValidationInfo) -> object:
    if value is not None and info.data.get("username") is None:
        raise ValueError("needs username too (basic auth)")
    return value


class IcsFileCalendar(_CalendarBase):
    """One local `.ics` file holding a whole calendar; writable."""

    kind: Literal["ics_file"] = "ics_file"
    path: ResolvedPath


class IcsDirCalendar(_CalendarBase):
    """A vdir folder: one `.ics` file per event."""

    kind: Literal["ics_dir"] = "ics_dir"
    path: ResolvedPath


class CaldavCalendar(_CalendarBase):
    """One CalDAV calendar collection; writable. The URL is a secret like a feed's."""

    kind: Literal["caldav"] = "caldav"
    url: Annotated[Secret, AfterValidator(_http_secret)]
    username: str | None = None
    password: Secret | None = None
    timeout: PositiveDuration = timedelta(seconds=30)

    @field_validator("password")
    @classmethod
    def _password_needs_username(cls, value: SecretStr | None, info: ValidationInfo) -> object:
        return _needs_username(value, info)


CalendarConfig = Annotated[
    IcsUrlCalendar | IcsFileCalendar | IcsDirCalendar | CaldavCalendar,
    Field(discriminator="kind"),
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

    def route_problems(self, route: RouteConfig, options: BaseModel) -> list[Problem]:
        """What this kind needs of a route beyond its options' own rules."""
        return []


class SalesAskOptions(Frozen):
    """Sales Ask takes no route options yet."""


class SalesAskVendor(_VendorBase):
    needs_rep: ClassVar[bool] = True
    options_model: ClassVar[type[BaseModel]] = SalesAskOptions

    kind: Literal["salesask"] = "salesask"
    base_url: BaseUrl = "https://integrations.salesask.com"
    rate_limit: RateLimitSetting = RateLimit(requests=5, per=timedelta(seconds=1))
    api_key: Secret


class LeadSquaredOptions(Frozen):
    """A LeadSquared route: what kind of task to create, what to link it to, who to list."""

    task_type: str = "Meeting"  # an appointment-category task type name of the tenant
    related_entity: Literal[0, 1, 5] = 0  # 0 none, 1 a lead, 5 an opportunity
    related_entity_id: str = ""  # the lead or opportunity id (required with 1 or 5)
    notify_by_email: bool = False  # NotifyBy 1100 instead of 1000: emails every owner
    reminder_minutes: int | None = Field(default=None, ge=0)  # off unless asked for
    owners: list[Email] = Field(default_factory=list)  # whose appointments are listed;
    # default: the route's rep.email

    @model_validator(mode="after")
    def _entity_id(self) -> Self:
        if self.related_entity and not self.related_entity_id:
            raise ValueError("related_entity 1 or 5 needs related_entity_id")
        return self


class LeadSquaredVendor(_VendorBase):
    needs_rep: ClassVar[bool] = True
    options_model: ClassVar[type[BaseModel]] = LeadSquaredOptions

    def route_problems(self, route: RouteConfig, options: BaseModel) -> list[Problem]:
        """Listing reads the appointments of known owners: the rep's fixed email, or
        `options.owners` when the rep comes from each event."""
        assert isinstance(options, LeadSquaredOptions)
        if options.owners or (route.rep is not None and route.rep.email):
            return []
        return [
            (
                ("options", "owners"),
                "list the owners whose appointments syncd reads "
                "(needed when rep is not a fixed email)",
            )
        ]

    kind: Literal["leadsquared"] = "leadsquared"
    base_url: BaseUrl = "https://api.leadsquared.com/v2"  # the tenant's regional host
    rate_limit: RateLimitSetting = RateLimit(requests=25, per=timedelta(seconds=5))
    access_key: Secret
    secret_key: Secret


class YSuiteOptions(Frozen):
    """A YSUITE route: every task must link a contact (`cstid`) or a deal (`deal_id`)."""

    cstid: int | None = None
    deal_id: int | None = None
    contact_lookup: bool = False  # find the contact by the customer's email instead

    @model_validator(mode="after")
    def _link(self) -> Self:
        if self.cstid is None and self.deal_id is None and not self.contact_lookup:
            raise ValueError("set cstid, deal_id or contact_lookup: true (YSUITE tasks need one)")
        return self


class YSuiteVendor(_VendorBase):
    options_model: ClassVar[type[BaseModel]] = YSuiteOptions

    kind: Literal["ysuite"] = "ysuite"
    base_url: BaseUrl = "https://api.ysuite.org"
    rate_limit: RateLimitSetting = RateLimit(requests=5, per=timedelta(seconds=1))
    access_key: Secret
    secret_key: Secret
    account_timezone: TimeZone  # YSUITE task times are naive wall times in this zone
    supports_update: bool = False  # PUT /v1/tasks/{id} is not documented: off until tried
    supports_delete: bool = False  # DELETE /v1/tasks/{id} likewise
    users: dict[Email, int] = Field(default_factory=dict)  # rep email -> assigned_user_id


class ApptotoOptions(Frozen):
    """An Apptoto route: the calendar its events go to, by id (a calendar *name* that does
    not exist makes Apptoto create one silently, so names are not accepted)."""

    calendar_id: int = Field(gt=0)
    auto_messages: bool = False  # let Apptoto text or email participants about new events


class ApptotoVendor(_VendorBase):
    options_model: ClassVar[type[BaseModel]] = ApptotoOptions

    kind: Literal["apptoto"] = "apptoto"
    base_url: BaseUrl = "https://api.apptoto.com"
    rate_limit: RateLimitSetting = RateLimit(requests=100, per=timedelta(minutes=1))
    username: str = Field(min_length=1)
    api_key: Secret


class SalesloftOptions(Frozen):
    """A Salesloft route: the external calendar, or the user whose it is (else the rep's)."""

    calendar_id: str = ""  # `external_<user_guid>`
    user_guid: str = ""


class SalesloftVendor(_VendorBase):
    needs_rep: ClassVar[bool] = True
    options_model: ClassVar[type[BaseModel]] = SalesloftOptions

    kind: Literal["salesloft"] = "salesloft"
    base_url: BaseUrl = "https://api.salesloft.com"
    # Cost units, not calls: each answer says what a call cost (deep pages cost more).
    rate_limit: RateLimitSetting = RateLimit(requests=600, per=timedelta(minutes=1))
    api_key: Secret
    bulk_threshold: int = Field(default=500, ge=0)  # this many upserts or more: a bulk job

    def route_problems(self, route: RouteConfig, options: BaseModel) -> list[Problem]:
        """The calendar comes from the options or the rep's fixed email."""
        assert isinstance(options, SalesloftOptions)
        if options.calendar_id or options.user_guid or (route.rep and route.rep.email):
            return []
        return [
            (
                ("options", "calendar_id"),
                "set calendar_id or user_guid (rep is not a fixed email to look the user up by)",
            )
        ]


VendorConfig = Annotated[
    SalesAskVendor | LeadSquaredVendor | YSuiteVendor | ApptotoVendor | SalesloftVendor,
    Field(discriminator="kind"),
]


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
    occurrence_delete: Literal["exdate", "cancel"] = "exdate"
    options: dict[str, Any] = Field(default_factory=dict)
