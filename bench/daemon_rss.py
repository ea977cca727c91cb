"""The real daemon's memory on the vdirsyncer bench's feed: `syncd run`, not a route run
inside the bench process.

Serves the 10,000-event feed and the Sales Ask simulator as `vs_vdirsyncer.py` does,
starts `syncd run` with the calendar and the vendor polled every 3 s, waits for the
first sync (every occurrence written), then switches the feed through (a) 304, (b) the
same bytes without ETag, (c) every DTSTAMP rewritten and (d) 1% changed, letting the
daemon poll each for a few seconds. The daemon's RSS and its peak (VmHWM, reset before
each case through /proc/PID/clear_refs) are read from /proc. Before that it prints the
floor under both: the RSS of an interpreter that has only imported what `syncd run`
imports, and of one that has imported the modules vdirsyncer's sync of a feed into a
folder uses (in the virtualenv `vs_vdirsyncer.py` installs).

    .venv/bin/python bench/daemon_rss.py
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from first_sync import config, free_port, wait_for_port
from vs_vdirsyncer import VDIR_VENV, WORK, install_vdirsyncer, set_mode, sim_writes, start_simulator

CASES = (
    ("(a) 304", "etag"),
    ("(b) same bytes", "plain"),
    ("(c) DTSTAMPs", "dtstamp"),
    ("(d) 1% changed", "changed"),
)
SETTLE = 8.0  # seconds a case runs: two polls or more of each side


def mib(pid: int, field: str) -> float:
    """VmRSS or VmHWM of a process, in MiB."""
    status = Path(f"/proc/{pid}/status").read_text()
    return int(status.split(f"{field}:")[1].split("kB")[0]) / 1024


SYNCD_MODULES = ("syncd.daemon", "syncd.cli")
VDIRSYNCER_MODULES = (
    "vdirsyncer.cli.tasks",
    "vdirsyncer.sync",
    "vdirsyncer.storage.http",
    "vdirsyncer.storage.filesystem",
)
RSS_AFTER_IMPORTS = (
    "import importlib, sys\n"
    "for name in sys.argv[1:]: importlib.import_module(name)\n"
    "status = open('/proc/self/status').read()\n"
    "print(int(status.split('VmRSS:')[1].split('kB')[0]) / 1024)\n"
)


def import_floor(python: str, modules: tuple[str, ...]) -> float:
    """RSS in MiB of a fresh interpreter that has imported `modules` and nothing else."""
    argv = [python, "-c", RSS_AFTER_IMPORTS, *modules]
    return float(subprocess.run(argv, check=True, capture_output=True, text=True).stdout)


def print_floors(folder: Path) -> None:
    install_vdirsyncer(folder / "pip.log")
    syncd = import_floor(sys.executable, SYNCD_MODULES)
    vdirsyncer = import_floor(str(VDIR_VENV / "bin" / "python"), VDIRSYNCER_MODULES)
    print(f"imports alone: syncd run {syncd:.0f} MiB, vdirsyncer's sync {vdirsyncer:.0f} MiB")


def daemon_config(feed: str, simulator: str) -> str:
    """The bench's config with both sides polled every 3 s."""
    return config(simulator, f'kind: ics_url, url: "{feed}/feed.ics", poll: 3s', ", poll: 3s")


def measure(daemon: subprocess.Popen[bytes], feed: str, simulator: str) -> None:
    started = time.monotonic()
    while sim_writes(simulator) < 10_000 and time.monotonic() - started < 300:
        time.sleep(0.5)
    time.sleep(SETTLE)
    print(f"{'case':<18}{'peak MiB':>10}{'RSS MiB':>10}{'writes':>8}")
    pid = daemon.pid
    print(f"{'after first sync':<18}{mib(pid, 'VmHWM'):>10.0f}{mib(pid, 'VmRSS'):>10.0f}")
    for label, mode in CASES:
        before = sim_writes(simulator)
        Path(f"/proc/{pid}/clear_refs").write_text("5")
        set_mode(feed, mode)
        time.sleep(SETTLE)
        writes = sim_writes(simulator) - before
        print(f"{label:<18}{mib(pid, 'VmHWM'):>10.0f}{mib(pid, 'VmRSS'):>10.0f}{writes:>8}")


def main() -> None:
    folder = WORK / f"daemon-rss-{os.getpid()}"
    folder.mkdir(parents=True)
    print_floors(folder)
    feed_port, sim_port = free_port(), free_port()
    here = Path(__file__).resolve().parent
    serve = [sys.executable, str(here / "vs_vdirsyncer.py"), "--serve-feed", str(feed_port)]
    feed_server, simulator = subprocess.Popen(serve), start_simulator(sim_port)
    feed, sim = f"http://127.0.0.1:{feed_port}", f"http://127.0.0.1:{sim_port}"
    try:
        wait_for_port(feed_port, 60)
        wait_for_port(sim_port, 60)
        (folder / "config.yaml").write_text(daemon_config(feed, sim))
        with (folder / "daemon.log").open("wb") as log:
            argv = [sys.executable, "-m", "syncd", "-c", str(folder / "config.yaml"), "run"]
            daemon = subprocess.Popen(argv, cwd=folder, stdout=log, stderr=log)
            try:
                measure(daemon, feed, sim)
            finally:
                daemon.send_signal(signal.SIGTERM)
                daemon.wait(60)
    finally:
        for process in (feed_server, simulator):
            process.terminate()
            process.wait()


if __name__ == "__main__":
    main()
