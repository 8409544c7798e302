"""The systemd service notification protocol (sd_notify), without libsystemd.

systemd passes a datagram socket address in ``NOTIFY_SOCKET`` to a ``Type=notify``
service. The service sends newline-separated ``KEY=VALUE`` assignments to it:
``READY=1`` once it serves, ``WATCHDOG=1`` at least every ``WATCHDOG_USEC / 2``,
``STOPPING=1`` on shutdown, ``RELOADING=1`` while it reloads. The kernel attaches
the sender's credentials, which is how ``NotifyAccess=main`` knows the message came
from the main process; nothing else is needed on our side.

Everything here is best effort: a service manager that is not listening must never
take the agent down, so no method raises, and a failure is logged once rather than
on every watchdog ping. Without ``NOTIFY_SOCKET`` (run from a shell, in Docker)
every method is a cheap no-op.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from collections.abc import Mapping

log = logging.getLogger(__name__)

# READY/STOPPING/RELOADING happen once each; waiting up to a second for a congested
# manager is better than losing them (a lost READY=1 gets the unit killed by
# TimeoutStartSec). Watchdog pings and status lines are sent from the event loop,
# so they never wait: a dropped ping is covered by the next one, half an interval later.
_ONCE_TIMEOUT = 1.0


class Notifier:
    """Sends state changes to the service manager named by ``NOTIFY_SOCKET``.

    ``environ`` defaults to ``os.environ`` and is read once, here. Path addresses
    (``/run/systemd/notify``) and abstract ones (``@name``) are supported; any other
    form (such as systemd 254's ``vsock:``) is logged once and ignored.
    """

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        env = os.environ if environ is None else environ
        self._address: str | None = None
        self._failed = False
        raw = env.get("NOTIFY_SOCKET", "")
        if raw.startswith("/"):
            self._address = raw
        elif raw.startswith("@") and len(raw) > 1:
            # Abstract namespace: the kernel name starts with a NUL byte instead of '@'.
            self._address = "\0" + raw[1:]
        elif raw:
            log.warning("NOTIFY_SOCKET=%r is not a path or abstract socket name; service notifications are off", raw)
        self._watchdog_interval = _parse_watchdog(env)

    @property
    def enabled(self) -> bool:
        """True when a service manager asked to be notified."""
        return self._address is not None

    def watchdog_interval(self) -> float | None:
        """The watchdog timeout in seconds that the manager enforces, or None without one.

        The caller should ping (``watchdog()``) at half this interval, as sd_watchdog_enabled(3)
        recommends. None when ``WATCHDOG_USEC`` is unset or invalid, or when ``WATCHDOG_PID``
        names another process (the variable was inherited, the watchdog is not ours).
        """
        return self._watchdog_interval

    def ready(self, status: str | None = None) -> bool:
        """Startup (or a reload) finished: the agent serves. Returns whether the message was sent."""
        return self._send(_fields("READY=1", status), wait=True)

    def reloading(self) -> bool:
        """A configuration reload began; call ``ready()`` when it ends, whether it worked or not.

        ``MONOTONIC_USEC`` lets a ``Type=notify-reload`` manager (systemd >= 253) tell this
        reload from an earlier one; older managers ignore the field.
        """
        now_usec = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
        return self._send(f"RELOADING=1\nMONOTONIC_USEC={now_usec}", wait=True)

    def stopping(self, status: str | None = None) -> bool:
        """Shutdown began: the manager stops expecting watchdog pings."""
        return self._send(_fields("STOPPING=1", status), wait=True)

    def watchdog(self) -> bool:
        """Tell the manager the event loop is alive. Never blocks."""
        return self._send("WATCHDOG=1", wait=False)

    def status(self, text: str) -> bool:
        """A one-line status shown by ``systemctl status``. Never blocks."""
        return self._send(_fields(None, text), wait=False)

    def extend_timeout(self, seconds: float) -> bool:
        """Ask for ``seconds`` more before the start or stop timeout fires (slow flush on shutdown)."""
        usec = max(0, round(seconds * 1_000_000))
        return self._send(f"EXTEND_TIMEOUT_USEC={usec}", wait=False)

    def _send(self, message: str, *, wait: bool) -> bool:
        if self._address is None:
            return False
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
                # A connected datagram socket makes poll() report the receiver's full queue,
                # so the timeout below waits for room instead of spinning on EAGAIN.
                sock.settimeout(_ONCE_TIMEOUT if wait else 0.0)
                sock.connect(self._address)
                sock.send(message.encode("utf-8", "replace"))
        except OSError as exc:
            if not self._failed:
                self._failed = True
                log.warning(
                    "service manager notification to %s failed (%s); later failures are logged at debug level",
                    _printable(self._address),
                    exc,
                )
            else:
                log.debug("service manager notification failed: %s", exc)
            return False
        if self._failed:
            self._failed = False
            log.info("service manager notifications to %s work again", _printable(self._address))
        return True


def _fields(first: str | None, status: str | None) -> str:
    parts = [] if first is None else [first]
    if status is not None:
        # A newline would start a new assignment; the manager shows one line anyway.
        parts.append("STATUS=" + " ".join(status.splitlines()))
    return "\n".join(parts)


def _parse_watchdog(env: Mapping[str, str]) -> float | None:
    usec_text = env.get("WATCHDOG_USEC", "")
    if not usec_text:
        return None
    pid_text = env.get("WATCHDOG_PID", "")
    if pid_text:
        try:
            if int(pid_text) != os.getpid():
                return None
        except ValueError:
            log.warning("WATCHDOG_PID=%r is not a process id; ignoring the watchdog", pid_text)
            return None
    try:
        usec = int(usec_text)
    except ValueError:
        log.warning("WATCHDOG_USEC=%r is not a number of microseconds; ignoring the watchdog", usec_text)
        return None
    if usec <= 0:
        return None
    return usec / 1_000_000


def _printable(address: str) -> str:
    return "@" + address[1:] if address.startswith("\0") else address
