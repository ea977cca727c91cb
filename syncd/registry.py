"""The one place that knows every kind: config kinds -> adapters, and the runners of a
config. Adding a vendor adds one line to `VENDORS` (and its config model)."""

from __future__ import annotations

from collections.abc import Callable, Iterable

import aiohttp

from syncd.adapter import Adapter
from syncd.calendars.ics_dir import IcsDir
from syncd.calendars.ics_file import IcsFile
from syncd.calendars.ics_url import IcsUrl
from syncd.calendars.reuse import Expansions
from syncd.config import Config
from syncd.http import Budget, HttpClient
from syncd.ical import Limits
from syncd.runner import RouteRunner
from syncd.settings import (
    ApptotoOptions,
    ApptotoVendor,
    CaldavCalendar,
    CalendarConfig,
    IcsDirCalendar,
    IcsFileCalendar,
    IcsUrlCalendar,
    LeadSquaredOptions,
    LeadSquaredVendor,
    RouteConfig,
    SalesAskVendor,
    SalesloftOptions,
    SalesloftVendor,
    VendorConfig,
    YSuiteOptions,
    YSuiteVendor,
)
from syncd.state import State


def calendar_adapter(
    calendar_id: str, config: CalendarConfig, session: aiohttp.ClientSession
) -> Adapter:
    """The adapter for one configured calendar."""
    limits = Limits(config.limits.per_series, config.limits.per_calendar)
    if isinstance(config, IcsFileCalendar):
        return IcsFile(calendar_id, config.path, config.timezone, limits)
    if isinstance(config, IcsDirCalendar):
        return IcsDir(calendar_id, config.path, config.timezone, limits)
    if isinstance(config, CaldavCalendar):
        return _caldav(calendar_id, config, session, limits)
    return _ics_url(calendar_id, config, session, limits)


def _basic_auth(config: IcsUrlCalendar | CaldavCalendar) -> str:
    """The Authorization header value of a calendar's basic auth, "" without one."""
    if not config.username:
        return ""
    password = config.password.get_secret_value() if config.password else ""
    return aiohttp.encode_basic_auth(config.username, password)


def _caldav(
    calendar_id: str, config: CaldavCalendar, session: aiohttp.ClientSession, limits: Limits
) -> Adapter:
    # imported here: CalDAV brings the XML parser, a MiB of the daemon's resident
    # memory that a configuration without a CalDAV calendar never uses
    from syncd.calendars.caldav import Caldav

    authorization = _basic_auth(config)
    headers = {"Authorization": authorization} if authorization else {}
    url, timeout = config.url.get_secret_value(), config.timeout.total_seconds()
    http = HttpClient(session, url, calendar_id, headers, timeout)
    return Caldav(calendar_id, http, config.timezone, limits)


def _ics_url(
    calendar_id: str, config: IcsUrlCalendar, session: aiohttp.ClientSession, limits: Limits
) -> IcsUrl:
    return IcsUrl(
        calendar_id,
        config.url.get_secret_value(),
        session,
        config.timezone,
        _basic_auth(config),
        config.timeout.total_seconds(),
        config.max_bytes,
        limits,
    )


def http_client(
    vendor_id: str, config: VendorConfig, session: aiohttp.ClientSession, headers: dict[str, str]
) -> HttpClient:
    """The request funnel of one vendor account, with its budget and limits."""
    budget = None
    if config.rate_limit is not None:
        budget = Budget(config.rate_limit.requests, config.rate_limit.per.total_seconds())
    return HttpClient(
        session,
        config.base_url,
        vendor_id,
        headers,
        config.timeout.total_seconds(),
        budget,
        config.concurrency,
    )


# Each vendor's module is imported in its own factories, when a configuration first
# names that vendor: the five together are 2 MiB of a daemon's resident memory, and a
# daemon talks to one or two of them.


def _salesask(http: HttpClient, vendor: VendorConfig, route: RouteConfig, zone: str) -> Adapter:
    from syncd.vendors import salesask

    return salesask.SalesAsk(http)


def _salesask_headers(vendor: VendorConfig) -> dict[str, str]:
    from syncd.vendors import salesask

    assert isinstance(vendor, SalesAskVendor)
    return salesask.client_headers(vendor.api_key.get_secret_value())


def _ysuite(http: HttpClient, vendor: VendorConfig, route: RouteConfig, zone: str) -> Adapter:
    assert isinstance(vendor, YSuiteVendor)
    options = vendor.parse_options(route.options)
    assert isinstance(options, YSuiteOptions)
    from syncd.vendors import ysuite

    return ysuite.YSuite(
        http,
        account_timezone=vendor.account_timezone,
        supports_update=vendor.supports_update,
        supports_delete=vendor.supports_delete,
        cstid=options.cstid,
        deal_id=options.deal_id,
        contact_lookup=options.contact_lookup,
        users=vendor.users,
    )


