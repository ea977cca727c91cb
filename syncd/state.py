"""The state store: one SQLite file that people can read while the daemon runs.

The only module that imports sqlite-utils. WAL mode and a busy timeout let `sqlite3`,
`datasette` and `syncd status` read while a sync writes. Schema changes are versioned
migrations (`sqlite_utils.Migrations`); every write happens inside `db.atomic()`.
Timestamps are ISO-8601 UTC text, snapshots JSON. No secret is ever written here.
"""

from __future__ import annotations

import json
import os
import socket
import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import sqlite_utils
from sqlite_utils import Migrations

from syncd.errors import RouteBusy, SyncdError
from syncd.links import LinkIndex
from syncd.model import Link, Window, as_utc, moment_text, parse_moment

BUSY_TIMEOUT_MS = 10_000
migrations = Migrations("syncd")


class StateError(SyncdError):
    """The state file cannot be used as asked."""


StoredSource = tuple[str, Window, dict[str, tuple[str, str]]]
"""A source's kept expansion: its body digest, the window covered, {uid: (digest, data)}."""


def utc_now() -> str:
    """Now as ISO-8601 UTC text, the one timestamp format of the store."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@migrations()
def m001_initial(db: sqlite_utils.Database) -> None:
    """The first schema: links, intents, runs, quarantine, tombstones, held deletes,
    conflicts, locks and route health."""
    db.table("links").create(
        {
            "route": str,
            "cal_key": str,
            "vendor_key": str,
            "remote_id": str,
            "uid": str,
            "rid": str,
            "title": str,
            "anchor": str,
            "cal_fp": str,
            "vendor_fp": str,
            "cal_version": str,
            "vendor_version": str,
            "missing": str,
            "accepted": int,
            "note": str,
            "origin": str,
            "linked_at": str,
            "synced_at": str,
        },
        pk=("route", "cal_key"),
    )
    db.table("links").create_index(["route", "vendor_key"], unique=True)
    db.table("pending_creates").create(
        {"route": str, "side": str, "cal_key": str, "vendor_key": str, "started_at": str},
        pk=("route", "side", "cal_key"),
    )
    db.table("runs").create(
        {
            "id": int,
            "route": str,
            "trigger": str,
            "started_at": str,
            "finished_at": str,
            "outcome": str,
            "counts": str,
            "error": str,
        },
        pk="id",
    )
    db.table("runs").create_index(["route", "started_at"])
    db.table("quarantine").create(
        {
            "route": str,
            "side": str,
            "key": str,
            "reason": str,
            "fp": str,
            "first_seen": str,
            "last_seen": str,
            "attempts": int,
            "retry": int,
        },
        pk=("route", "side", "key"),
    )
    db.table("tombstones").create(
        {"route": str, "side": str, "key": str, "reason": str, "deleted_at": str},
        pk=("route", "side", "key"),
    )
    db.table("held_deletes").create(
        {
            "route": str,
            "side": str,
            "cal_key": str,
            "vendor_key": str,
            "case": str,
            "title": str,
            "held_at": str,
        },
        pk=("route", "side", "cal_key"),
    )
    db.table("conflicts").create(
        {
            "id": int,
            "route": str,
            "cal_key": str,
            "vendor_key": str,
            "winner": str,
            "calendar_snapshot": str,
            "vendor_snapshot": str,
            "detected_at": str,
        },
        pk="id",
    )
    db.table("locks").create(
        {"route": str, "holder": str, "pid": int, "host": str, "acquired_at": str}, pk="route"
    )
    db.table("route_health").create(
        {
            "route": str,
            "state": str,
            "since": str,
            "last_error": str,
            "last_run_at": str,
            "last_success_at": str,
            "failures": int,
        },
        pk="route",
    )
    _create_views(db)


@migrations()
def m002_route_settings(db: sqlite_utils.Database) -> None:
    """What each route last synced with (its vendor kind and options), so `check-config`
    can warn about changes a vendor cannot follow (Apptoto cannot move events)."""
    db.table("route_settings").create(
        {"route": str, "vendor_kind": str, "options": str, "recorded_at": str}, pk="route"
    )


@migrations()
def m003_block_cache(db: sqlite_utils.Database) -> None:
    """Each calendar source's expansion per UID group, so a restart (or a one-shot
    `syncd sync`) re-parses only the groups that changed (issue 6)."""
    db.table("block_sources").create(
        {
            "calendar": str,
            "source": str,
            "stamp": str,
            "digest": str,
            "covers_start": str,
            "covers_end": str,
        },
        pk=("calendar", "source"),
    )
    db.table("block_cache").create(
        {"calendar": str, "source": str, "uid": str, "digest": str, "data": str},
        pk=("calendar", "source", "uid"),
    )


def _create_views(db: sqlite_utils.Database) -> None:
    db.create_view(
        "route_status",
        """
        SELECT h.route, h.state, h.since, h.last_run_at, h.last_success_at, h.failures,
               h.last_error,
               (SELECT count(*) FROM links l WHERE l.route = h.route) AS linked,
               (SELECT count(*) FROM quarantine q WHERE q.route = h.route) AS quarantined,
               (SELECT count(*) FROM held_deletes d WHERE d.route = h.route) AS held_deletes,
               (SELECT count(*) FROM conflicts c WHERE c.route = h.route) AS conflicts
        FROM route_health h""",
    )
    db.create_view(
        "items_in_error",
        """
        SELECT route, side, key, reason, attempts, first_seen, last_seen,
               CASE retry WHEN 1 THEN 'queued for retry' ELSE 'quarantined' END AS state
        FROM quarantine ORDER BY route, last_seen DESC""",
    )
    db.create_view(
        "vendor_key_map",
        """
        SELECT route, vendor_key, remote_id, uid, rid, title, anchor AS starts, origin,
               synced_at
        FROM links ORDER BY route, anchor""",
    )


@dataclass(frozen=True)
class LinkRow:
    """Everything `record_links` writes: the plan's `Link` plus what people read."""

    link: Link
    uid: str = ""
    rid: str = ""
    title: str = ""
    cal_version: str = ""
    vendor_version: str = ""
    note: str = ""
    origin: str = "created"


