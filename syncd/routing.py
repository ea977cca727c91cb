"""What a route does to a calendar event before the plan sees it: the rep, the
customer and the filter (DESIGN.md section 3, `rep` and `filter`). Pure functions."""

from __future__ import annotations

import sys
from dataclasses import replace

from syncd.model import Event, Person
from syncd.settings import FilterConfig, RepRule


class NoOwner(ValueError):
    """The route's rep rule finds nobody on this event: it is quarantined, not synced."""


def bind(event: Event, rep: RepRule | None) -> Event:
    """The event with its owner (the rep) and its contact (the customer) filled in."""
    owner = owner_of(event, rep)
    return replace(event, owner=owner, contact=contact_of(event, owner, rep_domain(owner, rep)))


def owner_of(event: Event, rep: RepRule | None) -> str:
    """The rep's email by the route's rule; raise `NoOwner` when the rule finds nobody."""
    if rep is None:
        return ""
    # Interned: the few reps' addresses are held once, not once per event.
    if rep.email:
        return sys.intern(rep.email.lower())
    if rep.from_ == "organizer":
        if not event.organizer:
            raise NoOwner("no rep: the event has no ORGANIZER (rep rule: from organizer)")
        return sys.intern(event.organizer.lower())
    for person in event.attendees:
        if _domain(person.email) == (rep.domain or "").lower():
            return sys.intern(person.email.lower())
    raise NoOwner(f"no rep: no attendee at {rep.domain} (rep rule: from attendee)")


def rep_domain(owner: str, rep: RepRule | None) -> str:
    """The company's domain: the rule's own, else the rep's email domain."""
    if rep is not None and rep.domain:
        return rep.domain.lower()
    return _domain(owner)


def contact_of(event: Event, owner: str, domain: str) -> Person | None:
    """The customer: the first attendee outside the company's domain."""
    for person in event.attendees:
        email = person.email.lower()
        if email and email != owner and _domain(email) != domain:
            return Person(email=email, name=person.name)
    return None


def skip_reason(event: Event, rules: FilterConfig, domain: str) -> str:
    """Why the route's filter keeps this event away from the vendor; "" when it passes."""
    checks = (
        (rules.skip_private and event.private, "private"),
        (rules.skip_declined and _declined(event), "declined by the rep"),
        (rules.skip_free and event.transparent, "shown as free"),
        (rules.skip_all_day and event.all_day, "all-day"),
        (rules.require_external_attendee and event.contact is None, "no external attendee"),
        (
            rules.title_include is not None and not rules.title_include.search(event.title),
            "title does not match title_include",
        ),
        (
            rules.title_exclude is not None and bool(rules.title_exclude.search(event.title)),
            "title matches title_exclude",
        ),
    )
    return next((reason for failed, reason in checks if failed), "")


def _declined(event: Event) -> bool:
    return any(
        p.email.lower() == event.owner and p.partstat.upper() == "DECLINED" for p in event.attendees
    )


def _domain(email: str) -> str:
    return email.rpartition("@")[2].lower()
