"""The config layer: models, defaults, secrets, paths, and the `path: message` report."""

from __future__ import annotations

import re
import textwrap
from datetime import timedelta
from pathlib import Path

import pytest
import yaml
from pydantic import SecretStr, ValidationError

from syncd.config import Config, check_config, find_config_path, load_config
from syncd.config_types import DEFAULT_CONFIG_PATH, format_duration, parse_duration
from syncd.errors import ConfigError
from syncd.settings import (
    IcsDirCalendar,
    IcsFileCalendar,
    IcsUrlCalendar,
    LeadSquaredVendor,
    RateLimit,
    RepRule,
    RouteConfig,
    SalesAskVendor,
    YSuiteVendor,
)

REPO = Path(__file__).resolve().parent.parent
TOKEN = "t0p-s3cr3t-f33d-t0k3n"
FEED_URL = f"https://feeds.example.com/team.ics?token={TOKEN}"

MINIMAL = """\
calendars:
  team:
    kind: ics_file
    path: team.ics
vendors:
  salesask:
    kind: salesask
    api_key: literal-key
routes:
  team:
    calendar: team
    vendor: salesask
    rep: {email: rep@company.com}
"""


def salesask_of(config: Config) -> SalesAskVendor:
    vendor = config.vendors["salesask"]
    assert isinstance(vendor, SalesAskVendor)
    return vendor


def write(folder: Path, text: str, name: str = "config.yaml") -> Path:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text))
    return path


def load(folder: Path, text: str, env: dict[str, str] | None = None) -> Config:
    return load_config(write(folder, text), env or {})


def problems(folder: Path, text: str, env: dict[str, str] | None = None) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load(folder, text, env)
    assert caught.value.problems == check_config(folder / "config.yaml", env or {})
    return caught.value.problems


def with_route(extra: str, calendar: str = "kind: ics_file\n    path: team.ics") -> str:
    """MINIMAL with `extra` (indented route keys) added to route `team`."""
    text = MINIMAL.replace("kind: ics_file\n    path: team.ics", calendar)
    return text + textwrap.indent(textwrap.dedent(extra), "    ")


# --- defaults and round trip -------------------------------------------------------------


def test_minimal_config_gets_every_default(tmp_path: Path) -> None:
    config = load(tmp_path, MINIMAL)
    assert config.source == tmp_path / "config.yaml"
    assert config.state == Path("/var/lib/syncd/state.db")
    assert (config.log.level, config.log.format) == ("info", "text")
    assert config.daemon.first_sync == "process"
    calendar = config.calendars["team"]
    assert isinstance(calendar, IcsFileCalendar)
    assert calendar.path == tmp_path / "team.ics"
    assert (calendar.poll, calendar.timezone, calendar.writable) == (
        timedelta(minutes=5),
        "UTC",
        True,
    )
    assert (calendar.limits.per_series, calendar.limits.per_calendar) == (1000, 100_000)
    vendor = salesask_of(config)
    assert vendor.base_url == "https://integrations.salesask.com"
    assert vendor.api_key.get_secret_value() == "literal-key"
    assert vendor.poll == timedelta(minutes=10)
    assert vendor.rate_limit == RateLimit(requests=5, per=timedelta(seconds=1))
    assert (vendor.concurrency, vendor.timeout, vendor.needs_rep) == (
        4,
        timedelta(seconds=30),
        True,
    )
    route = config.routes["team"]
    assert (route.direction, route.conflict, route.on_vendor_delete) == (
        "to_vendor",
        "calendar",
        "recreate",
    )
    assert (route.window.past, route.window.future) == (timedelta(days=1), timedelta(days=60))
    assert route.rep == RepRule(email="rep@company.com")
    assert route.filter.skip_private and route.filter.skip_declined
    assert not (route.filter.skip_free or route.filter.skip_all_day)
    assert not route.filter.require_external_attendee
    assert route.filter.title_include is None and route.filter.title_exclude is None
    assert (route.safety.max_delete_count, route.safety.max_delete_fraction) == (50, 0.2)
    assert (route.import_new, route.options) == (False, {})


def test_the_daemons_first_sync_takes_process_or_inline_and_nothing_else(tmp_path: Path) -> None:
    assert load(tmp_path, MINIMAL + "daemon: {first_sync: inline}\n").daemon.first_sync == "inline"
    [problem] = problems(tmp_path, MINIMAL + "daemon: {first_sync: forked}\n")
    assert problem.startswith("daemon.first_sync") and "'process' or 'inline'" in problem


