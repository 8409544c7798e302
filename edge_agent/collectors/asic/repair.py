"""Narrow repairs for the JSON faults real miner firmware sends.

`loads` tries orjson on the bytes as they came (the fast path, taken by every
well-formed reply) and repairs only when that fails. Each repair targets one
fault seen on real firmware and applies only outside string values, so a `}{`
or `nan` inside a pool URL or a firmware string is never touched:

- a NUL terminator (every cgminer-family server) and anything after it;
- non-UTF-8 bytes (decoded with U+FFFD replacement);
- `}{` with no comma between objects (bmminer STATS on S9-era Antminers);
- `,}` and `,]` trailing commas (btminer on Whatsminers);
- `[,` and `{,` leading commas (seen in the wild on Avalon and btminer);
- a missing comma between a string and the next key (`"abc""temp0"`, btminer
  2023-01 and the v3 `get.device.info` reply);
- bare `nan`, `-nan`, `inf`, `-inf` tokens (cgminer's `%f` formatting has no
  NaN guard) become `null`, which the parsers treat as no data.

Strings such as `"inf"`, `"nan"` and padded numbers (`"  5.0000"`, Antminer D3
and others) are valid JSON; `number` turns them into floats or None.
"""

from __future__ import annotations

import itertools
import math
import re
from typing import Any

import orjson

__all__ = ["BeyondRepair", "loads", "number", "repair_text"]


class BeyondRepair(ValueError):
    """The bytes are not JSON even after the known repairs."""


# One scan finds string literals (kept as they are) and the faults outside them.
# Strings come first in the alternation so a fault-looking text inside a string
# is consumed as part of the string and never rewritten.
_TOKENS = re.compile(
    r"""
    "[^"\\]*(?:\\.[^"\\]*)*"(?P<gap>\s*(?="))?      # a string literal; gap: another string follows
    | \}\s*\{                                  # }{   (bmminer)
    | ,\s*(?=[}\]])                            # ,} ,] (btminer)
    | (?<=[\[{])\s*,                           # [, {,
    | (?<![\w.])-?(?:nan|inf(?:inity)?)(?!\w)  # bare nan / inf
    """,
    re.IGNORECASE | re.DOTALL | re.VERBOSE,
)


def _fix(match: re.Match[str]) -> str:
    text = match.group(0)
    first = text[0]
    if first == '"':
        gap = match.group("gap")
        # Two strings in a row are never valid JSON: btminer drops the comma before a key.
        return text if gap is None else text[: len(text) - len(gap)] + "," + gap
    if first == "}":
        return "},{"
    if first == "," or first.isspace():
        # A trailing comma before a closer, or a leading comma after an opener.
        return ""
    return "null"


# The same repairs in two steps, so a Python callback runs once per fault rather than once per
# string literal (an S9 or Whatsminer reply holds hundreds of strings and a few faults; the
# one-step scan was most of the CPU of polling such a miner): string literals are lifted out
# and replaced by a marker, the faults are fixed on the skeleton that is left, and the strings
# are put back. The fault patterns never contain a quote, so both ways find the same strings.
_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_MARK = "\x01"
# One pass per fault, each starting with a literal or a small set so the scan is fast, and each
# skipped when the skeleton cannot hold that fault.
_GAP = re.compile(r'\x01(?=\s*[\x01"])')  # a string followed by another string: comma (btminer)
_OBJECTS = re.compile(r"\}\s*\{")  # }{ (bmminer)
_TRAILING = re.compile(r",\s*(?=[}\]])")  # ,} ,] (btminer)
_LEADING = re.compile(r"([\[{])\s*,")  # [, {,
_NON_FINITE = re.compile(r"(?<![\w.])-?(?:nan|inf(?:inity)?)(?!\w)", re.IGNORECASE)  # bare nan / inf


def _fix_skeleton(skeleton: str) -> str:
    if _MARK + _MARK in skeleton or _GAP.search(skeleton):
        skeleton = _GAP.sub(_MARK + ",", skeleton)
    if "}" in skeleton:
        skeleton = _OBJECTS.sub("},{", skeleton)
    if "," in skeleton:
        # Leading before trailing: in `[ ,]` the one-step scan removed the comma with its space.
        skeleton = _LEADING.sub(r"\1", skeleton)
        skeleton = _TRAILING.sub("", skeleton)
    lowered = skeleton.lower()
    if "nan" in lowered or "inf" in lowered:
        skeleton = _NON_FINITE.sub("null", skeleton)
    return skeleton


def repair_text(text: str) -> str:
    """Apply the narrow repairs to decoded text (exposed for tests and the debug log)."""
    if _MARK in text:
        return _TOKENS.sub(_fix, text)  # the marker is taken: the one-step scan
    strings = _STRING.findall(text)
    skeleton = _fix_skeleton(_STRING.sub(_MARK, text))
    parts = skeleton.split(_MARK)
    strings.append("")
    return "".join(itertools.chain.from_iterable(zip(parts, strings, strict=True)))


def loads(raw: bytes) -> Any:
    """Decode a miner's reply, repairing known firmware faults only when needed.

    Raises `BeyondRepair` when the bytes are not JSON even after repair.
    """
    nul = raw.find(b"\x00")
    body = raw if nul < 0 else raw[:nul]
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        pass
    text = body.decode("utf-8", errors="replace")
    try:
        return orjson.loads(repair_text(text))
    except orjson.JSONDecodeError as exc:
        raise BeyondRepair(str(exc)) from exc


def number(value: object) -> float | None:
    """A finite float from a JSON value, or None when it carries no number.

    Firmware sends numbers as numbers, as strings, as padded strings
    (`"  5.0000"`) and as `"inf"`/`"nan"`; booleans, empty strings and
    non-finite values are no data.
    """
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, int):
        return None if isinstance(value, bool) else float(value)
    if isinstance(value, str):
        text = value.strip()
        if not text:
            return None
        try:
            result = float(text)
        except ValueError:
            return None
        return result if math.isfinite(result) else None
    return None
