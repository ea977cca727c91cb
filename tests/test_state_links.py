"""Link rows in a real SQLite file: a batch is one statement a link, yet a link keeps
when it was first made and how, a re-keyed one too, and what it settles is cleared."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest

from syncd.model import Link
from syncd.state import LinkRow, State

ROUTE = "r"
DAY_ONE, DAY_TWO = "2026-11-01T09:00:00+00:00", "2026-11-02T09:00:00+00:00"


def _row(cal_key: str, vendor_key: str, origin: str = "created", title: str = "Call") -> LinkRow:
    link = Link(cal_key=cal_key, vendor_key=vendor_key, cal_fp="c", vendor_fp="v")
    return LinkRow(link, uid=cal_key, title=title, origin=origin)


def _stored(state: State) -> dict[str, dict[str, Any]]:
    return {row["cal_key"]: row for row in state._rows("SELECT * FROM links")}


def test_a_new_link_says_how_it_was_made_and_is_linked_when_synced(tmp_path: Path) -> None:
    state = State(tmp_path / "state.db")
    state.record_links(ROUTE, [(_row("a", "va", origin="imported"), ""), (_row("b", "vb"), "")])
    stored = _stored(state)
    assert (stored["a"]["origin"], stored["b"]["origin"]) == ("imported", "created")
    assert stored["a"]["linked_at"] == stored["a"]["synced_at"]


def at(monkeypatch: pytest.MonkeyPatch, moment: str) -> None:
    """The state's clock stands at `moment` (two writes in one clock tick look alike)."""
    monkeypatch.setattr("syncd.state.utc_now", lambda: moment)


def test_a_link_written_again_keeps_when_and_how_it_was_first_made(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    state = State(tmp_path / "state.db")
    at(monkeypatch, DAY_ONE)
    state.record_links(ROUTE, [(_row("a", "va", origin="imported"), "")])
    at(monkeypatch, DAY_TWO)
    state.record_links(ROUTE, [(_row("a", "va", origin="", title="Call, moved"), "a")])
    again = _stored(state)["a"]
    assert (again["origin"], again["linked_at"], again["synced_at"], again["title"]) == (
        "imported",
        DAY_ONE,
        DAY_TWO,
        "Call, moved",
    )
    state.record_links(ROUTE, [(_row("a", "va", origin="adopted"), "a")])
    assert _stored(state)["a"]["origin"] == "adopted"  # a row that says how: it counts


def test_a_rekeyed_link_keeps_when_and_how_it_was_made_under_its_new_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    state = State(tmp_path / "state.db")
    at(monkeypatch, DAY_ONE)
    state.record_links(ROUTE, [(_row("old", "va", origin="imported"), "")])
    at(monkeypatch, DAY_TWO)
    state.record_links(ROUTE, [(_row("new", "va", origin=""), "old")])
    stored = _stored(state)
    assert set(stored) == {"new"}
    assert (stored["new"]["origin"], stored["new"]["linked_at"]) == ("imported", DAY_ONE)


def test_a_batch_of_links_clears_only_its_own_settled_rows(tmp_path: Path) -> None:
    state = State(tmp_path / "state.db")
    for key in ("a", "other"):
        state.intend_create(ROUTE, "vendor", key, f"v{key}")
        state.quarantine(ROUTE, "calendar", key, "would not parse")
        state.forget_link(ROUTE, key, ("calendar", key, "deleted"))
        state.forget_link(ROUTE, key, ("vendor", f"v{key}", "deleted"))
    state.record_links(ROUTE, [(_row("a", "va"), "")])
    assert [row["cal_key"] for row in state.pending_creates(ROUTE)] == ["other"]
    assert [row["key"] for row in state.quarantined(ROUTE)] == ["other"]
    assert sorted(row["key"] for row in state.tombstones(ROUTE)) == ["other", "vother"]


def test_links_of_one_batch_are_all_written_or_none(tmp_path: Path) -> None:
    """A batch that fails (two links claiming one vendor record) leaves nothing half
    written: the next run adopts the records again by key."""
    state = State(tmp_path / "state.db")
    clash = [(_row("a", "same"), ""), (_row("b", "same"), "")]
    with pytest.raises(sqlite3.IntegrityError, match="UNIQUE"):
        state.record_links(ROUTE, clash)
    assert _stored(state) == {}


def test_a_batch_is_written_in_its_order_a_rekey_where_it_falls(tmp_path: Path) -> None:
    """A link written at one key and, later in the same batch, re-keyed to another ends
    at the new key (all re-keys first had failed the whole batch on the vendor key)."""
    state = State(tmp_path / "state.db")
    state.record_links(ROUTE, [(_row("y", "vy", origin="imported"), "")])
    batch = [(_row("y", "vy", origin=""), "y"), (_row("x", "vy", origin=""), "y")]
    state.record_links(ROUTE, batch)
    stored = _stored(state)
    assert set(stored) == {"x"} and stored["x"]["origin"] == "imported"


def test_the_state_keeps_a_small_page_cache(tmp_path: Path) -> None:
    """SQLite's default 2 MiB page cache filled with link and block pages and stayed
    resident in the daemon: a state file is opened with a 512 KiB one."""
    state = State(tmp_path / "state.db")
    assert state.db.execute("PRAGMA cache_size").fetchone()[0] == -512


def test_a_links_equal_fingerprints_are_read_back_as_one_object(tmp_path: Path) -> None:
    """Regression: a run reads every link of its route, and each link's two fingerprints
    came back as two strings even when equal (a link whose sides agree): 0.8 MiB of a
    10,000-link route's read held twice. Unequal ones stay apart."""
    state = State(tmp_path / "state.db")
    agreeing = Link(cal_key="a", vendor_key="va", cal_fp="f" * 32, vendor_fp="f" * 32)
    differing = Link(cal_key="b", vendor_key="vb", cal_fp="f" * 32, vendor_fp="g" * 32)
    rows = [(LinkRow(link, uid=link.cal_key, title="Call"), "") for link in (agreeing, differing)]
    state.record_links(ROUTE, rows)
    read = {link.cal_key: link for link in state.links(ROUTE)}
    assert read == {"a": agreeing, "b": differing}
    assert read["a"].vendor_fp is read["a"].cal_fp
    assert read["b"].vendor_fp == "g" * 32


def test_links_are_read_by_key_in_the_order_asked_past_one_statements_keys(
    tmp_path: Path,
) -> None:
    """A planning run reads the `Link` objects of the UIDs it plans by their calendar
    keys: more keys than one statement takes, in the order asked, an unknown key left
    out; and the index of every link knows them all without holding one."""
    state = State(tmp_path / "state.db")
    keys = [f"VEVENT:e{n:04}:-" for n in range(1200)]
    state.record_links(ROUTE, [(_row(key, f"v{key}"), "") for key in keys])
    asked = [*reversed(keys[100:1150]), "VEVENT:gone:-"]
    read = state.links_by_key(ROUTE, asked)
    assert [link.cal_key for link in read] == asked[:-1]
    assert all(link.vendor_key == f"v{link.cal_key}" for link in read)
    index = state.link_index(ROUTE)
    assert len(index) == 1200 and index.cal_keys == keys
    assert index.load([5, 3]) == state.links_by_key(ROUTE, [keys[5], keys[3]])