def test_a_config_handed_as_text_is_read_as_if_it_were_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, "routes: [")  # the file as it is now: broken
    config = load_config(path, {}, text=MINIMAL)
    calendar = config.calendars["team"]
    assert isinstance(calendar, IcsFileCalendar) and calendar.path == tmp_path / "team.ics"
    assert config.source == path


def test_dump_loads_back_to_the_same_config(tmp_path: Path) -> None:
    config = load(tmp_path, with_route("filter: {title_exclude: '(?i)lunch'}\nwindow: {past: 0s}"))
    dumped = config.model_dump(mode="json", exclude={"source"})
    assert dumped["vendors"]["salesask"]["api_key"] == "**********"
    assert dumped["vendors"]["salesask"]["poll"] == "10m"
    assert dumped["routes"]["team"]["rep"] == {
        "email": "rep@company.com",
        "from": None,
        "domain": None,
    }
    dumped["vendors"]["salesask"]["api_key"] = {"env": "KEY"}
    again = load(tmp_path / "again", yaml.safe_dump(dumped), {"KEY": "literal-key"})
    assert again.model_dump(exclude={"source"}) == config.model_dump(exclude={"source"})


def test_models_are_frozen(tmp_path: Path) -> None:
    config = load(tmp_path, MINIMAL)
    with pytest.raises(ValidationError):
        config.routes["team"].import_new = True


# --- durations ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("30s", 30),
        ("5m", 300),
        ("2h", 7200),
        ("7d", 604800),
        ("1h30m", 5400),
        ("1d2h3m4s", 93784),
        ("0s", 0),
        ("500ms", 0.5),
        ("1s250ms", 1.25),
    ],
)
def test_good_durations(text: str, seconds: float) -> None:
    assert parse_duration(text) == timedelta(seconds=seconds)
    assert parse_duration(format_duration(timedelta(seconds=seconds))) == timedelta(seconds=seconds)


@pytest.mark.parametrize(
    "text", ["", "30", "1.5h", "30 s", "1m1h", "-5m", "5M", "1w", "PT5M", "h", "5ms1s", "5msm"]
)
def test_bad_durations(text: str) -> None:
    with pytest.raises(ValueError, match="must be a duration like 30s"):
        parse_duration(text)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("30", "must be a duration like 30s, 5m, 2h, 7d or 1h30m (with a unit)"),
        ("5 minutes", "must be a duration like 30s, 5m, 2h, 7d or 1h30m"),
        ("300", "must be a duration like 30s, 5m, 2h, 7d or 1h30m (with a unit)"),
        ("0s", "must be longer than 0s"),
    ],
)
def test_bad_duration_is_reported_at_its_path(tmp_path: Path, value: str, message: str) -> None:
    text = MINIMAL.replace("path: team.ics", f"path: team.ics\n    poll: '{value}'")
    assert problems(tmp_path, text) == [f"calendars.team.poll: {message}"]


def test_integer_durations_are_refused(tmp_path: Path) -> None:
    text = with_route("window: {past: 0, future: 3600}")
    message = "must be a duration like 30s, 5m, 2h, 7d or 1h30m, written as a string with a unit"
    assert problems(tmp_path, text) == [
        f"routes.team.window.past: {message}",
        f"routes.team.window.future: {message}",
    ]


# --- ids ---------------------------------------------------------------------------------


@pytest.mark.parametrize("good", ["team", "a", "0-x_y", "x" * 64])
def test_good_ids(tmp_path: Path, good: str) -> None:
    config = load(tmp_path, MINIMAL.replace("routes:\n  team:", f"routes:\n  {good}:"))
    assert list(config.routes) == [good]


@pytest.mark.parametrize("bad", ["Team", "-x", "_x", "a.b", "'a b'", "x" * 65, "123", "é"])
def test_bad_ids_are_reported_at_their_path(tmp_path: Path, bad: str) -> None:
    text = MINIMAL.replace("routes:\n  team:", f"routes:\n  {bad}:")
    (line,) = problems(tmp_path, text)
    assert line.startswith(f"routes.{bad.strip(chr(39))}: invalid id: ids are lowercase letters")


# --- the report --------------------------------------------------------------------------


