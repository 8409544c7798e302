"""The open-file limit: every miner connection (and every simulated miner) is a descriptor."""

from __future__ import annotations

import logging
import resource

log = logging.getLogger(__name__)

# Descriptors the rest of the process needs besides miner sockets (logs, the HTTP server, the outbox...).
_MARGIN = 128


def raise_nofile_limit(need: int = 0) -> int:
    """Raise this process's open-file soft limit to the hard limit; return the new soft limit.

    Logs a warning when even the hard limit is below `need` (then the fleet's
    concurrency, or the simulated fleet's size, cannot be reached: systemd's
    `LimitNOFILE=` or `ulimit -Hn` raises it).
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return 1 << 30
    target = hard if hard != resource.RLIM_INFINITY else max(soft, need + _MARGIN, 1 << 16)
    if target > soft:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError) as exc:
            log.warning("cannot raise the open-file limit from %d to %d: %s", soft, target, exc)
    if need and soft < need + _MARGIN:
        log.warning(
            "open-file limit %d is below the %d this needs; raise it (systemd LimitNOFILE=, ulimit -n)",
            soft,
            need + _MARGIN,
        )
    return int(soft)
