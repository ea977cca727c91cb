"""Radicale, a real CalDAV server, as a subprocess on a free loopback port."""

from __future__ import annotations

import contextlib
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

USER = "rep"
PASSWORD = "any"  # auth `none` takes any password; the user name picks the owner
COLLEAGUE = "boss"  # owns `boss/shared`, which USER may read but not write
RIGHTS = """\
[owner]
user: .+
collection: {user}(/.*)?
permissions: RrWw
[read-shared]
user: rep
collection: boss/shared(/.*)?
permissions: rr
[root]
user: .+
collection:
permissions: R
"""


@dataclass(frozen=True)
class Radicale:
    """A running server: its root URL and its log file."""

    url: str
    log: Path

    def collection(self, name: str) -> str:
        """The URL of the calendar collection `name` (made by `mkcalendar`)."""
        return f"{self.url}/{USER}/{name}/"

    @property
    def shared(self) -> str:
        """A colleague's collection shared read-only with USER (made by its owner)."""
        return f"{self.url}/{COLLEAGUE}/shared/"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _config(folder: Path, port: int) -> Path:
    path = folder / "radicale.conf"
    rights = folder / "rights"
    rights.write_text(RIGHTS)
    path.write_text(
        f"[server]\nhosts = 127.0.0.1:{port}\n"
        "[auth]\ntype = none\n"
        f"[rights]\ntype = from_file\nfile = {rights}\n"
        f"[storage]\nfilesystem_folder = {folder / 'collections'}\n"
        "[logging]\nlevel = info\n"
    )
    return path


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url + "/.web/", timeout=1):
            return True
    except urllib.error.HTTPError:
        return True  # any HTTP answer: it is up
    except OSError:
        return False


@contextlib.contextmanager
def radicale(folder: Path, seconds: float = 20.0) -> Iterator[Radicale]:
    """Radicale serving `folder`; stopped (and waited for) at the end."""
    for _attempt in range(3):  # the port may be taken between probing and binding
        port = _free_port()
        log = folder / f"radicale-{port}.log"
        with log.open("wb") as out:
            process = subprocess.Popen(
                [sys.executable, "-m", "radicale", "--config", str(_config(folder, port))],
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        server = Radicale(f"http://127.0.0.1:{port}", log)
        try:
            if _wait(server.url, process, seconds):
                yield server
                return
        finally:
            process.terminate()
            process.wait(timeout=10)
    raise RuntimeError(f"radicale did not start; see {log}")


def _wait(url: str, process: subprocess.Popen[bytes], seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            return False
        if _answers(url):
            return True
        time.sleep(0.05)
    return False