def test_three_mistakes_are_all_reported_in_document_order(tmp_path: Path) -> None:
    text = """\
    calendars:
      team:
        kind: ics_url
        url: {env: TEAM_FEED_URL}
        timezone: Europe/Atlantis
    vendors:
      salesask:
        kind: salesask
        api_key: {env: SALESASK_API_KEY}
    routes:
      team:
        calendar: team
        vendor: salesask
        rep: {from: organizer}
        window: {past: yesterday}
    """
    assert problems(tmp_path, text, {"TEAM_FEED_URL": FEED_URL}) == [
        "calendars.team.timezone: unknown time zone 'Europe/Atlantis'; "
        "use an IANA name like Europe/Berlin",
        "vendors.salesask.api_key: environment variable SALESASK_API_KEY is not set",
        "routes.team.window.past: must be a duration like 30s, 5m, 2h, 7d or 1h30m",
    ]


def test_problems_follow_the_order_of_the_file(tmp_path: Path) -> None:
    calendars, rest = MINIMAL.split("vendors:\n")
    vendors, routes = rest.split("routes:\n")
    text = "routes:\n" + routes + "vendors:\n" + vendors + calendars
    text = text.replace("rep: {email: rep@company.com}", "rep: {email: x}")
    text = text.replace("api_key: literal-key", "api_key: ''").replace("team.ics", "''")
    assert problems(tmp_path, text) == [
        "routes.team.rep.email: must be an email address like rep@company.com",
        "vendors.salesask.api_key: must not be empty",
        "calendars.team.path: must not be empty",
    ]


def test_unknown_keys_are_rejected_at_their_path(tmp_path: Path) -> None:
    text = with_route("window: {past: 1d, futur: 2d}\nfilter: {skip_privat: true}")
    text = text.replace("api_key: literal-key", "apikey: literal-key")
    text = "statefile: x.db\nlog: {level: info, colour: red}\n" + text
    assert problems(tmp_path, text) == [
        "statefile: unknown key",
        "log.colour: unknown key",
        "vendors.salesask.api_key: required",
        "vendors.salesask.apikey: unknown key",
        "routes.team.window.futur: unknown key",
        "routes.team.filter.skip_privat: unknown key",
    ]


def test_source_is_not_a_key_of_the_file(tmp_path: Path) -> None:
    assert problems(tmp_path, "source: /etc/x.yaml\n" + MINIMAL) == ["source: unknown key"]


@pytest.mark.parametrize(
    ("kind", "message"),
    [
        ("kind: webdav", "calendars.team.kind: unknown kind 'webdav'; valid kinds: "),
        ("root: x", "calendars.team.kind: required; valid kinds: "),
    ],
)
def test_calendar_kind_lists_the_valid_kinds(tmp_path: Path, kind: str, message: str) -> None:
    text = MINIMAL.replace("kind: ics_file\n    path: team.ics", kind)
    assert problems(tmp_path, text) == [message + "ics_url, ics_file, ics_dir, caldav"]


def test_vendor_kind_lists_the_valid_kinds(tmp_path: Path) -> None:
    text = MINIMAL.replace("kind: salesask", "kind: hubspot")
    assert problems(tmp_path, text) == [
        "vendors.salesask.kind: unknown kind 'hubspot'; valid kinds: salesask, leadsquared, "
        "ysuite, apptoto, salesloft"
    ]


def test_plain_messages_for_types_and_bounds(tmp_path: Path) -> None:
    text = with_route(
        "direction: sideways\nimport_new: maybe\n"
        "safety: {max_delete_count: -1, max_delete_fraction: 1.5}"
    ).replace("kind: salesask", "kind: salesask\n    concurrency: 0\n    poll: 5m")
    assert problems(tmp_path, text) == [
        "vendors.salesask.concurrency: must be at least 1",
        "routes.team.direction: must be 'both', 'to_vendor' or 'to_calendar'",
        "routes.team.import_new: must be true or false",
        "routes.team.safety.max_delete_count: must be at least 0",
        "routes.team.safety.max_delete_fraction: must be at most 1",
    ]


def test_a_kind_key_on_a_route_is_just_unknown(tmp_path: Path) -> None:
    text = with_route("kind: calendar\nconflict: 3")
    assert problems(tmp_path, text) == [
        "routes.team.kind: unknown key",
        "routes.team.conflict: must be 'calendar', 'vendor' or 'newest'",
    ]


