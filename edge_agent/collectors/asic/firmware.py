"""The firmware detection table: data, not a class per model.

Identification gathers a few facts from a miner's `version` reply (or its
`get_version`, `summary` or HTTP replies when `version` is refused) into a flat
mapping of field -> text:

- `Description`: the STATUS description ("cgminer 1.0.0", "BOSminer+ 0.2.0",
  "btminer", "whatsminer v1.1");
- every string field of `VERSION[0]` (`Type`, `PROD`, `BMMiner`, `LUXminer`...);
- `keys`: the names of the `VERSION[0]` fields, space-joined;
- `api`: "btminer" when `get_version` answered, "http" when the port speaks HTTP,
  "btminer-v3" when the Whatsminer API v3 answered on port 4433.

The first entry with a matching (field, regex) pair wins; a miner nothing
matches is read generically as cgminer rather than rejected.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from edge_agent.collectors.asic.parse import PARSERS

__all__ = ["GENERIC", "TABLE", "FirmwareEntry", "by_key", "detect"]


@dataclass(frozen=True, slots=True)
class FirmwareEntry:
    """How to read one firmware family.

    `poll`: commands read each interval (sent joined with `+` when
    `multicommand`, else one per connection, in order). `identify`: extra
    commands read once at identification for make/model/MAC/serial. For
    `transport="http"` both hold GET paths; for "btminer-v3", `poll` holds the
    `get.miner.status` sections and `identify` the `get.*` commands. `idle_probe`:
    the command that still answers when mining is stopped (btminer `status`).
    `parser`: a key of `parse.PARSERS`.
    """

    key: str
    name: str
    make: str
    match: tuple[tuple[str, str], ...]
    poll: tuple[str, ...]
    parser: str
    multicommand: bool = True
    identify: tuple[str, ...] = ()
    idle_probe: str = ""
    transport: Literal["cgminer", "http", "btminer-v3"] = "cgminer"

    def matches(self, facts: Mapping[str, str]) -> bool:
        return any(re.search(pattern, facts.get(field, "")) for field, pattern in self.match)


# Bitmain models whose bmminer numbers chains 6..8 and sends hashrates as strings.
_S9_CLASS = r"Antminer (?:S9|S9i|S9j|S9k|S9 SE|S9 Hydro|T9\+?|S11|L3\+{0,2}|D3|A3|Z9|X3)(?:\s|$)"

TABLE: tuple[FirmwareEntry, ...] = (
    FirmwareEntry(
        key="epic",
        name="ePIC",
        make="",
        match=(("api", r"^http$"),),
        poll=("/summary",),
        identify=("/capabilities", "/summary"),
        parser="epic",
        multicommand=False,
        transport="http",
    ),
    FirmwareEntry(
        key="whatsminer-v3",
        name="btminer",
        make="MicroBT",
        match=(("api", r"^btminer-v3$"),),
        # get.miner.status sections, sent as one `param` ("summary").
        poll=("summary",),
        identify=("get.device.info",),
        parser="whatsminer-v3",
        multicommand=False,
        transport="btminer-v3",
    ),
    FirmwareEntry(
        key="luxos",
        name="LuxOS",
        make="Bitmain",
        match=(("keys", r"\bLUXminer\b"), ("Description", r"(?i)luxminer")),
        poll=("summary", "pools", "stats", "power"),
        identify=("config",),
        parser="antminer",
    ),
    FirmwareEntry(
        key="vnish",
        name="VNish",
        make="Bitmain",
        match=(("Type", r"(?i)\bvnish\b"),),
        poll=("summary", "pools", "stats"),
        parser="antminer",
    ),
    FirmwareEntry(
        key="braiins",
        name="Braiins OS",
        make="",
        match=(("Description", r"(?i)\bbos(?:miner|er)\b"), ("keys", r"\bBOSminer\b")),
        poll=("summary", "pools", "devs", "devdetails", "temps", "fans", "tunerstatus"),
        identify=("devdetails",),
        parser="braiins",
    ),
    FirmwareEntry(
        key="avalon",
        name="Avalon",
        make="Canaan",
        match=(("PROD", r"(?i)avalon"), ("keys", r"\bPROD\b")),
        poll=("summary", "pools", "estats"),
        parser="avalon",
    ),
    FirmwareEntry(
        key="whatsminer",
        name="btminer",
        make="MicroBT",
        match=(("api", r"^btminer$"), ("Description", r"(?i)\b(?:btminer|whatsminer)\b")),
        poll=("summary", "pools", "edevs"),
        # btminer cannot join get_* commands with `+`: each is its own request.
        identify=("get_version", "get_miner_info", "devdetails"),
        idle_probe="status",
        parser="whatsminer",
    ),
    FirmwareEntry(
        key="antminer-s9",
        name="Bitmain stock",
        make="Bitmain",
        match=(("Type", _S9_CLASS),),
        poll=("summary", "pools", "stats"),
        parser="antminer",
    ),
    FirmwareEntry(
        key="antminer-s19",
        name="Bitmain stock",
        make="Bitmain",
        match=(("Type", r"(?i)antminer"), ("keys", r"\bBMMiner\b")),
        # Some S19 firmware refuses `+`; the poll falls back to single commands.
        poll=("summary", "pools", "stats"),
        parser="antminer",
    ),
)

GENERIC = FirmwareEntry(
    key="cgminer",
    name="cgminer",
    make="",
    match=(),
    poll=("summary", "pools"),
    parser="cgminer",
)

_BY_KEY = {entry.key: entry for entry in (*TABLE, GENERIC)}
for _entry in _BY_KEY.values():
    if _entry.parser not in PARSERS:
        raise ValueError(f"firmware {_entry.key}: no parser {_entry.parser!r}")


def detect(facts: Mapping[str, str]) -> FirmwareEntry:
    """The first table entry whose rules match `facts`, else the generic cgminer entry."""
    for entry in TABLE:
        if entry.matches(facts):
            return entry
    return GENERIC


def by_key(key: str) -> FirmwareEntry:
    """The entry for a firmware key (KeyError if unknown)."""
    return _BY_KEY[key]
