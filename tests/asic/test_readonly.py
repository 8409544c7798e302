"""Read-only by construction: nothing but an allowlisted read reaches a miner, through any code path."""

from __future__ import annotations

import dataclasses

import pytest

from edge_agent.collectors.asic import client, firmware, miner
from edge_agent.collectors.asic.client import HTTP_READ_PATHS, READ_COMMANDS, CommandNotAllowed
from edge_agent.collectors.asic.parse import MinerInfo
from edge_agent.sim import firmwares

from .helpers import Peer, fixed_reply

PRIVILEGED = [
    # cgminer / bmminer
    "restart",
    "quit",
    "switchpool",
    "addpool",
    "removepool",
    "enablepool",
    "disablepool",
    "poolpriority",
    "poolquota",
    "save",
    "privileged",
    "failover-only",
    "debug",
    "setconfig",
    "pgaset",
    "ascset",
    "pgaenable",
    "pgadisable",
    "pgaidentify",
    "ascenable",
    "ascdisable",
    "ascidentify",
    "zero",
    "hotplug",
    "lockstats",
    # bosminer / LuxOS
    "pause",
    "resume",
    "curtail",
    "sleep",
    "wakeup",
    "logon",
    "logoff",
    "session",
    "profileset",
    "frequencyset",
    "voltageset",
    "rebootdevice",
    "resetminer",
    "updaterun",
    "fanset",
    # Whatsminer btminer v2
    "set_power_pct",
    "set_power_pct_v2",
    "power_off",
    "power_on",
    "reboot",
    "update_pools",
    "set_low_power",
    "set_high_power",
    "set_normal_power",
    "factory_reset",
    "update_firmware",
    "upgrade",
    "set_target_freq",
    "enable_btminer_fast_boot",
    "disable_btminer_fast_boot",
    "set_led",
    "set_zone",
    "set_hostname",
    "net_config",
    "adjust_power_limit",
    "pre_power_on",
    "get_token",
    "set.miner.power_percent",
    "set.system.reboot",
]

INJECTIONS = [
    "summary+restart",
    "restart+summary",
    "summary+pools+stats+quit",
    "summary|restart",
    "summary|0,restart",
    'summary\n{"command":"restart"}',
    'summary","command":"restart',
    "summary\x00restart",
    "summary ",
    " summary",
    "Summary",
    "SUMMARY",
    "summary+",
    "+summary",
    "summary++pools",
    "",
    "summary;restart",
    "summary\r\nrestart",
]

HTTP_INJECTIONS = [
    "/reboot",
    "/mode",
    "/pool",
    "/softreboot",
    "/fanspeed/../reboot",
    "/summary?cmd=reboot",
    "/summary HTTP/1.1\r\n\r\nPOST /reboot",
    "summary",
    "",
    "/api/v1/unlock",
]


@pytest.fixture
async def listener(peer_factory) -> Peer:
    """A miner that would answer; the tests assert it never sees a connection."""
    return await peer_factory(fixed_reply(b'{"STATUS":[{"STATUS":"S"}],"id":1}\x00'))


def assert_untouched(peer: Peer) -> None:
    assert peer.connections == 0
    assert peer.requests == []


def test_the_allowlists_hold_no_privileged_command() -> None:
    assert not READ_COMMANDS & set(PRIVILEGED)
    assert all("+" not in c and "|" not in c for c in READ_COMMANDS)
    assert READ_COMMANDS <= firmwares.READ_COMMANDS  # the simulator's independent list
    assert HTTP_READ_PATHS <= firmwares.HTTP_READ_PATHS


@pytest.mark.parametrize("command", PRIVILEGED + INJECTIONS)
async def test_request_refuses_before_connecting(listener: Peer, command: str) -> None:
    with pytest.raises(CommandNotAllowed):
        await client.request(listener.host, listener.port, command)
    assert_untouched(listener)


@pytest.mark.parametrize("command", PRIVILEGED + INJECTIONS)
async def test_query_refuses_before_connecting(listener: Peer, command: str) -> None:
    with pytest.raises(CommandNotAllowed):
        await client.query(listener.host, listener.port, command)
    with pytest.raises(CommandNotAllowed):
        await client.query(listener.host, listener.port, ("summary", command))
    assert_untouched(listener)


@pytest.mark.parametrize(
    ("command", "parameter"),
    [
        ("summary", "0"),  # read commands other than asc/pga take no parameter
        ("asc", "0,restart"),
        ("asc", "0|restart"),
        ("asc", '0","command":"restart'),
        ("asc", "-1"),
        ("asc", ""),
        ("ascset", "0,freq,650"),
        ("switchpool", "1"),
        ("summary+pools", "0"),
        ("asc+pga", "0"),
    ],
)
async def test_parameters_cannot_carry_a_command(listener: Peer, command: str, parameter: str) -> None:
    with pytest.raises(CommandNotAllowed):
        await client.request(listener.host, listener.port, command, parameter=parameter)
    assert_untouched(listener)


@pytest.mark.parametrize("command", [b"summary", ["summary"], {"command": "restart"}, None, 1])
async def test_non_string_commands_are_refused(listener: Peer, command: object) -> None:
    with pytest.raises(CommandNotAllowed):
        await client.request(listener.host, listener.port, command)  # type: ignore[arg-type]
    assert_untouched(listener)


@pytest.mark.parametrize("path", HTTP_INJECTIONS)
async def test_http_get_refuses_paths_off_the_allowlist(listener: Peer, path: str) -> None:
    with pytest.raises(CommandNotAllowed):
        await client.http_get(listener.host, listener.port, path)
    assert_untouched(listener)


@pytest.mark.parametrize("command", ["restart", "summary+restart", "set_low_power", "power_off"])
async def test_poll_through_a_forged_profile_refuses_before_connecting(listener: Peer, command: str) -> None:
    for entry in (firmware.by_key("antminer-s19"), firmware.by_key("whatsminer"), firmware.GENERIC):
        for multicommand in (True, False):
            forged = dataclasses.replace(entry, poll=("summary", command), idle_probe=command)
            profile = miner.FirmwareProfile(entry=forged, info=MinerInfo(), multicommand=multicommand)
            with pytest.raises(CommandNotAllowed):
                await miner.poll(listener.host, listener.port, profile)
    forged_http = dataclasses.replace(firmware.by_key("epic"), poll=("/reboot",))
    with pytest.raises(CommandNotAllowed):
        await miner.poll(listener.host, listener.port, miner.FirmwareProfile(forged_http, MinerInfo(), False))
    assert_untouched(listener)


def test_every_command_in_the_firmware_table_is_a_read() -> None:
    for entry in (*firmware.TABLE, firmware.GENERIC):
        commands = (*entry.poll, *entry.identify, *((entry.idle_probe,) if entry.idle_probe else ()))
        for command in commands:
            if entry.transport == "http":
                assert command in HTTP_READ_PATHS, (entry.key, command)
            elif entry.transport == "btminer-v3":
                if command in entry.identify:
                    client.check_v3(command)
                else:
                    client.check_v3("get.miner.status", command)
            else:
                client.check_command(command)
        if entry.multicommand and entry.transport == "cgminer":
            client.check_command("+".join(entry.poll))


async def test_the_listener_does_answer_reads(listener: Peer) -> None:
    """The control: the same listener serves an allowed read, so the refusals above are the client's doing."""
    await client.request(listener.host, listener.port, "summary")
    assert listener.connections == 1
    assert listener.requests == [b'{"command":"summary"}']