def test_sections_must_be_mappings(tmp_path: Path) -> None:
    text = "calendars: [team]\nvendors:\nroutes: {}\n"
    assert problems(tmp_path, text) == ["calendars: must be a mapping of id to settings"]


# --- secrets -----------------------------------------------------------------------------

SECRET_CONFIG = """\
calendars:
  team:
    kind: ics_url
    url: {env: TEAM_FEED_URL}
    username: reader
    password: {env: FEED_PASSWORD}
vendors:
  salesask:
    kind: salesask
    api_key: {env: SALESASK_API_KEY}
routes:
  team:
    calendar: team
    vendor: salesask
    rep: {email: rep@company.com}
"""


def test_missing_env_secret_is_named_and_values_never_shown(tmp_path: Path) -> None:
    env = {"TEAM_FEED_URL": FEED_URL, "FEED_PASSWORD": TOKEN + "-pw"}
    found = problems(tmp_path, SECRET_CONFIG, env)
    assert found == ["vendors.salesask.api_key: environment variable SALESASK_API_KEY is not set"]
    with pytest.raises(ConfigError) as caught:
        load(tmp_path, SECRET_CONFIG, env)
    assert TOKEN not in str(caught.value) and TOKEN not in repr(caught.value)
    config = load(tmp_path, SECRET_CONFIG, {**env, "SALESASK_API_KEY": TOKEN + "-key"})
    for text in (repr(config), str(config), config.model_dump_json(), str(config.model_dump())):
        assert TOKEN not in text
    calendar = config.calendars["team"]
    assert isinstance(calendar, IcsUrlCalendar)
    assert calendar.url.get_secret_value() == FEED_URL
    assert calendar.password is not None and calendar.password.get_secret_value() == TOKEN + "-pw"
    assert salesask_of(config).api_key.get_secret_value() == TOKEN + "-key"


def test_an_invalid_literal_secret_is_not_echoed(tmp_path: Path) -> None:
    text = SECRET_CONFIG.replace("{env: TEAM_FEED_URL}", f"'ftp://x.example/{TOKEN}'")
    env = {"FEED_PASSWORD": "pw", "SALESASK_API_KEY": "key"}
    found = problems(tmp_path, text, env)
    assert found == ["calendars.team.url: must be an http:// or https:// URL"]
    assert TOKEN not in "\n".join(found)


def test_empty_env_secret_is_a_problem(tmp_path: Path) -> None:
    env = {"TEAM_FEED_URL": FEED_URL, "FEED_PASSWORD": "", "SALESASK_API_KEY": "k"}
    assert problems(tmp_path, SECRET_CONFIG, env) == [
        "calendars.team.password: environment variable FEED_PASSWORD is empty"
    ]


@pytest.mark.parametrize(
    ("written", "message"),
    [
        (
            "12345",
            "must be a quoted string or one of {env: NAME}, {file: PATH}, {credential: NAME}",
        ),
        (
            "{vault: x}",
            "must be a quoted string or one of {env: NAME}, {file: PATH}, {credential: NAME}",
        ),
        (
            "{env: A, file: b}",
            "must be a quoted string or one of {env: NAME}, {file: PATH}, {credential: NAME}",
        ),
        ("''", "must not be empty"),
    ],
)
def test_malformed_secret_references(tmp_path: Path, written: str, message: str) -> None:
    text = MINIMAL.replace("api_key: literal-key", f"api_key: {written}")
    assert problems(tmp_path, text) == [f"vendors.salesask.api_key: {message}"]


def test_file_secrets_are_read_relative_to_the_config(tmp_path: Path) -> None:
    (tmp_path / "keys").mkdir()
    (tmp_path / "keys" / "salesask").write_text("file-key\n\n")
    (tmp_path / "feed-url").write_text(FEED_URL + "\n")
    text = SECRET_CONFIG.replace("{env: SALESASK_API_KEY}", "{file: keys/salesask}")
    text = text.replace("{env: TEAM_FEED_URL}", f"{{file: {tmp_path / 'feed-url'}}}")
    config = load(tmp_path, text, {"FEED_PASSWORD": "pw"})
    assert salesask_of(config).api_key.get_secret_value() == "file-key\n"
    calendar = config.calendars["team"]
    assert isinstance(calendar, IcsUrlCalendar)
    assert calendar.url.get_secret_value() == FEED_URL


