"""syncd beside vdirsyncer on the same loopback feed, five cases, one table.

The feed (`first_sync.generate(10000, 1000)`, about 3.7 MB) is served by this script
in a subprocess (so its CPU is nobody's) in one of four modes: with an ETag (304 on
If-None-Match), the same bytes without validators, every DTSTAMP rewritten, and 1% of
the events' SUMMARY changed. vdirsyncer (installed from PyPI into its own virtualenv
under bench/.work) syncs it into a local folder; syncd syncs it into the Sales Ask
simulator (its own process, rate limit off). Cases: (a) 304, (b) byte-identical
without ETag, (c) DTSTAMPs rewritten, (d) 1% changed, (e) first sync (run first).

Per case: vdirsyncer's `vdirsyncer sync` (a fresh process, wait4: wall, user+sys CPU,
peak RSS); syncd's route run inside one long-lived process as the daemon does it
(`route_worker.py`, a process that imports only syncd: one runner kept, sides wrapped
in `Polled` as the daemon wraps them; wall by perf_counter, CPU by process_time, which
counts the worker threads; peak RSS of that process during the run, its high-water
mark reset before each run through /proc/self/clear_refs; the first sync goes to a
child process as the daemon hands it over, and the worker's own first run follows it);
and a whole-process `syncd sync` (a fresh process each, wait4) against a second
simulator with its own state. Then the simulator's own capacity (a bare client, 8 at
a time) beside syncd's first-sync write rate.

    .venv/bin/python bench/vs_vdirsyncer.py [--events 10000] [--series 1000]
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import re
import subprocess
import sys
import time
import urllib.request
from collections import Counter
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web
from first_sync import (
    API_KEY,
    REP,
    config,
    free_port,
    generate,
    measured_run,
    sim_writes,
    start_simulator,
    wait_for_port,
)

HERE = Path(__file__).resolve().parent
WORK = HERE / ".work"
VDIR_VENV = WORK / "vdirsyncer-venv"
VDIR = VDIR_VENV / "bin" / "vdirsyncer"
MODES = ("etag", "plain", "dtstamp", "changed")
CASES = (  # (label, feed mode), in the order they run; (e) first
    ("(e) first sync", "etag"),
    ("(a) feed answers 304", "etag"),
    ("(b) same bytes, no ETag", "plain"),
    ("(c) every DTSTAMP rewritten", "dtstamp"),
    ("(d) 1% of events changed", "changed"),
)
ORDER = ("(a)", "(b)", "(c)", "(d)", "(e)")
CAPACITY_WRITES = 5000


# --- the feed server (a subprocess of this script) ---------------------------------------


def bodies(events: int, series: int) -> dict[str, bytes]:
    """The feed body of each mode; `changed` is `dtstamp` with 1% of SUMMARYs changed,
    so each case changes only what it says relative to the one before it."""
    base = generate(events, series)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    stamped = base.replace("DTSTAMP:20260101T000000Z", f"DTSTAMP:{stamp}")

    def summary(match: re.Match[str]) -> str:
        n = int(match.group(1))
        return match.group(0) if n % 100 != 7 else f"SUMMARY:Customer meeting {n} (moved)\r\n"

    changed = re.sub(r"SUMMARY:Customer meeting (\d+)\r\n", summary, stamped)
    plain = base.encode()
    return {
        "etag": plain,
        "plain": plain,
        "dtstamp": stamped.encode(),
        "changed": changed.encode(),
    }


def serve_feed(port: int, events: int, series: int) -> None:
    """Serve /feed.ics in the mode set by POST /_mode/{mode}; GET /_stats gives (and
    clears) the answers given so far, as "client status" -> count."""
    feeds = bodies(events, series)
    tags = {mode: f'"{hashlib.sha256(body).hexdigest()[:20]}"' for mode, body in feeds.items()}
    mode = ["etag"]
    stats: Counter[str] = Counter()

    async def feed(request: web.Request) -> web.Response:
        current = mode[0]
        client = request.headers.get("User-Agent", "?").split("/")[0].split(" ")[0]
        if current == "plain":
            stats[f"{client} 200"] += 1
            return web.Response(body=feeds[current], content_type="text/calendar")
        tag = tags[current]
        if request.headers.get("If-None-Match") == tag:
            stats[f"{client} 304"] += 1
            return web.Response(status=304, headers={"ETag": tag})
        stats[f"{client} 200"] += 1
        return web.Response(
            body=feeds[current], content_type="text/calendar", headers={"ETag": tag}
        )

    async def set_mode(request: web.Request) -> web.Response:
        mode[0] = request.match_info["mode"]
        return web.Response(text=mode[0])

    async def get_stats(request: web.Request) -> web.Response:
        answer = dict(stats)
        stats.clear()
        return web.json_response(answer)

    app = web.Application()
    app.router.add_get("/feed.ics", feed)
    app.router.add_post("/_mode/{mode}", set_mode)
    app.router.add_get("/_stats", get_stats)
    web.run_app(app, host="127.0.0.1", port=port, print=None, access_log=None)


# --- measuring ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Figures:
    """One measured run: wall and CPU seconds, peak RSS in MiB."""

    wall: float
    cpu: float
    rss: float
    note: str = ""


def wait4_run(argv: list[str], log: Path, stdin: str | None = None) -> Figures:
    """Run `argv` as a fresh process; its own figures (`first_sync.measured_run`, which
    keeps this process's memory out of them). Output goes to `log`."""
    with log.open("ab") as sink:
        wall, cpu, rss, code = measured_run(argv, sink, stdin)
    note = "" if code == 0 else f"exit {code}, see {log.relative_to(HERE.parent)}"
    return Figures(wall, cpu, rss, note)


def http_json(url: str, method: str = "GET") -> object:
    request = urllib.request.Request(url, method=method, data=b"" if method == "POST" else None)
    with urllib.request.urlopen(request) as answer:
        return json.loads(answer.read() or b"null")


def set_mode(feed: str, mode: str) -> None:
    urllib.request.urlopen(urllib.request.Request(f"{feed}/_mode/{mode}", data=b"")).close()


def feed_stats(feed: str) -> str:
    stats = http_json(f"{feed}/_stats")
    assert isinstance(stats, dict)
    return ", ".join(f"{key}×{count}" for key, count in sorted(stats.items())) or "none"


# --- vdirsyncer --------------------------------------------------------------------------


def install_vdirsyncer(log: Path) -> str:
    """Create bench/.work/vdirsyncer-venv once (then reuse it); vdirsyncer's version."""
    if not VDIR.exists():
        subprocess.run(["python3", "-m", "venv", str(VDIR_VENV)], check=True)
        with log.open("ab") as sink:
            subprocess.run(
                [str(VDIR_VENV / "bin" / "pip"), "install", "--quiet", "vdirsyncer>=0.19"],
                check=True,
                stdout=sink,
                stderr=sink,
            )
    out = subprocess.run([str(VDIR), "--version"], capture_output=True, text=True, check=True)
    return out.stdout.strip()


def vdirsyncer_config(folder: Path, feed_url: str) -> Path:
    (folder / "vdir-local").mkdir()
    path = folder / "vdirsyncer.conf"
    path.write_text(f"""\
[general]
status_path = "{folder / "vdir-status"}/"

[pair bench]
a = "bench_feed"
b = "bench_local"
collections = null
conflict_resolution = "a wins"

[storage bench_feed]
type = "http"
url = "{feed_url}"

[storage bench_local]
type = "filesystem"
path = "{folder / "vdir-local"}/"
fileext = ".ics"
""")
    return path


# --- syncd -------------------------------------------------------------------------------


class RouteRuns:
    """The route runs, in a worker process that imports only syncd (`route_worker.py`):
    one runner kept across runs, as the daemon keeps it."""

    def __init__(self, config_path: Path) -> None:
        argv = [sys.executable, str(HERE / "route_worker.py"), str(config_path)]
        self.worker = subprocess.Popen(
            argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=HERE.parent
        )
        self.resettable = True

    async def run(self) -> tuple[Figures, str, float, Figures | None]:
        """One timed route run: its figures, its report's counts, its seconds writing,
        and after a first sync in a child process the worker's own first run."""
        answer = await asyncio.to_thread(self._ask, "run")
        self.resettable = bool(answer["resettable"]) and self.resettable
        then = answer.get("then")
        return (
            _figures(answer),
            answer["summary"],
            answer["writing"],
            None if then is None else _figures(then),
        )

    def _ask(self, command: str) -> dict[str, Any]:
        assert self.worker.stdin is not None and self.worker.stdout is not None
        self.worker.stdin.write(f"{command}\n")
        self.worker.stdin.flush()
        line = self.worker.stdout.readline()
        if not line:
            raise RuntimeError(f"the route worker ended (exit {self.worker.wait()})")
        answer: dict[str, Any] = json.loads(line)
        return answer

    async def close(self) -> None:
        if self.worker.stdin is not None:
            self.worker.stdin.write("quit\n")
            self.worker.stdin.close()
        await asyncio.to_thread(self.worker.wait, 60)


async def capacity(base_url: str, writes: int, concurrency: int = 8) -> float:
    """Upserts per second a bare aiohttp client gets from the simulator."""
    start = datetime.now(UTC).replace(microsecond=0) + timedelta(days=1)
    headers = {"x-api-key": API_KEY, "Accept": "application/json"}
    queue: asyncio.Queue[int] = asyncio.Queue()
    for n in range(writes):
        queue.put_nowait(n)

    async def worker(session: aiohttp.ClientSession) -> None:
        while not queue.empty():
            n = queue.get_nowait()
            at = start + timedelta(minutes=n)
            body = {
                "event_id": f"capacity-{n}",
                "user_email": REP,
                "start_time": f"{at:%Y-%m-%dT%H:%M:%SZ}",
                "end_time": f"{at + timedelta(minutes=30):%Y-%m-%dT%H:%M:%SZ}",
                "title": f"Capacity {n}",
            }
            async with session.post(
                f"{base_url}/v1/scheduled-tasks", json=body, headers=headers
            ) as answer:
                answer.raise_for_status()
                await answer.read()

    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:
        started = time.perf_counter()
        await asyncio.gather(*(worker(session) for _ in range(concurrency)))
        return writes / (time.perf_counter() - started)


# --- the run -----------------------------------------------------------------------------


@dataclass
class Row:
    vdir: Figures
    run: Figures
    proc: Figures
    run_writes: int
    proc_writes: int
    feed: str
    report: str
    writing: float  # the route run's seconds carrying out its plan
    then: Figures | None = None  # after a first sync in a child: the worker's own first run


def start_feed(port: int, events: int = 10_000, series: int = 1_000) -> subprocess.Popen[bytes]:
    """This script serving the generated feed on `port`, in its own process."""
    argv = [__file__, "--serve-feed", str(port), "--events", str(events), "--series", str(series)]
    return subprocess.Popen([sys.executable, *argv])


async def measure(
    folder: Path, feed: str, sims: tuple[str, str], vdir_conf: Path
) -> dict[str, Row]:
    route_conf, proc_conf = folder / "route" / "config.yaml", folder / "proc" / "config.yaml"
    for path, sim in ((route_conf, sims[0]), (proc_conf, sims[1])):
        path.parent.mkdir()
        path.write_text(config(sim, f'kind: ics_url, url: "{feed}/feed.ics"'))
    vdir_argv = [str(VDIR), "-c", str(vdir_conf), "sync"]
    syncd_argv = [sys.executable, "-m", "syncd", "-c", str(proc_conf), "sync"]
    runs = RouteRuns(route_conf)
    rows: dict[str, Row] = {}
    try:
        for label, mode in CASES:
            set_mode(feed, mode)
            feed_stats(feed)
            log = folder / f"vdirsyncer-{label[1]}.log"
            vdir = await asyncio.to_thread(wait4_run, vdir_argv, log)
            copied = sum(line.startswith("Copying") for line in log.read_text().splitlines())
            seen = [f"vdirsyncer: {feed_stats(feed)}, {copied} items written"]
            before = sim_writes(sims[0])
            run, report, writing, then = await runs.run()
            run_writes = sim_writes(sims[0]) - before
            seen.append(f"route run: {feed_stats(feed)}")
            before = sim_writes(sims[1])
            proc = await asyncio.to_thread(wait4_run, syncd_argv, folder / "syncd.log")
            proc_writes = sim_writes(sims[1]) - before
            seen.append(f"syncd sync: {feed_stats(feed)}")
            rows[label[:3]] = Row(
                vdir, run, proc, run_writes, proc_writes, "; ".join(seen), report, writing, then
            )
            print(
                f"  done {label}: vdirsyncer {vdir.wall:.1f}s, route run {run.wall:.2f}s, "
                f"syncd sync {proc.wall:.1f}s",
                file=sys.stderr,
            )
    finally:
        await runs.close()
    if not runs.resettable:
        for row in rows.values():
            row.run = replace(row.run, note=(row.run.note + " RSS is the high-water mark").strip())
    return rows


def _figures(answer: dict[str, Any]) -> Figures:
    return Figures(answer["wall"], answer["cpu"], answer["rss"], answer["note"])


def ratio(mine: float, theirs: float) -> str:
    return f"{mine / theirs:.2f}" if theirs > 0 else "n/a"


def rate_text(writes: int, seconds: float) -> str:
    """Writes per second, or "n/a" when nothing was timed (the run failed before writing)."""
    return f"{writes / seconds:.0f}" if seconds > 0 else "n/a"


def print_table(rows: dict[str, Row]) -> None:
    labels = {label[:3]: label for label, _ in CASES}
    head = (
        f"{'case':<29}| {'vdirsyncer':^20} | {'syncd route run':^20} | "
        f"{'syncd sync (process)':^20} | {'ratio syncd/vdirsyncer':^46}"
    )
    sub = (
        f"{'':<29}| {'wall s':>6} {'cpu s':>6} {'MiB':>5} | {'wall s':>6} {'cpu s':>6} {'MiB':>5}"
        f" | {'wall s':>6} {'cpu s':>6} {'MiB':>5} | {'run wall':>8} {'run cpu':>7}"
        f" {'run MiB':>7} {'proc wall':>9} {'proc cpu':>8} {'proc MiB':>8}"
    )
    print(head)
    print(sub)
    print("-" * len(sub))
    for key in ORDER:
        row = rows[key]
        v, r, p = row.vdir, row.run, row.proc
        print(
            f"{labels[key]:<29}| {v.wall:>6.2f} {v.cpu:>6.2f} {v.rss:>5.0f} "
            f"| {r.wall:>6.2f} {r.cpu:>6.2f} {r.rss:>5.0f} "
            f"| {p.wall:>6.2f} {p.cpu:>6.2f} {p.rss:>5.0f} "
            f"| {ratio(r.wall, v.wall):>8} {ratio(r.cpu, v.cpu):>7} {ratio(r.rss, v.rss):>7}"
            f" {ratio(p.wall, v.wall):>9} {ratio(p.cpu, v.cpu):>8} {ratio(p.rss, v.rss):>8}"
        )
    print()
    print("per case: syncd writes (route run / syncd sync), the feed's answers, the run report")
    for key in ORDER:
        row = rows[key]
        notes = "; ".join(
            f"{who}: {f.note}"
            for who, f in (
                ("vdirsyncer", row.vdir),
                ("route run", row.run),
                ("syncd sync", row.proc),
            )
            if f.note
        )
        print(f"  {labels[key]}: writes {row.run_writes} / {row.proc_writes}; {row.feed}")
        print(f"      route run report: {row.report}" + (f"; NOTE {notes}" if notes else ""))
        if row.then is not None:
            print(
                "      the route run was a first sync in a child process (its MiB: the "
                "worker's peak and the child's, added); the worker's own first run after "
                f"it (the daemon's next poll): {row.then.wall:.2f} s wall, "
                f"{row.then.cpu:.2f} s CPU, {row.then.rss:.0f} MiB"
            )


def bench(args: argparse.Namespace, folder: Path) -> None:
    version = install_vdirsyncer(folder / "pip.log")
    feed_port, route_port, proc_port, cap_port = (free_port() for _ in range(4))
    feed_proc = start_feed(feed_port, args.events, args.series)
    sims = [start_simulator(port) for port in (route_port, proc_port)]
    feed = f"http://127.0.0.1:{feed_port}"
    sim_urls = (f"http://127.0.0.1:{route_port}", f"http://127.0.0.1:{proc_port}")
    try:
        for port in (feed_port, route_port, proc_port):
            wait_for_port(port, 60)
        with urllib.request.urlopen(f"{feed}/feed.ics") as answer:
            size = len(answer.read())
        feed_stats(feed)
        vdir_conf = vdirsyncer_config(folder, f"{feed}/feed.ics")
        discover = wait4_run(
            [str(VDIR), "-c", str(vdir_conf), "discover"], folder / "vdirsyncer.log", "y\n" * 20
        )
        feed_stats(feed)
        print(
            f"syncd vs {version}: feed of {args.events} events ({args.series} weekly "
            f"series), {size / 1e6:.1f} MB on loopback; window 1 day back, 60 days ahead"
        )
        print(
            f"machine: {os.cpu_count()} cores, Python {sys.version.split()[0]}; "
            f"vdirsyncer discover {discover.wall:.2f}s {discover.note}".rstrip()
        )
        print()
        rows = asyncio.run(measure(folder, feed, sim_urls, vdir_conf))
    finally:
        for process in (feed_proc, *sims):
            process.terminate()
            process.wait()
    print_table(rows)
    cap_sim = start_simulator(cap_port)
    try:
        wait_for_port(cap_port, 60)
        rate = asyncio.run(capacity(f"http://127.0.0.1:{cap_port}", CAPACITY_WRITES))
        counted = sim_writes(f"http://127.0.0.1:{cap_port}")
    finally:
        cap_sim.terminate()
        cap_sim.wait()
    first = rows["(e)"]
    print()
    print(
        f"capacity: Sales Ask simulator {rate:.0f} writes/s (bare aiohttp client, "
        f"{CAPACITY_WRITES} upserts, 8 at a time, {counted} counted by it); syncd first sync "
        f"{rate_text(first.run_writes, first.writing)} writes/s while writing (the route run's "
        f"{first.writing:.1f} s carrying out its plan), "
        f"{first.run_writes / first.run.wall:.0f} writes/s over the whole route run (fetching, "
        f"parsing and planning included), {first.proc_writes / first.proc.wall:.0f} writes/s "
        "as `syncd sync`"
    )
    print(
        "notes: route-run figures are one process's (no interpreter start-up), CPU includes "
        "its worker threads, MiB is that process's peak RSS during the run; a fresh "
        "`syncd sync` process has no ETag from the one before, so in the process columns "
        "(a) is a full 200 fetch, but it reuses the expansions the previous one kept in "
        "the state file"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--events", type=int, default=10_000)
    parser.add_argument("--series", type=int, default=1_000)
    parser.add_argument("--serve-feed", type=int, metavar="PORT", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_feed:
        serve_feed(args.serve_feed, args.events, args.series)
        return
    folder = WORK / f"vs-vdirsyncer-{os.getpid()}"
    folder.mkdir(parents=True)
    bench(args, folder)


if __name__ == "__main__":
    main()
