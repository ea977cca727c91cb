"""The systemd notify protocol (sd_notify), spoken directly over `$NOTIFY_SOCKET`.

A datagram per message; nothing happens when the daemon is not started by systemd.
`WATCHDOG=1` pings come from a task on the event loop itself, so they stop when the
loop stalls, which is the point of a watchdog.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from collections.abc import Mapping

log = logging.getLogger("syncd.notify")


class Notifier:
    """Sends notify messages to systemd when it is listening."""

    def __init__(self, environ: Mapping[str, str] = os.environ) -> None:
        path = environ.get("NOTIFY_SOCKET", "")
        self.address = "\0" + path[1:] if path.startswith("@") else path  # abstract socket
        usec = environ.get("WATCHDOG_USEC", "")
        self.watchdog = int(usec) / 2_000_000 if usec.isdigit() and int(usec) > 0 else 0.0

    def send(self, *lines: str) -> None:
        """Send one message (`READY=1`, `STATUS=...`); failures are logged, not raised."""
        if not self.address:
            return
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
                sock.sendto("\n".join(lines).encode(), self.address)
        except OSError as exc:
            log.warning("cannot notify systemd: %s", exc.strerror or exc)

    async def keep_alive(self) -> None:
        """Ping the watchdog at half its interval, for as long as the loop runs."""
        if not self.watchdog:
            return
        while True:
            self.send("WATCHDOG=1")
            await asyncio.sleep(self.watchdog)