def test_missing_and_empty_file_secrets(tmp_path: Path) -> None:
    (tmp_path / "empty").write_text("\n")
    text = SECRET_CONFIG.replace("{env: SALESASK_API_KEY}", "{file: nowhere}")
    text = text.replace("{env: FEED_PASSWORD}", "{file: empty}")
    assert problems(tmp_path, text, {"TEAM_FEED_URL": FEED_URL}) == [
        f"calendars.team.password: secret file {tmp_path / 'empty'} is empty",
        f"vendors.salesask.api_key: secret file {tmp_path / 'nowhere'} not found",
    ]


def test_credential_secrets(tmp_path: Path) -> None:
    credentials = tmp_path / "credentials"
    credentials.mkdir()
    (credentials / "salesask").write_text("cred-key\n")
    text = MINIMAL.replace("api_key: literal-key", "api_key: {credential: salesask}")
    path = write(tmp_path, text)
    by_argument = load_config(path, {}, credentials_dir=credentials)
    by_environ = load_config(path, {"CREDENTIALS_DIRECTORY": str(credentials)})
    for config in (by_argument, by_environ):
        assert salesask_of(config).api_key == SecretStr("cred-key")


@pytest.mark.parametrize(
    ("name", "env", "message"),
    [
        ("other", True, "credential other not found in $CREDENTIALS_DIRECTORY"),
        ("salesask", False, "credential salesask: $CREDENTIALS_DIRECTORY is not set"),
        ("../salesask", True, "credential '../salesask' must be a plain file name"),
    ],
)
def test_credential_problems(tmp_path: Path, name: str, env: bool, message: str) -> None:
    (tmp_path / "salesask").write_text("cred-key")
    text = MINIMAL.replace("api_key: literal-key", f"api_key: {{credential: '{name}'}}")
    environ = {"CREDENTIALS_DIRECTORY": str(tmp_path / "creds")} if env else {}
    (tmp_path / "creds").mkdir()
    (line,) = problems(tmp_path, text, environ)
    assert line.startswith(f"vendors.salesask.api_key: {message}")


# --- paths -------------------------------------------------------------------------------


def test_relative_paths_are_taken_against_the_config_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    text = MINIMAL.replace("path: team.ics", "path: ../shared/team.ics")
    text += "state: state/syncd.db\n"
    text = text.replace(
        "calendars:\n",
        "calendars:\n  desk: {kind: ics_dir, path: /srv/desk}\n"
        "  mine: {kind: ics_dir, path: ~/calendars/mine}\n",
    )
    folder = tmp_path / "etc"
    config = load(folder, text)
    assert config.state == folder / "state/syncd.db"
    assert config.calendars["team"] == IcsFileCalendar(path=folder / "../shared/team.ics")
    assert config.calendars["desk"] == IcsDirCalendar(path=Path("/srv/desk"))
    assert config.calendars["mine"] == IcsDirCalendar(path=tmp_path / "home/calendars/mine")


