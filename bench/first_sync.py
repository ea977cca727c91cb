"""First-sync benchmark: a generated 10,000-event calendar into the Sales Ask simulator.

Prints the first sync's wall time and writes per second, the time of a second sync
with no change (and its write count, which must be 0), and each sync's peak RSS. The
simulator runs in its own process (rate limit off) so the figures are syncd's alone;
each `syncd sync` is a fresh process, measured with wait4() by a small launcher
(`measured_run`).

    .venv/bin/python bench/first_sync.py [--events 10000] [--series 1000]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import socket
import subprocess
import sys
import time
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO

WORK = Path(__file__).parent / ".work"
API_KEY = "sim-key"
REP = "rep@example.com"


def generate(events: int, series: int, seed: int = 7) -> str:
    """`series` weekly series over the window and `events - series` singles spread over
    about 400 days around today, each about 370 bytes."""
    rng = random.Random(seed)
    now = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    lines = ["BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//syncd bench//EN"]
    for n in range(events):
        recurring = n < series
        offset = rng.randrange(-7, 0) if recurring else rng.randrange(-200, 200)
        start = now + timedelta(days=offset, hours=rng.randrange(0, 9))
        lines += [
            "BEGIN:VEVENT",
            f"UID:bench-{n}@syncd.test",
            "DTSTAMP:20260101T000000Z",
            f"DTSTART:{start:%Y%m%dT%H%M%SZ}",
            f"DTEND:{start + timedelta(minutes=30):%Y%m%dT%H%M%SZ}",
            f"SUMMARY:Customer meeting {n}",
            f"ORGANIZER:mailto:{REP}",
            f"ATTENDEE;PARTSTAT=ACCEPTED:mailto:{REP}",
            f"ATTENDEE;CN=Customer {n}:mailto:customer{n}@client.test",
            *(["RRULE:FREQ=WEEKLY"] if recurring else []),
            "END:VEVENT",
        ]
    return "\r\n".join([*lines, "END:VCALENDAR", ""])


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_for_port(port: int, seconds: float = 20.0) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise SystemExit(f"the simulator did not listen on port {port}")


def config(
    base_url: str, source: str = "kind: ics_file, path: calendar.ics", poll: str = ""
) -> str:
    """The bench's config: the calendar `source` synced into the Sales Ask simulator
    (`poll`: both sides' poll interval, else the defaults)."""
    polled = f", poll: {poll}" if poll else ""
    return f"""\
state: state.db
calendars:
  bench: {{{source}, limits: {{per_series: 100000}}{polled}}}
vendors:
  salesask: {{kind: salesask, base_url: "{base_url}", api_key: {API_KEY}, rate_limit: off,
              concurrency: 8{polled}}}
routes:
  bench:
    calendar: bench
    vendor: salesask
    rep: {{email: {REP}}}
    window: {{past: 1d, future: 60d}}
"""


# Run a command from a small launcher and report the command's own figures. A child
# forked straight from a big process inherits that process's peak RSS in its ru_maxrss:
# on exec, Linux folds the old address space's high-water mark into the child's (the
# parent's, after a vfork), so a command started by the bench holding a synced route
# reported the bench's memory, not its own. The launcher is a bare interpreter (-S, a
# few MiB), so the figure is the command's unless it stays below that.
LAUNCHER = """
import json, os, sys, time
fd, argv = int(sys.argv[1]), sys.argv[2:]
started = time.perf_counter()
pid = os.fork()
if pid == 0:
    try:
        os.execvp(argv[0], argv)
    finally:
        os._exit(127)
_, status, usage = os.wait4(pid, 0)
figures = [time.perf_counter() - started, usage.ru_utime + usage.ru_stime,
           usage.ru_maxrss / 1024, os.waitstatus_to_exitcode(status)]
os.write(fd, json.dumps(figures).encode())
"""


def measured_run(
    argv: list[str], sink: int | IO[bytes], stdin: str | None = None
) -> tuple[float, float, float, int]:
    """Run `argv` to its end: wall seconds, CPU seconds, peak RSS in MiB, exit status,
    all of the command alone. Its output goes to `sink`; `stdin` is fed to it."""
    read_end, write_end = os.pipe()
    launcher = subprocess.Popen(
        [sys.executable, "-S", "-c", LAUNCHER, str(write_end), *argv],
        stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
        stdout=sink,
        stderr=sink,
        pass_fds=(write_end,),
    )
    os.close(write_end)
    if stdin is not None and launcher.stdin is not None:
        with contextlib.suppress(BrokenPipeError):
            launcher.stdin.write(stdin.encode())
            launcher.stdin.close()
    with os.fdopen(read_end, "rb") as answer:
        figures = answer.read()
    launcher.wait()
    wall, cpu, rss, code = json.loads(figures)
    return float(wall), float(cpu), float(rss), int(code)


def timed_sync(config_path: Path) -> tuple[float, float, float, int]:
    """Run `syncd sync` once: wall seconds, CPU seconds, peak RSS in MiB, exit status."""
    argv = [sys.executable, "-m", "syncd", "-c", str(config_path), "sync"]
    return measured_run(argv, subprocess.DEVNULL)


def start_simulator(port: int) -> subprocess.Popen[bytes]:
    """The Sales Ask simulator in its own process on `port` (rate limit off)."""
    return subprocess.Popen(
        [sys.executable, "-m", "syncd", "simulate", "salesask", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def sim_writes(base_url: str) -> int:
    """Write requests the simulator at `base_url` has taken so far."""
    with urllib.request.urlopen(f"{base_url}/_sim/requests") as answer:
        return int(json.load(answer)["writes"])


def simulator_counts(base_url: str) -> tuple[int, int]:
    """(write requests so far, tasks held)."""
    with urllib.request.urlopen(f"{base_url}/_sim/tasks") as answer:
        tasks = len(json.load(answer)["tasks"])
    return sim_writes(base_url), tasks


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=10_000)
    parser.add_argument("--series", type=int, default=1_000)
    args = parser.parse_args()
    folder = WORK / f"first-sync-{os.getpid()}"
    folder.mkdir(parents=True)
    text = generate(args.events, args.series)
    (folder / "calendar.ics").write_text(text, newline="")
    port = free_port()
    simulator = start_simulator(port)
    try:
        wait_for_port(port)
        base_url = f"http://127.0.0.1:{port}"
        config_path = folder / "config.yaml"
        config_path.write_text(config(base_url))
        report(args, len(text), base_url, config_path)
    finally:
        simulator.terminate()
        simulator.wait()


def report(args: argparse.Namespace, size: int, base_url: str, config_path: Path) -> None:
    first = timed_sync(config_path)
    writes_after_first, tasks = simulator_counts(base_url)
    second = timed_sync(config_path)
    writes_after_second, _ = simulator_counts(base_url)
    print(
        f"calendar: {args.events} events ({args.series} weekly series), "
        f"{size / 1e6:.1f} MB; window 1 day back, 60 days ahead; {tasks} occurrences synced"
    )
    print(f"machine: {os.cpu_count()} cores, Python {sys.version.split()[0]}")
    print(f"{'run':<28}{'wall s':>9}{'cpu s':>9}{'peak RSS MiB':>14}{'writes':>9}{'exit':>6}")
    rows = (
        ("first sync", first, writes_after_first),
        ("second sync, no change", second, writes_after_second - writes_after_first),
    )
    for name, (wall, cpu, rss, code), writes in rows:
        print(f"{name:<28}{wall:>9.2f}{cpu:>9.2f}{rss:>14.0f}{writes:>9}{code:>6}")
    print(f"first sync write rate: {writes_after_first / first[0]:.0f} writes/s")


if __name__ == "__main__":
    main()
