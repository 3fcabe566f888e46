"""systemd's notification protocol (sd_notify), stdlib only.

Under `Type=notify` systemd sets `NOTIFY_SOCKET` (a filesystem path, or an abstract socket name
written with a leading '@') and, with `WatchdogSec=`, `WATCHDOG_USEC` and `WATCHDOG_PID`. The
service sends newline-separated `KEY=VALUE` assignments as single datagrams to that socket:
`READY=1`, `WATCHDOG=1`, `STATUS=...`, `STOPPING=1` (see sd_notify(3)).

Without `NOTIFY_SOCKET` (a terminal, a test, a desktop session) every method is a no-op. A send
never raises and never blocks the frame loop: the socket is non-blocking, the first failure is
logged once as a warning and later failures are silent.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from collections.abc import Mapping

log = logging.getLogger(__name__)


def _address(value: str) -> str | None:
    """NOTIFY_SOCKET as a socket address: '@name' is the abstract name '\\0name'."""
    if value.startswith("@") and len(value) > 1:
        return "\0" + value[1:]
    if value.startswith("/"):
        return value
    return None  # e.g. systemd 254's "vsock:" addresses: not for a local kit


class Notifier:
    """Talks to the service manager; a disabled notifier (no socket) accepts every call.

    `watchdog()` may be called after every frame: it sends `WATCHDOG=1` at most once per
    `min_ping_gap_s` (a tenth of the watchdog timeout by default, so a ping is never more than
    that late) and nothing at all when systemd asked for no watchdog pings from this process.
    `status()` skips a text identical to the last one sent.
    """

    def __init__(
        self,
        address: str | None = None,
        watchdog_usec: int | None = None,
        min_ping_gap_s: float | None = None,
    ) -> None:
        self._address = address
        self._watchdog_usec = watchdog_usec if watchdog_usec and watchdog_usec > 0 else None
        if min_ping_gap_s is None:
            min_ping_gap_s = self._watchdog_usec / 10e6 if self._watchdog_usec else 0.0
        self.min_ping_gap_s = min_ping_gap_s
        self._sock: socket.socket | None = None
        self._warned = False
        self._last_ping: float | None = None
        self._last_status: str | None = None

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> Notifier:
        raw = environ.get("NOTIFY_SOCKET", "")
        address = _address(raw) if raw else None
        if raw and address is None:
            log.warning("NOTIFY_SOCKET=%r is not a unix socket address: not notifying systemd", raw)
        usec: int | None = None
        pid = environ.get("WATCHDOG_PID", "")
        if address is not None and (not pid or pid == str(os.getpid())):
            try:
                usec = int(environ.get("WATCHDOG_USEC", ""))
            except ValueError:
                usec = None
        return cls(address, usec)

    @property
    def enabled(self) -> bool:
        return self._address is not None

    @property
    def watchdog_interval_s(self) -> float | None:
        """Half the watchdog timeout (systemd's advice for the ping period), or None."""
        return self._watchdog_usec / 2e6 if self._watchdog_usec else None

    def ready(self) -> bool:
        return self.notify("READY=1")

    def watchdog(self) -> bool:
        """Ping the watchdog (rate-limited); True when a datagram went out."""
        if self._watchdog_usec is None:
            return False
        now = time.monotonic()
        if self._last_ping is not None and now - self._last_ping < self.min_ping_gap_s:
            return False
        sent = self.notify("WATCHDOG=1")
        if sent:
            self._last_ping = now
        return sent

    def status(self, text: str) -> bool:
        text = " ".join(str(text).split())  # one line: the protocol is newline-separated
        if text == self._last_status:
            return False
        sent = self.notify(f"STATUS={text}")
        if sent:
            self._last_status = text
        return sent

    def stopping(self) -> bool:
        return self.notify("STOPPING=1")

    def notify(self, message: str) -> bool:
        """Send one datagram of assignments; False (never an exception) if it did not go out."""
        if self._address is None:
            return False
        try:
            if self._sock is None:
                sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
                sock.setblocking(False)  # a full receiver queue drops the message, never hangs
                self._sock = sock
            self._sock.sendto(message.encode(), self._address)
            return True
        except OSError as e:
            if not self._warned:
                self._warned = True
                shown = self._address.replace("\0", "@", 1)
                log.warning(
                    "cannot notify systemd at %s (%s); further failures are silent", shown, e
                )
            return False

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    def __enter__(self) -> Notifier:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
