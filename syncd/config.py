"""The configuration: pydantic models of `config.yaml`, loading, and the problem report.

`load_config` reads the YAML, validates every calendar, vendor and route on its own,
resolves every secret (`syncd.secrets`), cross-checks the routes, and raises one
`ConfigError` listing every problem as a `path.to.key: message` line in document order.

Adding a vendor kind: one `_VendorBase` subclass (its `kind`, `base_url` and
`rate_limit` defaults, credentials, `needs_rep`, `options_model`) and one line in the
`VendorConfig` union.
"""

from __future__ import annotations

import os
import re
from collections.abc import Collection, Mapping
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal, Self, TypeVar, get_args
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    SecretStr,
    StringConstraints,
    TypeAdapter,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import ErrorDetails

from syncd.errors import ConfigError
from syncd.secrets import LoadContext, Secret, context_of

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


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# --- field types -------------------------------------------------------------------------

_DURATION = re.compile(r"(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?")


def parse_duration(text: str) -> timedelta:
    """`30s`, `5m`, `2h`, `7d`, `1h30m` (units in that order) as a timedelta."""
    match = _DURATION.fullmatch(text)
    if not text or match is None:
        unit = " (with a unit)" if text.isdigit() else ""
        raise ValueError(f"must be {DURATION_HINT}{unit}")
    days, hours, minutes, seconds = (int(group or 0) for group in match.groups())
    try:
        return timedelta(days=days, hours=hours, minutes=minutes, seconds=seconds)
    except OverflowError:
        raise ValueError("is too long") from None


def format_duration(value: timedelta) -> str:
    """The inverse of `parse_duration` for whole seconds: 5400s -> `1h30m`."""
    seconds = int(value.total_seconds())
    days, seconds = divmod(seconds, 86400)
    hours, seconds = divmod(seconds, 3600)
    minutes, seconds = divmod(seconds, 60)
    parts = zip((days, hours, minutes, seconds), "dhms", strict=True)
    return "".join(f"{amount}{unit}" for amount, unit in parts if amount) or "0s"


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


# --- log and calendars -------------------------------------------------------------------


class LogConfig(_Frozen):
    level: Literal["debug", "info", "warning", "error"] = "info"
    format: Literal["text", "json"] = "text"


class ExpansionLimits(_Frozen):
    """Caps on recurrence expansion: occurrences per series and per calendar."""

    per_series: int = Field(default=1000, ge=1)
    per_calendar: int = Field(default=100_000, ge=1)


class _CalendarBase(_Frozen):
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


class RateLimit(_Frozen):
    requests: float = Field(gt=0)
    per: PositiveDuration


def _rate_limit_off(value: object) -> object:
    if value is False:
        return None
    if value is True:
        raise ValueError("must be {requests: N, per: DURATION} or off")
    return value


RateLimitSetting = Annotated[RateLimit | None, BeforeValidator(_rate_limit_off)]


class _VendorBase(_Frozen):
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


class SalesAskOptions(_Frozen):
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


class WindowConfig(_Frozen):
    past: Duration = timedelta(days=1)
    future: PositiveDuration = timedelta(days=60)


class RepRule(_Frozen):
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


class FilterConfig(_Frozen):
    skip_private: bool = True
    skip_declined: bool = True
    skip_free: bool = False
    skip_all_day: bool = False
    require_external_attendee: bool = False
    title_include: Regex | None = None
    title_exclude: Regex | None = None


class SafetyConfig(_Frozen):
    max_delete_count: int = Field(default=50, ge=0)
    max_delete_fraction: float = Field(default=0.2, ge=0, le=1)


class RouteConfig(_Frozen):
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


# --- cross checks ------------------------------------------------------------------------

REP_FORMS = "{email: ...}, {from: organizer} or {from: attendee, domain: ...}"


def cross_check(
    calendars: Mapping[str, CalendarConfig],
    vendors: Mapping[str, VendorConfig],
    routes: Mapping[str, RouteConfig],
) -> list[Problem]:
    """Problems between a valid route and the valid calendar and vendor it names."""
    problems: list[Problem] = []
    bound: dict[tuple[str, str], str] = {}
    for route_id, route in routes.items():
        found = _calendar_problems(route, calendars.get(route.calendar))
        found += _vendor_problems(route, vendors.get(route.vendor))
        found += _policy_problems(route)
        other = bound.setdefault((route.calendar, route.vendor), route_id)
        if other != route_id:
            found.append(((), f"route {other} already binds {route.calendar} to {route.vendor}"))
        problems += [(("routes", route_id, *loc), message) for loc, message in found]
    return problems


