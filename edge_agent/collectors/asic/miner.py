"""Identify a miner's firmware and poll it: what the fleet calls for each miner.

Requests to one miner are strictly sequential (cgminer serves one connection at
a time); each request has its own deadline (`timeout`) and byte cap.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from typing import Any

from edge_agent.collectors.asic import client
from edge_agent.collectors.asic.client import (
    DEFAULT_MAX_BYTES,
    DEFAULT_TIMEOUT,
    V3_PORT,
    MinerCommandRejected,
    MinerError,
    MinerMalformed,
    MinerRefused,
)
from edge_agent.collectors.asic.firmware import FirmwareEntry, by_key, detect
from edge_agent.collectors.asic.parse import PARSERS, MinerInfo
from edge_agent.collectors.asic.parse_whatsminer import btminer_off
from edge_agent.model import Reading

log = logging.getLogger(__name__)

__all__ = ["FirmwareProfile", "MinerPoll", "identify", "poll"]


@dataclass(frozen=True, slots=True)
class FirmwareProfile:
    """What identification learned: the firmware entry, the identity, and whether `+` works."""

    entry: FirmwareEntry
    info: MinerInfo
    multicommand: bool
    # The port to talk to when it is not the target's own: a Whatsminer whose 4028 is
    # closed but whose API v3 answers on 4433. Readings keep the target's address.
    port: int | None = None

    @property
    def key(self) -> str:
        return self.entry.key


@dataclass(frozen=True, slots=True)
class MinerPoll:
    """One poll's result. `profile` may differ from the one passed in (multi-command fallback):
    the caller keeps the returned one for the next poll."""

    info: MinerInfo
    readings: tuple[Reading, ...]
    profile: FirmwareProfile


def _facts_from(reply: dict[str, Any], facts: dict[str, str]) -> None:
    status = reply.get("STATUS")
    if isinstance(status, list) and status and isinstance(status[0], dict):
        description = status[0].get("Description")
    else:
        description = reply.get("Description")
    if isinstance(description, str) and description and "Description" not in facts:
        facts["Description"] = description
    version = reply.get("VERSION")
    if isinstance(version, list) and version and isinstance(version[0], dict):
        row = version[0]
        facts["keys"] = " ".join(str(k) for k in row)
        for key, value in row.items():
            if isinstance(value, str):
                facts.setdefault(str(key), value)


async def _raw_reply(
    host: str,
    port: int,
    command: str,
    timeout: float,  # noqa: ASYNC109
    max_bytes: int,
) -> tuple[bytes, dict[str, Any]]:
    raw = await client.request(host, port, command, timeout=timeout, max_bytes=max_bytes)
    if raw.startswith(b"HTTP/"):
        return raw, {}
    return raw, client.decode(raw, f"{host}:{port}")


async def identify(
    host: str,
    port: int,
    *,
    timeout: float = DEFAULT_TIMEOUT,  # noqa: ASYNC109
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> FirmwareProfile:
    """Find which firmware a miner runs and who it is. Raises a `MinerError` if it does not answer.

    Port 4433 is Whatsminer API v3. On any other port the cgminer API is tried;
    when that port refuses the connection, API v3 on 4433 is tried before giving
    up (Whatsminer firmware from 2024-11 can have the v2 API switched off).
    """
    if port == V3_PORT:
        return await _identify_v3(host, port, port, timeout, max_bytes)
    try:
        return await _identify_cgminer(host, port, timeout, max_bytes)
    except MinerRefused as refused:
        try:
            return await _identify_v3(host, port, V3_PORT, timeout, max_bytes)
        except MinerError:
            raise refused from refused.__cause__


async def _identify_v3(
    host: str,
    port: int,
    connect_port: int,
    timeout: float,  # noqa: ASYNC109
    max_bytes: int,
) -> FirmwareProfile:
    miner = f"{host}:{port}"
    entry = by_key("whatsminer-v3")
    _check(entry, miner)
    replies: dict[str, dict[str, Any]] = {}
    for command in entry.identify:
        replies[command] = await client.query_v3(host, connect_port, command, timeout=timeout, max_bytes=max_bytes)
    info, _ = PARSERS[entry.parser](replies, miner, MinerInfo(make=entry.make))
    if not info.firmware:
        info = info.merged(firmware=entry.name)
    log.debug("%s: identified as %s (%s %s) on port %d", miner, entry.key, info.make, info.model, connect_port)
    return FirmwareProfile(
        entry=entry, info=info, multicommand=False, port=None if connect_port == port else connect_port
    )


async def _identify_cgminer(
    host: str,
    port: int,
    timeout: float,  # noqa: ASYNC109
    max_bytes: int,
) -> FirmwareProfile:
    miner = f"{host}:{port}"
    facts: dict[str, str] = {}
    replies: dict[str, dict[str, Any]] = {}

    raw, reply = await _raw_reply(host, port, "version", timeout, max_bytes)
    if raw.startswith(b"HTTP/"):
        # ePIC answers HTTP on the cgminer port.
        facts["api"] = "http"
    else:
        _facts_from(reply, facts)
        if client.status_of(reply)[0] not in ("E", "F"):
            replies["version"] = reply
        else:
            # btminer answers `version` with "invalid cmd"; its get_version works.
            try:
                got = await client.query(host, port, "get_version", timeout=timeout, max_bytes=max_bytes)
            except (MinerCommandRejected, MinerMalformed):
                got = {}
            if isinstance(got.get("get_version", {}).get("Msg"), dict):
                facts["api"] = "btminer"
                replies.update(got)
            elif detect(facts).parser == "cgminer":
                summary = await client.query(host, port, "summary", timeout=timeout, max_bytes=max_bytes)
                _facts_from(summary["summary"], facts)

    entry = detect(facts)
    _check(entry, miner)
    for command in entry.identify:
        if command in replies:
            continue
        try:
            if entry.transport == "http":
                replies["http:" + command] = await client.http_get(
                    host, port, command, timeout=timeout, max_bytes=max_bytes
                )
            else:
                replies.update(await client.query(host, port, command, timeout=timeout, max_bytes=max_bytes))
        except MinerCommandRejected as exc:
            log.debug("%s: identify %s rejected: %s", miner, command, exc.detail)
    info, _ = PARSERS[entry.parser](replies, miner, MinerInfo(make=entry.make))
    if not info.firmware:
        info = info.merged(firmware=entry.name)
    log.debug("%s: identified as %s (%s %s)", miner, entry.key, info.make, info.model)
    return FirmwareProfile(entry=entry, info=info, multicommand=entry.multicommand)


def _check(entry: FirmwareEntry, miner: str) -> None:
    """Refuse the whole poll before any connection if any command it could send is not a read."""
    if entry.transport == "http":
        for path in (*entry.poll, *entry.identify):
            client.check_http_path(path, miner=miner)
        return
    if entry.transport == "btminer-v3":
        client.check_v3("get.miner.status", "+".join(entry.poll), miner=miner)
        for command in entry.identify:
            client.check_v3(command, miner=miner)
        return
    for command in (*entry.poll, *entry.identify, *((entry.idle_probe,) if entry.idle_probe else ())):
        client.check_command(command, miner=miner)


async def _singles(
    host: str,
    port: int,
    commands: tuple[str, ...],
    timeout: float,  # noqa: ASYNC109
    max_bytes: int,
) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for command in commands:
        try:
            out.update(await client.query(host, port, command, timeout=timeout, max_bytes=max_bytes))
        except MinerCommandRejected as exc:
            log.debug("%s:%s: %s rejected: %s", host, port, command, exc.detail)
    return out


async def _idle(
    host: str,
    port: int,
    entry: FirmwareEntry,
    timeout: float,  # noqa: ASYNC109
    max_bytes: int,
) -> dict[str, dict[str, Any]]:
    """The idle probe's reply when it says mining is stopped, else {}.

    Only btminer has one (`status` -> `btmineroff`); a miner whose probe says it
    is mining refused the batch for another reason, and the caller falls back.
    """
    if not entry.idle_probe:
        return {}
    try:
        got = await client.query(host, port, entry.idle_probe, timeout=timeout, max_bytes=max_bytes)
    except MinerCommandRejected:
        return {}
    return got if btminer_off(got) else {}


async def poll(
    host: str,
    port: int,
    profile: FirmwareProfile,
    *,
    timeout: float = DEFAULT_TIMEOUT,  # noqa: ASYNC109 (a per-request deadline, applied inside with asyncio.timeout)
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> MinerPoll:
    """Read a miner once. Raises a `MinerError` if it does not answer usefully.

    The readings exclude `asic_up` and `asic_poll_duration_seconds`, which the
    fleet adds.
    """
    miner = f"{host}:{port}"
    entry = profile.entry
    _check(entry, miner)
    port = profile.port or port
    replies: dict[str, dict[str, Any]] = {}
    if entry.transport == "http":
        for path in entry.poll:
            replies["http:" + path] = await client.http_get(host, port, path, timeout=timeout, max_bytes=max_bytes)
    elif entry.transport == "btminer-v3":
        replies["get.miner.status"] = await client.query_v3(
            host, port, "get.miner.status", "+".join(entry.poll), timeout=timeout, max_bytes=max_bytes
        )
    elif profile.multicommand and len(entry.poll) > 1:
        try:
            replies = await client.query(host, port, entry.poll, timeout=timeout, max_bytes=max_bytes)
        except MinerCommandRejected as exc:
            # Either mining is stopped (btminer then answers only `status`) or
            # the firmware refuses `+` (some S19 builds): ask which, then fall back.
            replies = await _idle(host, port, entry, timeout, max_bytes)
            if not replies:
                replies = await _singles(host, port, entry.poll, timeout, max_bytes)
                if not replies:
                    raise
                # Once per miner, and a property of its firmware rather than news: thousands of
                # S19s on stock firmware would each log it at start.
                log.debug("%s: multi-command refused (%s); polling with single commands", miner, exc.detail)
                profile = replace(profile, multicommand=False)
    else:
        replies = await _singles(host, port, entry.poll, timeout, max_bytes)
        if not replies:
            replies = await _idle(host, port, entry, timeout, max_bytes)
        if not replies:
            raise MinerCommandRejected(miner, f"{'+'.join(entry.poll)}: every command rejected")
    info, readings = PARSERS[entry.parser](replies, miner, profile.info)
    return MinerPoll(info=info, readings=tuple(readings), profile=profile)
