"""Loading the configuration and reporting its problems.

`load_config` reads the YAML, validates every calendar, vendor and route on its own
(the models are in `syncd.settings`), resolves every secret (`syncd.secrets`),
cross-checks the routes, and raises one `ConfigError` listing every problem as a
`path.to.key: message` line in document order.
"""

from __future__ import annotations

import os
import re
from collections.abc import Collection, Mapping
from pathlib import Path
from typing import Any, Self, TypeVar, get_args

import yaml
from pydantic import (
    Field,
    TypeAdapter,
    ValidationError,
    model_validator,
)
from pydantic_core import ErrorDetails

from syncd.config_types import (
    DEFAULT_CONFIG_PATH,
    DEFAULT_STATE_PATH,
    ID_PATTERN,
    ID_RULE,
    Frozen,
    Id,
    Loc,
    Problem,
    ResolvedPath,
)
from syncd.errors import ConfigError
from syncd.secrets import LoadContext
from syncd.settings import CalendarConfig, DaemonConfig, LogConfig, RouteConfig, VendorConfig

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
        options = vendor.parse_options(route.options)
    except ValidationError as error:
        problems += [(("options", *problem[0]), problem[1]) for problem in _problems(error)]
        return problems
    return problems + vendor.route_problems(route, options)


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


class _Settings(Frozen):
    """The top-level keys besides the three sections."""

    state: ResolvedPath = DEFAULT_STATE_PATH
    log: LogConfig = LogConfig()
    daemon: DaemonConfig = DaemonConfig()


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


def state_path(path: Path) -> Path:
    """Only where the state file is: for `syncd resync`, which must not need the
    secrets (under systemd they exist only inside the service)."""
    source = path.expanduser().absolute()
    data, _ = _read_yaml(source)
    value = data.get("state", DEFAULT_STATE_PATH)
    if not isinstance(value, str | Path) or not str(value):
        raise ConfigError([f"{source}: state: must be a path"])
    state = Path(value).expanduser()
    return state if state.is_absolute() else source.parent / state


def load_config(
    path: Path,
    environ: Mapping[str, str] = os.environ,
    credentials_dir: Path | None = None,
    *,
    text: str | None = None,
) -> Config:
    """Read, validate and resolve the config; `ConfigError` lists every problem. With
    `text`, that is the file's content (relative paths still start at `path`'s folder)."""
    source = path.expanduser().absolute()
    data, lines = _read_yaml(source, text)
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
    fields = {"source": source, **dict(settings), **valid}
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


def read_text(source: Path) -> str:
    """The config file's text; `ConfigError` when it cannot be read."""
    try:
        return source.read_bytes().decode("utf-8")
    except FileNotFoundError:
        hint = "pass another with -c/--config or $SYNCD_CONFIG"
        raise ConfigError([f"{source}: file not found ({hint})"]) from None
    except OSError as error:
        raise ConfigError([f"{source}: cannot be read: {error.strerror}"]) from None
    except UnicodeDecodeError:
        raise ConfigError([f"{source}: not UTF-8 text"]) from None


def _read_yaml(
    source: Path, text: str | None = None
) -> tuple[dict[Any, Any], dict[tuple[str, ...], int]]:
    """The document as a dict, and the line of each key path (for document order)."""
    loader = _Loader(read_text(source) if text is None else text)
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