def reference_problems(
    routes: Mapping[str, object], calendars: Collection[str], vendors: Collection[str]
) -> list[Problem]:
    """Routes naming a calendar or vendor that is not defined (valid or not).

    `routes` may hold raw mappings, so a route with other mistakes is checked too.
    """
    problems: list[Problem] = []
    for route_id, route in routes.items():
        for key, known in (("calendar", calendars), ("vendor", vendors)):
            wanted = _field(route, key)
            if isinstance(wanted, str) and wanted not in known:
                listed = ", ".join(sorted(known)) or "none"
                message = f"unknown {key} {wanted!r} (defined: {listed})"
                problems.append((("routes", str(route_id), key), message))
    return problems


def _field(entry: object, key: str) -> object:
    return entry.get(key) if isinstance(entry, dict) else getattr(entry, key, None)


def _calendar_problems(route: RouteConfig, calendar: CalendarConfig | None) -> list[Problem]:
    if calendar is None or calendar.writable or route.direction == "to_vendor":
        return []
    return [(("direction",), f"{calendar.kind} calendars are read-only; use direction: to_vendor")]


def _vendor_problems(route: RouteConfig, vendor: VendorConfig | None) -> list[Problem]:
    if vendor is None:
        return []
    problems: list[Problem] = []
    if vendor.needs_rep and route.rep is None:
        problems.append((("rep",), f"required for {vendor.kind} vendors: {REP_FORMS}"))
    try:
        vendor.parse_options(route.options)
    except ValidationError as error:
        problems += [(("options", *problem[0]), problem[1]) for problem in _problems(error)]
    return problems


def _policy_problems(route: RouteConfig) -> list[Problem]:
    problems: list[Problem] = []
    if route.import_new and route.direction == "to_vendor":
        problems.append((("import_new",), "only applies to direction both or to_calendar"))
    domain = route.rep.domain_of_rep() if route.rep is not None else None
    if route.filter.require_external_attendee and domain is None:
        loc: Loc = ("filter", "require_external_attendee")
        problems.append((loc, "needs the company's domain: set rep.domain or rep.email"))
    return problems


# --- the whole file ----------------------------------------------------------------------

SECTIONS = ("calendars", "vendors", "routes")


class _Settings(_Frozen):
    """The top-level keys besides the three sections."""

    state: ResolvedPath = DEFAULT_STATE_PATH
    log: LogConfig = LogConfig()


class Config(_Settings):
    """A validated configuration, every secret resolved. `source` is the file it came from."""

    source: Path
    calendars: dict[Id, CalendarConfig] = Field(default_factory=dict)
    vendors: dict[Id, VendorConfig] = Field(default_factory=dict)
    routes: dict[Id, RouteConfig] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _cross_check(self) -> Self:
        found = reference_problems(self.routes, self.calendars, self.vendors)
        found += cross_check(self.calendars, self.vendors, self.routes)
        if found:
            raise ValueError("; ".join(_line(problem) for problem in found))
        return self


def find_config_path(cli_value: str | None, environ: Mapping[str, str] = os.environ) -> Path:
    """`-c/--config`, else `$SYNCD_CONFIG`, else /etc/syncd/config.yaml."""
    if cli_value:
        return Path(cli_value)
    if environ.get("SYNCD_CONFIG"):
        return Path(environ["SYNCD_CONFIG"])
    return DEFAULT_CONFIG_PATH


def load_config(
    path: Path, environ: Mapping[str, str] = os.environ, credentials_dir: Path | None = None
) -> Config:
    """Read, validate and resolve the config; `ConfigError` lists every problem."""
    source = path.expanduser().absolute()
    data, lines = _read_yaml(source)
    context = LoadContext(source.parent, environ, credentials_dir)
    result = _validate(data, source, context)
    if isinstance(result, Config):
        return result
    result.sort(key=lambda problem: _line_of(problem[0], lines))
    raise ConfigError([_line(problem) for problem in result])


