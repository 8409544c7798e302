"""Prometheus text and OpenMetrics rendering from the metric table.

Each snapshot is rendered once into per-family chunks of sample lines; a scrape
only joins chunks family by family (both formats need a family's samples
together). This is what keeps a 10,000-miner scrape cheap: the per-sample work
happens once per poll, not once per scrape.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

from edge_agent.metrics import METRICS, Metric
from edge_agent.model import Reading, Snapshot

TEXT_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
OPENMETRICS_CONTENT_TYPE = "application/openmetrics-text; version=1.0.0; charset=utf-8"

FAMILIES: tuple[Metric, ...] = tuple(METRICS.values())
FAMILY_INDEX: dict[str, int] = {m.name: i for i, m in enumerate(FAMILIES)}

_ESCAPE = str.maketrans({"\\": "\\\\", '"': '\\"', "\n": "\\n"})

Chunks = tuple[tuple[int, bytes], ...]


_INF = math.inf


def format_value(value: float) -> str:
    # Integral values first: most samples are (counts, rpm, states), and is_integer() is False for NaN and Inf.
    v = value if type(value) is float else float(value)
    if v.is_integer():
        return str(int(v)) if -1e15 < v < 1e15 else repr(v)
    if math.isnan(v):
        return "NaN"
    if v == _INF:
        return "+Inf"
    if v == -_INF:
        return "-Inf"
    return repr(v)


def format_labels(labels: Iterable[tuple[str, str]]) -> str:
    parts = []
    for k, value in labels:
        # Label values almost never need escaping, and `translate` costs more than the three tests.
        v = value.translate(_ESCAPE) if "\\" in value or '"' in value or "\n" in value else value
        parts.append(f'{k}="{v}"')
    return "{" + ",".join(parts) + "}" if parts else ""


def render_readings(readings: Sequence[Reading]) -> Chunks:
    """Render readings to (family index, sample lines) pairs, grouped by family.

    A reading whose key is not in the table is skipped rather than served: an
    unknown family would have no TYPE line. A test asserts parsers never emit one.
    """
    by_family: dict[int, list[str]] = {}
    index = FAMILY_INDEX
    # A miner's readings share few label sets (the miner alone, one per board...): format each once.
    label_text: dict[tuple[tuple[str, str], ...], str] = {}
    for key, value, labels in readings:
        i = index.get(key)
        if i is None:
            continue
        text = label_text.get(labels)
        if text is None:
            text = label_text[labels] = format_labels(labels)
        line = f"{key}{text} {format_value(value)}\n"
        lines = by_family.get(i)
        if lines is None:
            by_family[i] = [line]
        else:
            lines.append(line)
    return tuple((i, "".join(lines).encode()) for i, lines in sorted(by_family.items()))


def _header(metric: Metric, openmetrics: bool) -> bytes:
    help_text = metric.help.replace("\\", "\\\\").replace("\n", "\\n")
    if openmetrics:
        family = metric.family
        unit = f"# UNIT {family} {metric.unit}\n" if metric.unit and family.endswith("_" + metric.unit) else ""
        return f"# HELP {family} {help_text}\n# TYPE {family} {metric.type}\n{unit}".encode()
    return f"# HELP {metric.name} {help_text}\n# TYPE {metric.name} {metric.type}\n".encode()


_HEADERS = {om: tuple(_header(m, om) for m in FAMILIES) for om in (False, True)}


def join_parts(chunk_sets: Iterable[Chunks], *, openmetrics: bool, eof: bool = True) -> list[bytes]:
    """Join pre-rendered chunks into an exposition body, families in table order: one part per family.

    The parts are written one after another. A body over 10,000 miners is ~20 MB,
    and a single `b"".join` of it is one C call that holds the GIL for several
    milliseconds; a family at a time keeps each call short. `eof=False` leaves
    off OpenMetrics' closing line, for a body that more families (of other
    names) will follow.
    """
    buckets: list[list[bytes]] = [[] for _ in FAMILIES]
    for chunks in chunk_sets:
        for i, data in chunks:
            buckets[i].append(data)
    headers = _HEADERS[openmetrics]
    out: list[bytes] = []
    for i, parts in enumerate(buckets):
        if parts:
            parts.insert(0, headers[i])
            out.append(b"".join(parts))
    if openmetrics and eof:
        out.append(b"# EOF\n")
    return out


def join(chunk_sets: Iterable[Chunks], *, openmetrics: bool, eof: bool = True) -> bytes:
    """`join_parts` as one body."""
    return b"".join(join_parts(chunk_sets, openmetrics=openmetrics, eof=eof))


def render_snapshots(snapshots: Iterable[Snapshot], *, openmetrics: bool = False) -> bytes:
    """Render snapshots from scratch (used by `once` and tests; the sink caches chunks)."""
    return join((render_readings(s.readings) for s in snapshots), openmetrics=openmetrics)
