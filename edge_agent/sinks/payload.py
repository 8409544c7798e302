"""MQTT topics and JSON payloads, derived from the metric table.

A snapshot becomes one JSON object: `ts`, `seq`, `device`, `up`, the device's
identity attributes, every unlabelled reading at the top level under the metric
name without its domain prefix (`asic_power_watts` -> `power_watts`), and the
labelled readings collected into lists of objects under the row's `group`
(`boards: [{"board": "0", "hashrate_hashes_per_second": ..., ...}]`), one object
per distinct set of label values. Inside a group a key also loses the group's
singular prefix (`asic_board_chip_temperature_celsius` in `boards` ->
`chip_temperature_celsius`). Nothing here knows any particular metric: a new
row in the table shows up in the payload by itself.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from edge_agent.metrics import METRICS, Metric
from edge_agent.model import Event, Snapshot

# Keys every snapshot payload sets itself; attrs and readings never overwrite them.
_RESERVED = frozenset({"ts", "seq", "device", "up"})


class _Shape:
    __slots__ = ("fixed", "group", "key", "labels")

    def __init__(self, key: str, group: str, labels: tuple[str, ...], fixed: bool = False) -> None:
        self.key = key
        self.group = group
        self.labels = labels
        # True when the table row names the labels: the shape then never depends on a reading's labels.
        self.fixed = fixed


def _short(name: str) -> str:
    """Drop the domain prefix: `asic_`, `gpu_`, `host_`, `site_`..."""
    _, sep, rest = name.partition("_")
    return rest if sep and rest else name


def _shape(name: str, row: Metric | None, labels: tuple[str, ...]) -> _Shape:
    key = _short(name)
    if not labels:
        return _Shape(key, "", labels)
    if row is None or not row.group:
        # A labelled metric without a group: a list of {labels..., "value": v}
        # under the metric's own short name.
        return _Shape("value", key, labels)
    group = row.group
    singular = group[:-1] if group.endswith("s") else group
    if key.startswith(singular + "_") and len(key) > len(singular) + 1:
        key = key[len(singular) + 1 :]
    return _Shape(key, group, labels)


class PayloadBuilder:
    """Renders snapshots and events to JSON bytes; caches each metric's shape."""

    def __init__(self, metrics: Mapping[str, Metric] = METRICS) -> None:
        self._metrics = metrics
        self._shapes: dict[str, _Shape] = {}

    def _shape_of(self, name: str, labels: tuple[str, ...]) -> _Shape:
        shape = self._shapes.get(name)
        if shape is None or shape.labels != labels:
            row = self._metrics.get(name)
            shape = _shape(name, row, row.labels if row is not None and row.labels else labels)
            shape.fixed = row is not None and bool(row.labels)
            self._shapes[name] = shape
        return shape

    def snapshot(self, snap: Snapshot, seq: int) -> bytes:
        doc: dict[str, Any] = {"ts": snap.ts, "seq": seq, "device": snap.device, "up": snap.up}
        for k, v in snap.attrs.items():
            if k not in _RESERVED:
                doc[k] = v
        # Per group, one object per distinct label set. Keyed by the labels tuple itself: readings of
        # one group carry the same label names, so this is one object per set of label values.
        groups: dict[str, dict[tuple[tuple[str, str], ...], dict[str, Any]]] = {}
        shapes = self._shapes
        for key, value, labels in snap.readings:
            shape = shapes.get(key)
            if not labels:
                if shape is None or shape.labels:
                    shape = self._shape_of(key, ())
                if shape.key not in _RESERVED:
                    doc[shape.key] = value
                continue
            if shape is None or not shape.fixed:
                shape = self._shape_of(key, tuple(name for name, _ in labels))
            members = groups.get(shape.group)
            if members is None:
                members = groups[shape.group] = {}
            obj = members.get(labels)
            if obj is None:
                obj = members[labels] = dict(labels)
            obj[shape.key] = value
        for group, members in groups.items():
            if group not in _RESERVED:
                doc[group] = list(members.values())
        return orjson.dumps(doc)

    @staticmethod
    def event(event: Event, seq: int) -> bytes:
        doc: dict[str, Any] = dict(event.detail)
        doc["kind"] = event.kind
        doc["device"] = event.device
        doc["ts"] = event.ts
        doc["seq"] = seq
        return orjson.dumps(doc)


def topic_level(text: str) -> str:
    """Make a device id safe as one topic level (no '/', '+', '#', NUL)."""
    if any(c in text for c in "/+#\x00"):
        return text.replace("/", "_").replace("+", "_").replace("#", "_").replace("\x00", "")
    return text or "_"


def snapshot_topic(prefix: str, snap: Snapshot) -> str:
    """`<p>/host`, `<p>/summary`, otherwise `<p>/<source>/<device>`."""
    if snap.source in ("host", "summary"):
        return f"{prefix}/{snap.source}"
    return f"{prefix}/{topic_level(snap.source)}/{topic_level(snap.device)}"


def status_payload(
    status: str, ts: float, *, site: str, name: str, client_id: str, version: str, reason: str = ""
) -> bytes:
    """`<p>/status`: `online` after connecting; `offline` as the will or on a clean stop (`reason` says which)."""
    doc: dict[str, Any] = {"status": status, "ts": ts, "site": site, "name": name, "client_id": client_id}
    doc["version"] = version
    if reason:
        doc["reason"] = reason
    return orjson.dumps(doc)