def check_config(
    path: Path, environ: Mapping[str, str] = os.environ, credentials_dir: Path | None = None
) -> list[str]:
    """The problem lines of `load_config`, or [] when the config is fine."""
    try:
        load_config(path, environ, credentials_dir)
    except ConfigError as error:
        return error.problems
    return []


# --- validation --------------------------------------------------------------------------

_Entry = TypeVar("_Entry")
_ADAPTERS: dict[str, TypeAdapter[Any]] = {
    "calendars": TypeAdapter(CalendarConfig),
    "vendors": TypeAdapter(VendorConfig),
    "routes": TypeAdapter(RouteConfig),
}
_SETTINGS = TypeAdapter(_Settings)


def _kinds(union: object) -> str:
    """The `kind` values of a discriminated union, for messages."""
    member = get_args(union)[0]
    members = get_args(member) or (member,)
    return ", ".join(str(model.model_fields["kind"].default) for model in members)


_KIND_LISTS = {"calendars": _kinds(CalendarConfig), "vendors": _kinds(VendorConfig)}


def _validate(data: dict[Any, Any], source: Path, context: LoadContext) -> Config | list[Problem]:
    problems: list[Problem] = []
    valid = {name: _section(name, data.get(name), context, problems) for name in SECTIONS}
    rest = {key: value for key, value in data.items() if key not in SECTIONS}
    settings = _model(_SETTINGS, rest, context, (), problems)
    known = {name: [str(key) for key in _mapping(data.get(name))] for name in SECTIONS}
    raw_routes = {str(key): route for key, route in _mapping(data.get("routes")).items()}
    problems += reference_problems(raw_routes, known["calendars"], known["vendors"])
    problems += cross_check(valid["calendars"], valid["vendors"], valid["routes"])
    if problems or settings is None:
        return problems
    fields = {"source": source, "state": settings.state, "log": settings.log, **valid}
    return Config.model_validate(fields, context=context)


def _mapping(value: object) -> dict[Any, Any]:
    return value if isinstance(value, dict) else {}


def _section(
    name: str, raw: object, context: LoadContext, problems: list[Problem]
) -> dict[str, Any]:
    """The entries of one section that validate; the problems of the others."""
    if raw is not None and not isinstance(raw, dict):
        problems.append(((name,), "must be a mapping of id to settings"))
    valid: dict[str, Any] = {}
    for key, entry in _mapping(raw).items():
        loc: Loc = (name, str(key))
        good_id = isinstance(key, str) and re.match(ID_PATTERN, key) is not None
        if not good_id:
            problems.append((loc, f"invalid id: {ID_RULE}"))
        item = _model(_ADAPTERS[name], entry, context, loc, problems)
        if item is not None and good_id:
            valid[key] = item
    return valid


def _model(
    adapter: TypeAdapter[_Entry], raw: object, context: LoadContext, loc: Loc, out: list[Problem]
) -> _Entry | None:
    """`raw` validated, or None with its problems (at `loc`) appended to `out`."""
    try:
        return adapter.validate_python(raw, context=context)
    except ValidationError as error:
        kinds = _KIND_LISTS.get(str(loc[0]), "") if loc else ""
        out += [((*loc, *where), message) for where, message in _problems(error, raw, kinds)]
        return None


# --- messages ----------------------------------------------------------------------------

_PLAIN = {
    "extra_forbidden": "unknown key",
    "missing": "required",
    "bool_type": "must be true or false",
    "bool_parsing": "must be true or false",
    "int_type": "must be a whole number",
    "int_parsing": "must be a whole number",
    "int_from_float": "must be a whole number",
    "float_type": "must be a number",
    "float_parsing": "must be a number",
    "string_type": "must be a string",
    "model_type": "must be a mapping",
    "model_attributes_type": "must be a mapping",
    "dict_type": "must be a mapping",
    "path_type": "must be a path",
    "union_tag_not_found": "required",
}
_BOUNDS = {
    "greater_than": "must be greater than {gt}",
    "greater_than_equal": "must be at least {ge}",
    "less_than": "must be less than {lt}",
    "less_than_equal": "must be at most {le}",
    "literal_error": "must be {expected}",
    "union_tag_invalid": "unknown kind {tag!r}",
}
_KINDS = ("union_tag_invalid", "union_tag_not_found")


