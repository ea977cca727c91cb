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

from first_sync import config, free_port, sim_writes, start_simulator, wait_for_port
from rss import reset_peak_rss, status_mib
from vs_vdirsyncer import VDIR_VENV, WORK, install_vdirsyncer, set_mode, start_feed

CASES = (
    ("(a) 304", "etag"),
    ("(b) same bytes", "plain"),
    ("(c) DTSTAMPs", "dtstamp"),
    ("(d) 1% changed", "changed"),
)
SETTLE = 8.0  # seconds a case runs: two polls or more of each side
FIRST_SYNC_WITHIN = 300.0  # seconds


def memory(daemon: subprocess.Popen[bytes]) -> str:
    """The daemon's peak RSS (since the last reset) and RSS now, as two table columns."""
    peak, now = status_mib("VmHWM", daemon.pid), status_mib("VmRSS", daemon.pid)
    if daemon.poll() is not None or peak is None or now is None:
        raise SystemExit(f"syncd run is gone (exit {daemon.returncode}): see daemon.log")
    return f"{peak:>10.0f}{now:>10.0f}"


def wait_for_first_sync(daemon: subprocess.Popen[bytes], simulator: str) -> None:
    """Until the simulator has taken writes and their count held still for `SETTLE`
    seconds (two polls of each side): the first sync and any run after it are done."""
    deadline, last = time.monotonic() + FIRST_SYNC_WITHIN, -1
    while time.monotonic() < deadline:
        if daemon.poll() is not None:
            raise SystemExit(f"syncd run exited with {daemon.returncode}: see daemon.log")
        writes = sim_writes(simulator)
        if writes and writes == last:
            return
        last = writes
        time.sleep(SETTLE)
    raise SystemExit(f"the first sync did not finish within {FIRST_SYNC_WITHIN:.0f} s")


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
    return config(simulator, f'kind: ics_url, url: "{feed}/feed.ics"', poll="3s")


def measure(daemon: subprocess.Popen[bytes], feed: str, simulator: str) -> None:
    wait_for_first_sync(daemon, simulator)
    print(f"{'case':<18}{'peak MiB':>10}{'RSS MiB':>10}{'writes':>8}")
    print(f"{'after first sync':<18}{memory(daemon)}")
    for label, mode in CASES:
        before = sim_writes(simulator)
        if not reset_peak_rss(daemon.pid):
            raise SystemExit("this kernel does not reset a process's peak RSS (clear_refs)")
        set_mode(feed, mode)
        time.sleep(SETTLE)
        writes = sim_writes(simulator) - before
        print(f"{label:<18}{memory(daemon)}{writes:>8}")


def main() -> None:
    folder = WORK / f"daemon-rss-{os.getpid()}"
    folder.mkdir(parents=True)
    print_floors(folder)
    feed_port, sim_port = free_port(), free_port()
    feed_server, simulator = start_feed(feed_port), start_simulator(sim_port)
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