CACHE_KIB = -512
"""SQLite's page cache, in KiB (negative: a size, not a page count). The default 2 MiB
fills with link and block pages and stays resident in the daemon for good; a file this
size is read from the OS's cache just as fast."""


class State:
    """The state store of one config: open it, read and write routes' rows, close it."""

    def __init__(self, path: Path | None, *, read_only: bool = False) -> None:
        """Open (and migrate) the file at `path`; `None` is an empty store in memory, for
        dry runs that must not create a file; `read_only` opens an existing file for
        `status` and `plan`, which must write nothing (so it is not migrated either)."""
        self.path = path
        self.writable = not read_only
        if path is None:
            self.db = sqlite_utils.Database(memory=True)
        elif read_only:
            self.db = sqlite_utils.Database(sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True))
            self.db.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            if migrations.pending(self.db):
                raise StateError(f"{path} was written by an older syncd: run `syncd sync` first")
            return
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            self.db = sqlite_utils.Database(path)
            self.db.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            self.db.enable_wal()
            # WAL + NORMAL: a commit survives a killed process; only a power loss can
            # drop the newest commits, and intents (below) are written with FULL.
            self.db.execute("PRAGMA synchronous = NORMAL")
            self.db.execute(f"PRAGMA cache_size = {CACHE_KIB}")
        migrations.apply(self.db)

    def others_wrote(self) -> int:
        """A number that changes whenever another connection commits (`data_version`):
        another process synced, reset or released a route."""
        return int(self.db.execute("PRAGMA data_version").fetchone()[0])

    def close(self) -> None:
        """Close the connection (everything is already committed)."""
        self.db.close()

    def _rows(self, sql: str, params: Iterable[Any] = ()) -> list[dict[str, Any]]:
        cursor = self.db.execute(sql, list(params))
        names = [column[0] for column in cursor.description]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]

    # --- the route lock -----------------------------------------------------------------

    @contextmanager
    def locked(self, route: str, holder: str) -> Iterator[None]:
        """Hold the route's lock for the block; raise `RouteBusy` when someone else has it."""
        self.acquire(route, holder)
        try:
            yield
        finally:
            self.release(route, holder)

    def acquire(self, route: str, holder: str) -> None:
        """Take the route's lock, or take over one whose holder died on this host."""
        row = {
            "route": route,
            "holder": holder,
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "acquired_at": utc_now(),
        }
        with self.db.atomic():
            self.db.table("locks").insert(row, ignore=True)  # a write first: it takes the lock
            current = self._rows("SELECT * FROM locks WHERE route = ?", [route])[0]
            if current["holder"] != holder and _holder_alive(current):
                raise RouteBusy(route, f"{current['holder']} (pid {current['pid']})")
            self.db.table("locks").upsert(row, pk="route")

    def release(self, route: str, holder: str) -> None:
        """Let go of the route's lock if we hold it."""
        with self.db.atomic():
            self.db.execute("DELETE FROM locks WHERE route = ? AND holder = ?", [route, holder])

    # --- the block cache (calendars/reuse.py) ---------------------------------------------

    def load_parts(self, calendar: str, source: str, stamp: str) -> StoredSource | None:
        """A source's kept expansion: (body digest, window covered, {uid: (digest, data)}),
        or None when there is none written by this `stamp` (syncd version and settings)."""
        rows = self._rows(
            "SELECT * FROM block_sources WHERE calendar = ? AND source = ? AND stamp = ?",
            [calendar, source, stamp],
        )
        if not rows:
            return None
        parts = self.db.execute(
            "SELECT uid, digest, data FROM block_cache WHERE calendar = ? AND source = ?",
            [calendar, source],
        ).fetchall()  # one snapshot: a save replaces head and parts in one transaction
        row = rows[0]
        covers = Window(*(as_utc(parse_moment(row[n])) for n in ("covers_start", "covers_end")))
        return row["digest"], covers, {uid: (digest, data) for uid, digest, data in parts}

    def save_parts(
        self,
        calendar: str,
        source: str,
        head: tuple[str, str, Window],
        changed: dict[str, tuple[str, str]],
        removed: Iterable[str],
        expected: str | None = None,
    ) -> bool:
        """Keep a source's expansion: `head` is (stamp, body digest, window covered).
        With `expected` (the body digest the caller last stored), only the groups
        `changed` and `removed` are written, and only if the stored head is still that
        one under the same stamp (another process may have written since): False, and
        nothing written, otherwise. Without it, `changed` replaces every stored group."""
        if not self.writable:
            return True  # `syncd plan` and `status` write nothing
        stamp, digest, covers = head
        with self.db.atomic():
            if expected is not None:
                stored = self.db.execute(
                    "SELECT stamp, digest FROM block_sources WHERE calendar = ? AND source = ?",
                    [calendar, source],
                ).fetchone()
                if stored is None or tuple(stored) != (stamp, expected):
                    return False
            else:
                self.db.execute(
                    "DELETE FROM block_cache WHERE calendar = ? AND source = ?", [calendar, source]
                )
            self.db.execute(
                "INSERT OR REPLACE INTO block_sources VALUES (?, ?, ?, ?, ?, ?)",
                [
                    calendar,
                    source,
                    stamp,
                    digest,
                    moment_text(covers.start),
                    moment_text(covers.end),
                ],
            )
            self.db.conn.executemany(
                "INSERT OR REPLACE INTO block_cache VALUES (?, ?, ?, ?, ?)",
                [(calendar, source, uid, d, data) for uid, (d, data) in changed.items()],
            )
            self.db.conn.executemany(
                "DELETE FROM block_cache WHERE calendar = ? AND source = ? AND uid = ?",
                [(calendar, source, uid) for uid in removed],
            )
        return True

    def retain_parts(self, calendar: str, sources: set[str]) -> None:
        """Forget the kept expansions of a calendar's sources that are gone (files
        deleted, objects removed, even while syncd was not running)."""
        if not self.writable:
            return
        stored = self.db.execute(
            "SELECT source FROM block_sources WHERE calendar = ?", [calendar]
        ).fetchall()
        for (source,) in stored:
            if source not in sources:
                self.drop_parts(calendar, source)

    def drop_parts(self, calendar: str, source: str | None = None) -> None:
        """Forget a calendar's kept expansions (a full resync), or one source's."""
        if not self.writable:
            return
        where, params = "calendar = ?", [calendar]
        if source is not None:
            where, params = "calendar = ? AND source = ?", [calendar, source]
        with self.db.atomic():
            self.db.execute(f"DELETE FROM block_sources WHERE {where}", params)
            self.db.execute(f"DELETE FROM block_cache WHERE {where}", params)

    # --- links --------------------------------------------------------------------------

    def has_links(self, route: str) -> bool:
        """Whether the route has synced anything yet (a route without links is on its
        first sync, or its first after `syncd reset`)."""
        query = "SELECT 1 FROM links WHERE route = ? LIMIT 1"
        return self.db.execute(query, [route]).fetchone() is not None

    def links(self, route: str) -> tuple[Link, ...]:
        """Every link of the route, by calendar key (a planning run reads them as
        `link_index`)."""
        return tuple(self._plan_links(route))

    def link_index(self, route: str) -> LinkIndex:
        """Every link of the route as a planning run first reads them (`syncd.links`):
        each row is made a link, noted and dropped; the links of the UIDs the run plans
        are read again when it asks (`links_by_key`)."""
        index = LinkIndex(lambda keys: self.links_by_key(route, keys))
        for link in self._plan_links(route):
            index.add(link)
        return index

    def _plan_links(self, route: str) -> Iterator[Link]:
        """The route's links by calendar key, one row at a time and only the columns the
        plan reads (a big route's links as dicts of every column were the biggest passing
        allocation of a run)."""
        for row in self.db.execute(f"{_SELECT_PLAN_COLUMNS} ORDER BY cal_key", [route]):
            yield _link(*row)

    def links_by_key(self, route: str, cal_keys: Sequence[str]) -> tuple[Link, ...]:
        """The route's links with these calendar keys, in that order (a key without
        one is left out), read a few hundred keys a statement."""
        found: dict[str, Link] = {}
        for start in range(0, len(cal_keys), _KEYS_A_STATEMENT):
            chunk = list(cal_keys[start : start + _KEYS_A_STATEMENT])
            marks = ", ".join("?" * len(chunk))
            rows = self.db.execute(
                f"{_SELECT_PLAN_COLUMNS} AND cal_key IN ({marks})", [route, *chunk]
            )
            found.update((link.cal_key, link) for link in (_link(*row) for row in rows))
        return tuple(found[key] for key in cal_keys if key in found)

    def record_links(self, route: str, rows: Iterable[tuple[LinkRow, str]]) -> None:
        """Write several links in one transaction: (row, the key it replaces or ""). A
        re-keyed link keeps when it was first linked and how."""
        now, rows = utc_now(), list(rows)
        with self.db.atomic():
            pending: list[dict[str, Any]] = []  # written in order, a re-key where it falls
            for row, replaces in rows:
                if replaces and replaces != row.link.cal_key:
                    self.db.conn.executemany(_UPSERT_LINK, pending)
                    pending = []
                    self._rekey_link(route, replaces, row.link.cal_key)
                pending.append(_link_values(route, row, now))
            self.db.conn.executemany(_UPSERT_LINK, pending)
            self._clear_stale(route, [row.link for row, _ in rows])

    def _rekey_link(self, route: str, old_key: str, new_key: str) -> None:
        self._delete_link(route, new_key)
        self.db.execute(
            "UPDATE links SET cal_key = ? WHERE route = ? AND cal_key = ?",
            [new_key, route, old_key],
        )

    def _clear_stale(self, route: str, links: list[Link]) -> None:
        """Both sides hold these items now: their intents, quarantine and tombstones are
        stale. Only tables that hold rows of the route are touched (usually none)."""
        for table in self._stale_tables(route):
            for sql, key in _STALE_ROWS[table]:
                self.db.conn.executemany(sql, ((route, getattr(link, key)) for link in links))

    def _stale_tables(self, route: str) -> frozenset[str]:
        """The route's tables a new link may make stale, among those that hold rows."""
        return frozenset(
            table
            for table in _STALE_ROWS
            if self.db.execute(f"SELECT 1 FROM {table} WHERE route = ? LIMIT 1", [route]).fetchone()
        )

    def forget_link(self, route: str, cal_key: str, tombstone: tuple[str, str, str] | None) -> None:
        """Drop a link; remember a deletion as a tombstone (side, key, reason)."""
        with self.db.atomic():
            self._delete_link(route, cal_key)
            if tombstone:
                self._tombstone(route, *tombstone)

    def _delete_link(self, route: str, cal_key: str) -> None:
        self.db.execute("DELETE FROM links WHERE route = ? AND cal_key = ?", [route, cal_key])

    def mark_missing(self, route: str, cal_key: str, side: str) -> None:
        """Note that a complete listing of `side` did not show the linked record."""
        with self.db.atomic():
            self.db.execute(
                "UPDATE links SET missing = ? WHERE route = ? AND cal_key = ?",
                [side, route, cal_key],
            )

    # --- create intents (crash safety) ---------------------------------------------------

    def intend_create(self, route: str, side: str, cal_key: str, vendor_key: str) -> None:
        """Commit the intent to create before the create request leaves."""
        row = {
            "route": route,
            "side": side,
            "cal_key": cal_key,
            "vendor_key": vendor_key,
            "started_at": utc_now(),
        }
        self.db.execute("PRAGMA synchronous = FULL")  # durable before the request leaves
        try:
            with self.db.atomic():
                self.db.table("pending_creates").upsert(row, pk=("route", "side", "cal_key"))
        finally:
            self.db.execute("PRAGMA synchronous = NORMAL")

    def pending_creates(self, route: str) -> list[dict[str, Any]]:
        """Creates that were started and never recorded: a crash came in between."""
        return self._rows("SELECT * FROM pending_creates WHERE route = ?", [route])

    # --- tombstones ---------------------------------------------------------------------

    def tombstones(self, route: str) -> list[dict[str, Any]]:
        """The deletions the route remembers."""
        return self._rows("SELECT * FROM tombstones WHERE route = ?", [route])

    def _tombstone(self, route: str, side: str, key: str, reason: str) -> None:
        row = {"route": route, "side": side, "key": key, "reason": reason, "deleted_at": utc_now()}
        self.db.table("tombstones").upsert(row, pk=("route", "side", "key"))

    def quarantine(self, route: str, side: str, key: str, reason: str, fp: str = "") -> None:
        """Put an item aside with its reason and the fingerprint it had; count how often
        it came back."""
        now = utc_now()
        with self.db.atomic():
            self.db.execute(
                """INSERT INTO quarantine (route, side, key, reason, fp, first_seen, last_seen,
                                           attempts, retry)
                   VALUES (?, ?, ?, ?, ?, ?, ?, 1, 0)
                   ON CONFLICT (route, side, key) DO UPDATE SET reason = excluded.reason,
                     fp = excluded.fp, last_seen = excluded.last_seen,
                     attempts = attempts + 1, retry = 0""",
                [route, side, key, reason, fp, now, now],
            )

    def parked(self, route: str, side: str) -> dict[str, str]:
        """Writes put aside and not queued for retry: key -> the fingerprint they had."""
        rows = self._rows(
            "SELECT key, fp FROM quarantine WHERE route = ? AND side = ? AND retry = 0",
            [route, side],
        )
        return {row["key"]: row["fp"] for row in rows}

    def set_listing_problems(self, route: str, problems: Iterable[tuple[str, str]]) -> None:
        """This run's unreadable items (key, reason) replace the last run's: a problem
        that was fixed leaves the quarantine on its own."""
        now, rows = utc_now(), list(problems)
        with self.db.atomic():
            keys = [key for key, _ in rows]
            marks = ",".join("?" * len(keys))
            self.db.execute(
                "DELETE FROM quarantine WHERE route = ? AND side = 'listing' "
                f"AND key NOT IN ({marks})",
                [route, *keys],
            )
            for key, reason in rows:
                self.db.execute(
                    """INSERT INTO quarantine (route, side, key, reason, fp, first_seen,
                                               last_seen, attempts, retry)
                       VALUES (?, 'listing', ?, ?, '', ?, ?, 1, 0)
                       ON CONFLICT (route, side, key) DO UPDATE SET reason = excluded.reason,
                         last_seen = excluded.last_seen, attempts = attempts + 1""",
                    [route, key, reason, now, now],
                )

    def quarantined(self, route: str) -> list[dict[str, Any]]:
        """The route's quarantined items, newest first."""
        return self._rows(
            "SELECT * FROM quarantine WHERE route = ? ORDER BY last_seen DESC", [route]
        )

    def queue_retry(self, route: str) -> int:
        """`syncd retry`: every quarantined write is tried again on the next run."""
        with self.db.atomic():
            cursor = self.db.execute("UPDATE quarantine SET retry = 1 WHERE route = ?", [route])
            return cursor.rowcount

    # --- held deletes -------------------------------------------------------------------

    def hold_deletes(self, route: str, rows: Iterable[dict[str, str]]) -> None:
        """Replace the route's held deletes with this run's."""
        now = utc_now()
        with self.db.atomic():
            self.db.execute("DELETE FROM held_deletes WHERE route = ?", [route])
            self.db.table("held_deletes").insert_all(
                ({**row, "route": route, "held_at": now} for row in rows),
                pk=("route", "side", "cal_key"),
                replace=True,
            )

    def held_deletes(self, route: str) -> list[dict[str, Any]]:
        """Deletes the safety guard held back, waiting for `syncd release`."""
        return self._rows("SELECT * FROM held_deletes WHERE route = ?", [route])

    # --- conflicts ----------------------------------------------------------------------

    def add_conflict(
        self,
        route: str,
        cal_key: str,
        vendor_key: str,
        winner: str,
        snapshots: tuple[dict[str, Any], dict[str, Any]],
    ) -> None:
        """Keep both versions of a conflict; the loser is never just dropped."""
        row = {
            "route": route,
            "cal_key": cal_key,
            "vendor_key": vendor_key,
            "winner": winner,
            "calendar_snapshot": json.dumps(snapshots[0]),
            "vendor_snapshot": json.dumps(snapshots[1]),
            "detected_at": utc_now(),
        }
        with self.db.atomic():
            self.db.table("conflicts").insert(row)

    def notes(self, route: str) -> list[dict[str, Any]]:
        """Linked items whose sides differ on purpose (what a vendor cannot hold or
        apply), and records a side could not delete."""
        noted = self._rows(
            "SELECT vendor_key AS key, title, note FROM links WHERE route = ? AND note != '' "
            "ORDER BY anchor",
            [route],
        )
        undeleted = self._rows(
            "SELECT key, '' AS title, 'the vendor cannot delete it' AS note "
            "FROM tombstones WHERE route = ? AND reason = 'cannot_delete'",
            [route],
        )
        return noted + undeleted

    def conflicts(self, route: str) -> list[dict[str, Any]]:
        """The route's recorded conflicts, newest first."""
        return self._rows("SELECT * FROM conflicts WHERE route = ? ORDER BY id DESC", [route])

    # --- runs and health ----------------------------------------------------------------

    def begin_run(self, route: str, trigger: str) -> int:
        """Record that a run started; returns its id."""
        with self.db.atomic():
            table = self.db.table("runs")
            table.insert(
                {
                    "route": route,
                    "trigger": trigger,
                    "started_at": utc_now(),
                    "outcome": "running",
                    "counts": "{}",
                    "error": "",
                }
            )
            return int(str(table.last_pk))

    def finish_run(
        self, run_id: int, route: str, outcome: str, counts: dict[str, int], error: str = ""
    ) -> str:
        """Close a run and update the route's health; returns the previous health state."""
        now = utc_now()
        with self.db.atomic():
            self.db.table("runs").update(
                run_id,
                {
                    "finished_at": now,
                    "outcome": outcome,
                    "counts": json.dumps(counts),
                    "error": error,
                },
            )
            return self._set_health(route, outcome, error, now)

    def fail_unfinished_runs(self, route: str, error: str) -> str:
        """Close as failed the route's runs a dead process left open (call holding the
        route's lock: no run of it can be going on then), or record one failed run when
        there is none; returns the route's health before."""
        now = utc_now()
        closed = {"finished_at": now, "outcome": "failed", "error": error}
        with self.db.atomic():
            cursor = self.db.execute(
                "UPDATE runs SET finished_at = :finished_at, outcome = :outcome, error = :error "
                "WHERE route = :route AND finished_at IS NULL",
                closed | {"route": route},
            )
            if not cursor.rowcount:
                row = {"route": route, "trigger": "daemon", "started_at": now, "counts": "{}"}
                self.db.table("runs").insert(row | closed)
            return self._set_health(route, "failed", error, now)

    def _set_health(self, route: str, outcome: str, error: str, now: str) -> str:
        rows = self._rows("SELECT * FROM route_health WHERE route = ?", [route])
        fresh: dict[str, Any] = {"state": "new", "since": now, "failures": 0, "last_success_at": ""}
        old = rows[0] if rows else fresh
        state = "failing" if outcome == "failed" else "ok"
        health = {
            "route": route,
            "state": state,
            "last_run_at": now,
            "last_error": error,
            "since": old["since"] if old["state"] == state else now,
            "failures": int(old["failures"]) + 1 if state == "failing" else 0,
            "last_success_at": old["last_success_at"] if state == "failing" else now,
        }
        self.db.table("route_health").upsert(health, pk="route")
        return str(old["state"])

    def remember_settings(self, route: str, vendor_kind: str, options: dict[str, Any]) -> None:
        """Record what the route just synced with."""
        row = {
            "route": route,
            "vendor_kind": vendor_kind,
            "recorded_at": utc_now(),
            "options": json.dumps(options, sort_keys=True, default=str),
        }
        with self.db.atomic():
            self.db.table("route_settings").upsert(row, pk="route")

    def settings_of(self, route: str) -> dict[str, Any] | None:
        """What the route last synced with: {"vendor_kind", "options"}, or None."""
        rows = self._rows("SELECT * FROM route_settings WHERE route = ?", [route])
        if not rows:
            return None
        return {"vendor_kind": rows[0]["vendor_kind"], "options": json.loads(rows[0]["options"])}

    def status(self) -> list[dict[str, Any]]:
        """One row per route from the `route_status` view."""
        return self._rows("SELECT * FROM route_status ORDER BY route")

    def last_run(self, route: str) -> dict[str, Any] | None:
        """The route's newest finished run."""
        rows = self._rows(
            "SELECT * FROM runs WHERE route = ? AND finished_at IS NOT NULL "
            "ORDER BY id DESC LIMIT 1",
            [route],
        )
        return rows[0] if rows else None

    # --- reset --------------------------------------------------------------------------

    def reset(self, route: str) -> None:
        """Forget everything about a route (`syncd reset`); its runs stay as history."""
        with self.db.atomic():
            for table in (
                "links",
                "pending_creates",
                "quarantine",
                "tombstones",
                "held_deletes",
                "route_health",
            ):
                self.db.execute(f"DELETE FROM {table} WHERE route = ?", [route])