def test_a_relative_config_path_is_made_absolute(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write(tmp_path, MINIMAL)
    monkeypatch.chdir(tmp_path)
    config = load_config(Path("config.yaml"), {})
    assert config.source == tmp_path / "config.yaml"
    assert config.calendars["team"] == IcsFileCalendar(path=tmp_path / "team.ics")


def test_find_config_path() -> None:
    assert find_config_path("x.yaml", {"SYNCD_CONFIG": "/y.yaml"}) == Path("x.yaml")
    assert find_config_path(None, {"SYNCD_CONFIG": "/y.yaml"}) == Path("/y.yaml")
    assert find_config_path(None, {}) == DEFAULT_CONFIG_PATH == Path("/etc/syncd/config.yaml")


# --- cross checks ------------------------------------------------------------------------

ICS_URL = "kind: ics_url\n    url: https://feeds.example.com/team.ics"


@pytest.mark.parametrize("direction", ["both", "to_calendar"])
def test_ics_url_calendars_are_read_only(tmp_path: Path, direction: str) -> None:
    text = with_route(f"direction: {direction}", calendar=ICS_URL)
    assert problems(tmp_path, text) == [
        "routes.team.direction: ics_url calendars are read-only; use direction: to_vendor"
    ]


def test_ics_url_to_vendor_is_fine(tmp_path: Path) -> None:
    config = load(tmp_path, with_route("direction: to_vendor", calendar=ICS_URL))
    assert not config.calendars["team"].writable


def test_writable_calendars_take_both_directions(tmp_path: Path) -> None:
    calendar = "kind: ics_dir\n    path: team"
    config = load(tmp_path, with_route("direction: both\nimport_new: true", calendar))
    assert config.routes["team"].direction == "both"


def test_ics_file_takes_both_directions_and_an_occurrence_delete_style(tmp_path: Path) -> None:
    config = load(tmp_path, with_route("direction: both\noccurrence_delete: cancel"))
    assert config.routes["team"].occurrence_delete == "cancel"
    assert problems(tmp_path, with_route("direction: both\noccurrence_delete: drop")) == [
        "routes.team.occurrence_delete: must be 'exdate' or 'cancel'"
    ]


def test_rep_is_required_for_salesask(tmp_path: Path) -> None:
    text = MINIMAL.replace("    rep: {email: rep@company.com}\n", "")
    assert problems(tmp_path, text) == [
        "routes.team.rep: required for salesask vendors: "
        "{email: ...}, {from: organizer} or {from: attendee, domain: ...}"
    ]


@pytest.mark.parametrize(
    ("rep", "message"),
    [
        ("{email: a@b.com, from: organizer}", "routes.team.rep: set exactly one of email or from"),
        ("{domain: b.com}", "routes.team.rep: set exactly one of email or from"),
        ("{from: attendee}", "routes.team.rep: from: attendee needs domain"),
        ("{from: boss}", "routes.team.rep.from: must be 'organizer' or 'attendee'"),
        ("{email: nobody}", "routes.team.rep.email: must be an email address"),
        ("{from: attendee, domain: '@b.com'}", "routes.team.rep.domain: must be a domain like"),
    ],
)
def test_bad_rep_rules(tmp_path: Path, rep: str, message: str) -> None:
    text = MINIMAL.replace("{email: rep@company.com}", rep)
    (line,) = problems(tmp_path, text)
    assert line.startswith(message)


def test_domain_of_rep() -> None:
    assert RepRule(email="Rep@Company.COM").domain_of_rep() == "company.com"
    assert RepRule.model_validate({"from": "organizer"}).domain_of_rep() is None
    rule = RepRule.model_validate({"from": "attendee", "domain": "Company.com"})
    assert (rule.from_, rule.domain_of_rep()) == ("attendee", "company.com")


def test_external_attendee_filter_needs_a_domain(tmp_path: Path) -> None:
    text = with_route("filter: {require_external_attendee: true}").replace(
        "{email: rep@company.com}", "{from: organizer}"
    )
    assert problems(tmp_path, text) == [
        "routes.team.filter.require_external_attendee: "
        "needs the company's domain: set rep.domain or rep.email"
    ]


def test_regexes_compile_and_invalid_ones_are_reported(tmp_path: Path) -> None:
    config = load(
        tmp_path, with_route("filter: {title_include: '^Demo', title_exclude: '(?i)lunch'}")
    )
    assert config.routes["team"].filter.title_include == re.compile("^Demo")
    text = with_route("filter: {title_include: 'ok', title_exclude: '([a-'}")
    (line,) = problems(tmp_path, text)
    assert line.startswith("routes.team.filter.title_exclude: invalid regular expression: ")


def test_unknown_references_are_reported_even_on_broken_routes(tmp_path: Path) -> None:
    text = with_route("window: {past: 1}").replace("calendar: team", "calendar: teams")
    assert problems(tmp_path, text) == [
        "routes.team.calendar: unknown calendar 'teams' (defined: team)",
        "routes.team.window.past: must be a duration like 30s, 5m, 2h, 7d or 1h30m, "
        "written as a string with a unit",
    ]


def test_a_calendar_and_vendor_are_bound_by_one_route(tmp_path: Path) -> None:
    text = (
        MINIMAL + "  again:\n    calendar: team\n    vendor: salesask\n    rep: {from: organizer}\n"
    )
    assert problems(tmp_path, text) == ["routes.again: route team already binds team to salesask"]


def test_import_new_needs_a_direction_toward_the_calendar(tmp_path: Path) -> None:
    assert problems(tmp_path, with_route("import_new: true")) == [
        "routes.team.import_new: only applies to direction both or to_calendar"
    ]


def test_salesask_options_are_empty(tmp_path: Path) -> None:
    assert problems(tmp_path, with_route("options: {task_type: call}")) == [
        "routes.team.options.task_type: unknown key"
    ]


def test_rate_limit_off_and_custom(tmp_path: Path) -> None:
    config = load(
        tmp_path, MINIMAL.replace("kind: salesask", "kind: salesask\n    rate_limit: off")
    )
    assert config.vendors["salesask"].rate_limit is None
    text = MINIMAL.replace(
        "kind: salesask", "kind: salesask\n    rate_limit: {requests: 2.5, per: 5s}"
    )
    limit = load(tmp_path, text).vendors["salesask"].rate_limit
    assert limit == RateLimit(requests=2.5, per=timedelta(seconds=5))


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("webcal://feeds.example.com/x", "webcal:// is not fetched as such"),
        ("feeds.example.com/x", "must be an http:// or https:// URL"),
        ("https://", "must be an http:// or https:// URL"),
    ],
)
def test_feed_urls_must_be_http(tmp_path: Path, url: str, message: str) -> None:
    text = with_route("", calendar=f"kind: ics_url\n    url: '{url}'")
    (line,) = problems(tmp_path, text)
    assert line.startswith(f"calendars.team.url: {message}")


