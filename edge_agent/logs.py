"""Logging to stderr in a shape journald and people both read well."""

from __future__ import annotations

import logging
import os
import sys

# syslog priorities: journald parses a leading "<N>" on each stderr line as the priority.
_PRIORITY = {logging.DEBUG: 7, logging.INFO: 6, logging.WARNING: 4, logging.ERROR: 3, logging.CRITICAL: 2}


class _JournalFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        prio = _PRIORITY.get(record.levelno, 6)
        text = super().format(record)
        # journald takes one line per record; keep tracebacks inside the same record.
        return f"<{prio}>" + text.replace("\n", "\n" + f"<{prio}>  ")


def setup(level: str = "info") -> None:
    handler = logging.StreamHandler(sys.stderr)
    if os.environ.get("JOURNAL_STREAM"):
        # journald adds its own timestamps and host; the priority prefix sets the level.
        handler.setFormatter(_JournalFormatter("%(name)s: %(message)s"))
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
