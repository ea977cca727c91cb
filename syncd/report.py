"""Text for people: the plan table, run summaries and `syncd status`."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Any

from syncd.model import event_snapshot
from syncd.plan import Op
from syncd.runner import RunReport

PLAN_COLUMNS = ("route", "action", "side", "case", "key", "title", "changed")


def plan_rows(report: RunReport) -> list[dict[str, str]]:
    """One row per op (held deletes marked), for the table and for `--json`."""
    rows = [_row(report.route, op, "") for op in report.ops if op.action != "mark_missing"]
    rows += [_row(report.route, op, " (held)") for op in report.held]
    return rows


def _row(route: str, op: Op, suffix: str) -> dict[str, str]:
    item = op.source or op.target
    return {
        "route": route,
        "action": op.action + suffix,
        "side": op.side or "state",
        "case": op.case,
        "key": op.vendor_key if op.side == "vendor" else op.cal_key,
        "title": item.record.event.title if item else "",
        "changed": ",".join(sorted(op.changed)),
    }


def plan_json(reports: Iterable[RunReport]) -> str:
    """The plan for machines: every op with the content it would write."""
    ops: list[dict[str, object]] = []
    for report in reports:
        for op in (*report.ops, *report.held):
            item = op.source or op.target
            ops.append(
                _row(report.route, op, "")
                | {
                    "held": op in report.held,
                    "cal_key": op.cal_key,
                    "vendor_key": op.vendor_key,
                    "event": event_snapshot(item.record.event) if item else None,
                }
            )
    return json.dumps({"ops": ops}, indent=2)


def table(rows: Sequence[dict[str, Any]], columns: Sequence[str], width: int = 48) -> str:
    """A plain fixed-width table; long cells are cut with an ellipsis."""
    cells = [[_cut(str(row.get(c, "")), width) for c in columns] for row in rows]
    sizes = [max([len(c)] + [len(r[i]) for r in cells]) for i, c in enumerate(columns)]
    lines = ["  ".join(c.upper().ljust(s) for c, s in zip(columns, sizes, strict=True))]
    lines += ["  ".join(v.ljust(s) for v, s in zip(r, sizes, strict=True)) for r in cells]
    return "\n".join(line.rstrip() for line in lines)


def _cut(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def summary(report: RunReport) -> str:
    """One line per route run."""
    counts = ", ".join(f"{v} {k}" for k, v in sorted(report.counts.items()) if v)
    line = f"{report.route}: {report.outcome}" + (f" ({counts})" if counts else "")
    if report.error:
        line += f"\n  error: {report.error}"
    if report.held:
        line += (
            f"\n  {len(report.held)} deletes held by the safety guard; "
            f"`syncd release {report.route}` carries them out"
        )
    return line


def route_status(
    name: str,
    health: dict[str, Any] | None,
    last_run: dict[str, Any] | None,
    details: dict[str, list[dict[str, Any]]],
) -> str:
    """`syncd status` for one route."""
    if health is None:
        return f"{name}: never run"
    lines = [
        f"{name}: {health['state']} since {health['since']}",
        f"  last run {health['last_run_at']}, last success {health['last_success_at'] or 'never'}",
        f"  linked {health['linked']}, quarantined {health['quarantined']}, held deletes "
        f"{health['held_deletes']}, conflicts {health['conflicts']}",
    ]
    if last_run:
        counts = json.loads(last_run["counts"] or "{}")
        done = ", ".join(f"{v} {k}" for k, v in sorted(counts.items()) if v) or "no changes"
        lines.append(f"  last outcome {last_run['outcome']}: {done}")
    if health["last_error"]:
        lines.append(f"  error: {health['last_error']}")
    lines += _section("quarantined", details["quarantined"], "{side} {key}: {reason}")
    lines += _section("kept different", details["notes"], "{key} {title}: {note}")
    lines += _section(
        "creates in flight (resolved by marker on the next run)",
        details["pending"],
        "{side} {cal_key} since {started_at}",
    )
    lines += _section(
        "held deletes (syncd release " + name + ")", details["held"], "{side} {vendor_key} {title}"
    )
    conflicts = [row | {"lost": losing_version(row)} for row in details["conflicts"]]
    lines += _section(
        "conflicts (the losing version is kept in the conflicts table)",
        conflicts,
        "{detected_at} {cal_key} won by {winner}; {lost}",
    )
    return "\n".join(lines)


def losing_version(row: dict[str, Any]) -> str:
    """A conflict's losing side, as the fields where it differed from the winner's."""
    calendar, vendor = json.loads(row["calendar_snapshot"]), json.loads(row["vendor_snapshot"])
    loser, won, side = (
        (vendor, calendar, "vendor")
        if row["winner"] == "calendar"
        else (calendar, vendor, "calendar")
    )
    differences = [f"{name} {loser[name]!r}" for name in loser if loser[name] != won.get(name)]
    return f"{side} had " + (", ".join(differences) or "the same content")


def _section(title: str, rows: list[dict[str, Any]], pattern: str, most: int = 20) -> list[str]:
    if not rows:
        return []
    lines = [f"  {title}:"] + [f"    {pattern.format(**row)}" for row in rows[:most]]
    if len(rows) > most:
        lines.append(f"    … and {len(rows) - most} more")
    return lines