def test_feed_password_needs_a_username(tmp_path: Path) -> None:
    text = with_route("", calendar=ICS_URL + "\n    password: pw")
    assert problems(tmp_path, text) == ["calendars.team.password: needs username too (basic auth)"]


def test_config_built_in_code_is_cross_checked(tmp_path: Path) -> None:
    route = RouteConfig(calendar="team", vendor="salesask", direction="both")
    with pytest.raises(ValidationError, match="ics_url calendars are read-only"):
        Config(
            source=tmp_path / "x.yaml",
            calendars={"team": IcsUrlCalendar(url=SecretStr("https://example.com/x"))},
            vendors={"salesask": SalesAskVendor(api_key=SecretStr("k"))},
            routes={"team": route},
        )


# --- the file ----------------------------------------------------------------------------


def test_yaml_syntax_error_gives_the_line(tmp_path: Path) -> None:
    text = MINIMAL.replace("    vendor: salesask", "    vendor: [salesask")
    assert problems(tmp_path, text) == [
        f"{tmp_path / 'config.yaml'}: line 13, column 8: expected ',' or ']', but got ':'"
    ]


def test_duplicate_keys_are_refused(tmp_path: Path) -> None:
    text = MINIMAL + "  team:\n    calendar: team\n"
    assert problems(tmp_path, text) == [
        f"{tmp_path / 'config.yaml'}: line 14, column 3: found duplicate key 'team'"
    ]


@pytest.mark.parametrize(
    ("text", "message"),
    [("", "the file is empty"), ("- a\n", "the file is not a mapping of settings")],
)
def test_empty_or_odd_files(tmp_path: Path, text: str, message: str) -> None:
    assert problems(tmp_path, text) == [f"{tmp_path / 'config.yaml'}: {message}"]