def _holder_alive(row: dict[str, Any]) -> bool:
    """A lock's holder is alive unless it ran on this host and its process is gone."""
    if row["host"] != socket.gethostname():
        return True
    try:
        os.kill(int(row["pid"]), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


_STALE_ROWS = {  # table -> (statement, the link's key it takes) for a link made
    "pending_creates": (
        ("DELETE FROM pending_creates WHERE route = ? AND cal_key = ?", "cal_key"),
    ),
    "quarantine": (("DELETE FROM quarantine WHERE route = ? AND key = ?", "cal_key"),),
    "tombstones": (
        ("DELETE FROM tombstones WHERE route = ? AND side = 'calendar' AND key = ?", "cal_key"),
        ("DELETE FROM tombstones WHERE route = ? AND side = 'vendor' AND key = ?", "vendor_key"),
    ),
}

_PLAN_COLUMNS = (
    "cal_key",
    "vendor_key",
    "cal_fp",
    "vendor_fp",
    "anchor",
    "missing",
    "accepted",
    "remote_id",
)
_SELECT_PLAN_COLUMNS = f"SELECT {', '.join(_PLAN_COLUMNS)} FROM links WHERE route = ?"
_KEYS_A_STATEMENT = 500  # under SQLite's default limit of host parameters (999 before 3.32)


def _link(
    cal_key: str,
    vendor_key: str,
    cal_fp: str,
    vendor_fp: str,
    anchor: str | None,
    missing: Literal["calendar", "vendor", ""] | None,
    accepted: int,
    remote_id: str | None,
) -> Link:
    """A link from the `_PLAN_COLUMNS` of its row. The two fingerprints are one object
    when they are equal, as they are for a link whose sides agree: a run reads every
    link of the route, and 10,000 of them held 0.8 MiB of fingerprints twice over."""
    return Link(
        cal_key=cal_key,
        vendor_key=vendor_key,
        cal_fp=cal_fp,
        vendor_fp=cal_fp if vendor_fp == cal_fp else vendor_fp,
        anchor=parse_moment(anchor) if anchor else None,
        missing=missing or "",
        accepted=bool(accepted),
        remote_id=remote_id or "",
    )


_LINK_COLUMNS = (
    *("route", "cal_key", "vendor_key", "remote_id", "uid", "rid", "title", "anchor"),
    *("cal_fp", "vendor_fp", "cal_version", "vendor_version", "missing", "accepted", "note"),
    *("origin", "linked_at", "synced_at"),
)
_UPSERT_LINK = (
    f"INSERT INTO links ({', '.join(_LINK_COLUMNS)}) "
    f"VALUES ({', '.join(f':{name}' for name in _LINK_COLUMNS[:-3])}, "
    "COALESCE(NULLIF(:origin, ''), 'created'), :now, :now) "
    "ON CONFLICT (route, cal_key) DO UPDATE SET "
    + ", ".join(f"{name} = excluded.{name}" for name in _LINK_COLUMNS[2:-3])
    + ", origin = CASE WHEN :origin = '' THEN links.origin ELSE excluded.origin END"
    + ", synced_at = excluded.synced_at"
)
"""One statement a link, run for a batch at once: a new link is linked now (and
"created" unless it says otherwise); an existing one keeps when it was linked and, when
the row says nothing, how. (sqlite-utils' `upsert` reads the table's schema on every
call: ten statements a link, most of a first sync's CPU time.)"""


def _link_values(route: str, row: LinkRow, now: str) -> dict[str, Any]:
    """The named parameters of `_UPSERT_LINK` for one link."""
    link = row.link
    return {
        "route": route,
        "cal_key": link.cal_key,
        "vendor_key": link.vendor_key,
        "remote_id": link.remote_id,
        "uid": row.uid,
        "rid": row.rid,
        "title": row.title,
        "anchor": moment_text(link.anchor) if link.anchor is not None else "",
        "cal_fp": link.cal_fp,
        "vendor_fp": link.vendor_fp,
        "cal_version": row.cal_version,
        "vendor_version": row.vendor_version,
        "missing": link.missing,
        "accepted": int(link.accepted),
        "note": row.note,
        "origin": row.origin,
        "now": now,
    }