def _leadsquared(http: HttpClient, vendor: VendorConfig, route: RouteConfig, zone: str) -> Adapter:
    options = vendor.parse_options(route.options)
    assert isinstance(options, LeadSquaredOptions)
    owners = list(options.owners) or ([route.rep.email] if route.rep and route.rep.email else [])
    from syncd.vendors import leadsquared

    return leadsquared.LeadSquared(
        http,
        owners=owners,
        task_type=options.task_type,
        related_entity=options.related_entity,
        related_entity_id=options.related_entity_id,
        notify_by_email=options.notify_by_email,
        reminder_minutes=options.reminder_minutes,
    )


def _apptoto(http: HttpClient, vendor: VendorConfig, route: RouteConfig, zone: str) -> Adapter:
    options = vendor.parse_options(route.options)
    assert isinstance(options, ApptotoOptions)
    from syncd.vendors import apptoto

    return apptoto.Apptoto(
        http, calendar_id=options.calendar_id, time_zone=zone, auto_messages=options.auto_messages
    )


def _apptoto_headers(vendor: VendorConfig) -> dict[str, str]:
    assert isinstance(vendor, ApptotoVendor)
    from syncd.vendors import apptoto

    return apptoto.client_headers(vendor.username, vendor.api_key.get_secret_value())


def _salesloft(http: HttpClient, vendor: VendorConfig, route: RouteConfig, zone: str) -> Adapter:
    assert isinstance(vendor, SalesloftVendor)
    options = vendor.parse_options(route.options)
    assert isinstance(options, SalesloftOptions)
    from syncd.vendors import salesloft

    return salesloft.Salesloft(
        http,
        calendar_id=options.calendar_id,
        user_guid=options.user_guid,
        rep_email=(route.rep.email or "") if route.rep else "",
        bulk_from=vendor.bulk_threshold,
    )


def _salesloft_headers(vendor: VendorConfig) -> dict[str, str]:
    assert isinstance(vendor, SalesloftVendor)
    from syncd.vendors import salesloft

    return salesloft.client_headers(vendor.api_key.get_secret_value())


def _ysuite_headers(vendor: VendorConfig) -> dict[str, str]:
    from syncd.vendors import ysuite

    return _key_pair(ysuite.client_headers, vendor)


def _leadsquared_headers(vendor: VendorConfig) -> dict[str, str]:
    from syncd.vendors import leadsquared

    return _key_pair(leadsquared.client_headers, vendor)


def _key_pair(
    headers: Callable[[str, str], dict[str, str]], vendor: VendorConfig
) -> dict[str, str]:
    assert isinstance(vendor, (YSuiteVendor, LeadSquaredVendor))
    return headers(vendor.access_key.get_secret_value(), vendor.secret_key.get_secret_value())


AdapterFactory = Callable[[HttpClient, VendorConfig, RouteConfig, str], Adapter]
"""(the account's funnel, the vendor, the route, the route calendar's time zone)."""
HeaderFactory = Callable[[VendorConfig], dict[str, str]]
VENDORS: dict[str, tuple[HeaderFactory, AdapterFactory]] = {
    "salesask": (_salesask_headers, _salesask),
    "leadsquared": (_leadsquared_headers, _leadsquared),
    "ysuite": (_ysuite_headers, _ysuite),
    "apptoto": (_apptoto_headers, _apptoto),
    "salesloft": (_salesloft_headers, _salesloft),
}
"""kind -> (the account's request headers, the adapter of one route)."""


def vendor_http(vendor_id: str, config: VendorConfig, session: aiohttp.ClientSession) -> HttpClient:
    """The request funnel of one vendor account: every route to it shares its budget."""
    headers, _ = VENDORS[config.kind]
    return http_client(vendor_id, config, session, headers(config))


def _keep_expansions(calendar: Adapter, state: State) -> None:
    """Let the calendar keep its parsed blocks in the state store, so a restart (or the
    next `syncd sync`) re-parses only what changed."""
    expansions = getattr(calendar, "expansions", None)
    if isinstance(expansions, Expansions):
        expansions.store = state


def runners(
    config: Config, state: State, session: aiohttp.ClientSession, names: Iterable[str]
) -> dict[str, RouteRunner]:
    """A runner for each named route. Routes that share a calendar share its adapter;
    routes that share a vendor account share its request funnel and rate budget."""
    calendars: dict[str, Adapter] = {}
    funnels: dict[str, HttpClient] = {}
    result: dict[str, RouteRunner] = {}
    for name in names:
        route = config.routes[name]
        if route.calendar not in calendars:
            calendars[route.calendar] = calendar_adapter(
                route.calendar, config.calendars[route.calendar], session
            )
            _keep_expansions(calendars[route.calendar], state)
        vendor = config.vendors[route.vendor]
        if route.vendor not in funnels:
            funnels[route.vendor] = vendor_http(route.vendor, vendor, session)
        zone = config.calendars[route.calendar].timezone
        adapter = VENDORS[vendor.kind][1](funnels[route.vendor], vendor, route, zone)
        result[name] = RouteRunner(
            name,
            route,
            route.calendar,
            calendars[route.calendar],
            adapter,
            state,
            vendor_kind=vendor.kind,
        )
    return result