def test_missing_file(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere.yaml"
    assert check_config(missing, {}) == [
        f"{missing}: file not found (pass another with -c/--config or $SYNCD_CONFIG)"
    ]


def test_check_config_is_empty_when_fine(tmp_path: Path) -> None:
    assert check_config(write(tmp_path, MINIMAL), {}) == []


def test_the_example_config_loads() -> None:
    example = REPO / "config.yaml.example"
    text = example.read_text()
    names = set(re.findall(r"^[^#\n]*\{env: (\w+)\}", text, re.MULTILINE))
    assert names == set(EXAMPLE_ENV)
    config = load_config(example, EXAMPLE_ENV)
    kinds = {calendar.kind for calendar in config.calendars.values()}
    assert kinds == {"ics_url", "ics_file", "ics_dir", "caldav"}
    assert {vendor.kind for vendor in config.vendors.values()} == {
        "salesask",
        "leadsquared",
        "ysuite",
        "apptoto",
        "salesloft",
    }
    assert len(config.routes) == 6
    missing = check_config(example, {})
    assert missing == [
        "calendars.team.url: environment variable TEAM_FEED_URL is not set",
        "calendars.work.password: environment variable CALDAV_PASSWORD is not set",
        "vendors.salesask.api_key: environment variable SALESASK_API_KEY is not set",
        "vendors.crm.access_key: environment variable LSQ_ACCESS_KEY is not set",
        "vendors.crm.secret_key: environment variable LSQ_SECRET_KEY is not set",
        "vendors.ysuite.access_key: environment variable YSUITE_ACCESS_KEY is not set",
        "vendors.ysuite.secret_key: environment variable YSUITE_SECRET_KEY is not set",
        "vendors.reminders.api_key: environment variable APPTOTO_API_KEY is not set",
        "vendors.meetings.api_key: environment variable SALESLOFT_API_KEY is not set",
    ]


EXAMPLE_ENV = {
    "TEAM_FEED_URL": FEED_URL,
    "CALDAV_PASSWORD": "g",
    "SALESASK_API_KEY": "key",
    "LSQ_ACCESS_KEY": "a",
    "LSQ_SECRET_KEY": "b",
    "YSUITE_ACCESS_KEY": "c",
    "YSUITE_SECRET_KEY": "d",
    "APPTOTO_API_KEY": "e",
    "SALESLOFT_API_KEY": "f",
}


# --- the vendors with server-generated ids --------------------------------------------------

LEADSQUARED = """\
calendars:
  team: {kind: ics_file, path: team.ics}
vendors:
  lsq:
    kind: leadsquared
    base_url: https://api-us11.leadsquared.com/v2
    access_key: {env: LSQ_ACCESS}
    secret_key: {env: LSQ_SECRET}
routes:
  team:
    calendar: team
    vendor: lsq
    rep: {email: rep@company.com}
    options: {task_type: Appointment, related_entity: 1, related_entity_id: lead-1}
"""

YSUITE = """\
calendars:
  team: {kind: ics_file, path: team.ics}
vendors:
  ys:
    kind: ysuite
    access_key: a
    secret_key: b
    account_timezone: Europe/Berlin
    users: {rep@company.com: 7}
routes:
  team:
    calendar: team
    vendor: ys
    options: {cstid: 10}
"""


def test_leadsquared_defaults_and_options(tmp_path: Path) -> None:
    config = load(tmp_path, LEADSQUARED, {"LSQ_ACCESS": "x", "LSQ_SECRET": "y"})
    vendor = config.vendors["lsq"]
    assert isinstance(vendor, LeadSquaredVendor) and vendor.rate_limit is not None
    assert (vendor.rate_limit.requests, vendor.rate_limit.per) == (25, timedelta(seconds=5))
    options = vendor.parse_options(config.routes["team"].options)
    assert options.model_dump() == {
        "task_type": "Appointment",
        "related_entity": 1,
        "related_entity_id": "lead-1",
        "notify_by_email": False,
        "reminder_minutes": None,
        "owners": [],
    }


def test_leadsquared_needs_a_rep_and_an_entity_id(tmp_path: Path) -> None:
    text = LEADSQUARED.replace("    rep: {email: rep@company.com}\n", "").replace(
        ", related_entity_id: lead-1", ""
    )
    found = problems(tmp_path, text, {"LSQ_ACCESS": "x", "LSQ_SECRET": "y"})
    assert [line.split(":")[0] for line in found] == ["routes.team.rep", "routes.team.options"]


def test_ysuite_needs_a_time_zone_and_a_link(tmp_path: Path) -> None:
    config = load(tmp_path, YSUITE)
    vendor = config.vendors["ys"]
    assert isinstance(vendor, YSuiteVendor)
    assert vendor.account_timezone == "Europe/Berlin"
    assert (vendor.supports_update, vendor.supports_delete) == (False, False)
    no_zone = YSUITE.replace("    account_timezone: Europe/Berlin\n", "")
    assert [line.split(":")[0] for line in problems(tmp_path, no_zone)] == [
        "vendors.ys.account_timezone"
    ]
    no_link = YSUITE.replace("{cstid: 10}", "{}")
    assert problems(tmp_path, no_link) == [
        "routes.team.options: set cstid, deal_id or contact_lookup: true (YSUITE tasks need one)"
    ]


def test_leadsquared_needs_owners_when_the_rep_comes_from_each_event(tmp_path: Path) -> None:
    text = LEADSQUARED.replace(
        "rep: {email: rep@company.com}", "rep: {from: attendee, domain: company.com}"
    )
    env = {"LSQ_ACCESS": "x", "LSQ_SECRET": "y"}
    assert problems(tmp_path, text, env) == [
        "routes.team.options.owners: list the owners whose appointments syncd reads "
        "(needed when rep is not a fixed email)"
    ]
    with_owners = text.replace(
        "related_entity_id: lead-1}", "related_entity_id: lead-1, owners: [a@company.com]}"
    )
    assert load(tmp_path, with_owners, env).routes["team"].options["owners"] == ["a@company.com"]
