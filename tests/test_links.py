"""A route's links as columns (`syncd.links`): what a planning run reads of every link."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, timedelta

from syncd.links import LinkIndex
from syncd.model import Link, Window

NOW = datetime(2027, 3, 1, 9, tzinfo=UTC)
WINDOW = Window(NOW, NOW + timedelta(days=7))


def link(key: str, **fields: object) -> Link:
    return replace(Link(f"VEVENT:{key}:-", f"cal:{key}", "fp", "fp"), **fields)  # type: ignore[arg-type]


def test_a_links_token_says_whether_its_original_start_lies_in_the_window() -> None:
    """The window flag is the one `Window.holds` gives the link's anchor, a date from its
    UTC midnight, the end excluded; a link without an anchor counts as inside."""
    anchors = [None, NOW, NOW - timedelta(microseconds=1), WINDOW.end, date(2027, 3, 2)]
    links = [link(f"e{n}", anchor=anchor) for n, anchor in enumerate(anchors)]
    index = LinkIndex.of(links)
    flags = [index.token(row, WINDOW)[1] for row in range(len(index))]
    assert flags == [True, True, False, False, True]
    assert flags[1:] == [WINDOW.holds(anchor) for anchor in anchors[1:] if anchor is not None]


def test_a_links_token_changes_with_anything_the_link_holds() -> None:
    """The hash stands for the whole link: a fingerprint, a missing mark, a remote id
    that changed change the token (and so the UID's signature); an equal link does not."""
    base = link("e0", anchor=NOW)
    changed = [
        replace(base, vendor_fp="other"),
        replace(base, missing="vendor"),
        replace(base, remote_id="r-1"),
        replace(base, accepted=True),
    ]
    token = LinkIndex.of([base]).token(0, WINDOW)
    assert LinkIndex.of([replace(base)]).token(0, WINDOW) == token
    assert all(LinkIndex.of([each]).token(0, WINDOW) != token for each in changed)
    assert (
        LinkIndex.of([changed[1]]).missing(0) == "vendor" and LinkIndex.of([base]).missing(0) == ""
    )


def test_the_links_of_chosen_rows_are_loaded_in_the_order_asked() -> None:
    index = LinkIndex.of([link("a"), link("b"), link("c")])
    assert [each.cal_key for each in index.load([2, 0])] == ["VEVENT:c:-", "VEVENT:a:-"]
    assert index.vendor_keys == ["cal:a", "cal:b", "cal:c"] and len(index) == 3


def test_the_links_of_one_series_share_one_uid_string() -> None:
    """Regression: each link's UID was sliced from its key on its own, 10,102 strings for
    the bench route's 2,372 UIDs, held while a run plans."""
    keys = [f"VEVENT:series-1:2027030{day}T090000Z" for day in range(1, 6)]
    links = [Link(key, f"cal:{n}", "fp", "fp") for n, key in enumerate(keys)]
    index = LinkIndex.of([*links, Link("VEVENT:single:", "cal:s", "fp", "fp")])
    assert index.uids == ["series-1"] * 5 + ["single"]
    assert len({id(uid) for uid in index.uids}) == 2