def _problems(error: ValidationError, raw: object = None, kinds: str = "") -> list[Problem]:
    """Pydantic's errors as plain `(loc, message)`, without the union tags in the loc."""
    tag = raw.get("kind") if kinds and isinstance(raw, dict) else None
    problems: list[Problem] = []
    for detail in error.errors(include_url=False, include_input=False):
        loc = tuple(detail["loc"])
        if loc and loc[0] == tag:
            loc = loc[1:]
        if detail["type"] in _KINDS:
            loc = (*loc, "kind")
        problems.append((loc, _message(detail, kinds)))
    return problems


def _message(detail: ErrorDetails, kinds: str) -> str:
    kind = detail["type"]
    context = detail.get("ctx", {})
    if kind in _KINDS:
        what = _PLAIN.get(kind) or _BOUNDS[kind].format(**context)
        return f"{what}; valid kinds: {kinds or context.get('expected_tags', '')}"
    if kind in _PLAIN:
        return _PLAIN[kind]
    if kind in _BOUNDS:
        return _BOUNDS[kind].format(**{key: _number(value) for key, value in context.items()})
    message = detail["msg"].removeprefix("Value error, ").removeprefix("Assertion failed, ")
    return message[:1].lower() + message[1:]


def _number(value: object) -> object:
    return int(value) if isinstance(value, float) and value.is_integer() else value


def _line(problem: Problem) -> str:
    loc, message = problem
    path = "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in loc)
    return f"{path.removeprefix('.') or '(top level)'}: {message}"


# --- YAML --------------------------------------------------------------------------------


class _Loader(yaml.SafeLoader):
    """The safe loader, refusing duplicate keys (PyYAML silently keeps the last one)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[object] = set()
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = self.construct_object(key_node, deep=True)
            if isinstance(key, str | int | float | bool) and key in seen:
                raise yaml.constructor.ConstructorError(
                    "while constructing a mapping",
                    node.start_mark,
                    f"found duplicate key {key!r}",
                    key_node.start_mark,
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def _read_yaml(source: Path) -> tuple[dict[Any, Any], dict[tuple[str, ...], int]]:
    """The document as a dict, and the line of each key path (for document order)."""
    try:
        text = source.read_bytes().decode("utf-8")
    except FileNotFoundError:
        hint = "pass another with -c/--config or $SYNCD_CONFIG"
        raise ConfigError([f"{source}: file not found ({hint})"]) from None
    except OSError as error:
        raise ConfigError([f"{source}: cannot be read: {error.strerror}"]) from None
    except UnicodeDecodeError:
        raise ConfigError([f"{source}: not UTF-8 text"]) from None
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
        data = loader.construct_document(node) if node is not None else None
    except yaml.MarkedYAMLError as error:
        raise ConfigError([f"{source}: {_yaml_error(error)}"]) from None
    except yaml.YAMLError as error:
        raise ConfigError([f"{source}: invalid YAML: {error}"]) from None
    finally:
        loader.dispose()
    if not isinstance(data, dict):
        what = "empty" if data is None else "not a mapping of settings"
        raise ConfigError([f"{source}: the file is {what}"])
    return data, _line_index(node)


def _yaml_error(error: yaml.MarkedYAMLError) -> str:
    """Where and what, without the snippet of the line (it might hold a secret)."""
    mark = error.problem_mark or error.context_mark
    where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
    return f"{where}{error.problem or error.context or 'invalid YAML'}"


def _line_index(root: yaml.Node | None) -> dict[tuple[str, ...], int]:
    index: dict[tuple[str, ...], int] = {}
    seen: set[int] = set()
    todo: list[tuple[tuple[str, ...], yaml.Node]] = [((), root)] if root is not None else []
    while todo:
        path, node = todo.pop()
        index.setdefault(path, node.start_mark.line)
        if id(node) in seen or not isinstance(node, yaml.MappingNode):
            continue
        seen.add(id(node))
        for key, value in node.value:
            if isinstance(key, yaml.ScalarNode):
                index.setdefault((*path, str(key.value)), key.start_mark.line)
                todo.append(((*path, str(key.value)), value))
    return index


def _line_of(loc: Loc, lines: dict[tuple[str, ...], int]) -> int:
    """The line of the deepest key of `loc` that is written in the file."""
    path = tuple(str(part) for part in loc)
    for length in range(len(path), -1, -1):
        if path[:length] in lines:
            return lines[path[:length]]
    return 0
