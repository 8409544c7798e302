"""Pure parsers: a miner's decoded replies -> (MinerInfo, readings).

Every parser takes `replies`, a mapping of command name ("summary", "stats",
"http:/summary", "get.miner.status", ...) to the decoded reply object, the
`miner` label value to put on every reading, and `base`, the identity known so
far (from identification); it returns the identity completed by what the
replies say, and the readings. One module per firmware family; this one maps
the firmware table's parser keys to them.
"""

from __future__ import annotations

from edge_agent.collectors.asic.parse_antminer import parse_antminer
from edge_agent.collectors.asic.parse_avalon import parse_avalon, parse_mm
from edge_agent.collectors.asic.parse_braiins import parse_braiins
from edge_agent.collectors.asic.parse_cgminer import parse_cgminer
from edge_agent.collectors.asic.parse_common import MinerInfo, Parser, Replies, make_of, parse_dash_temps
from edge_agent.collectors.asic.parse_epic import parse_epic
from edge_agent.collectors.asic.parse_whatsminer import parse_whatsminer, parse_whatsminer_v3
from edge_agent.model import Reading

__all__ = ["PARSERS", "MinerInfo", "Parser", "parse_dash_temps", "parse_mm"]


def _with_make(parser: Parser) -> Parser:
    """Fill in the make from the model name when neither the table nor the replies gave one."""

    def parse(replies: Replies, miner: str, base: MinerInfo) -> tuple[MinerInfo, list[Reading]]:
        info, readings = parser(replies, miner, base)
        if not info.make and info.model:
            info = info.merged(make=make_of(info.model))
        return info, readings

    parse.__name__ = parser.__name__
    parse.__doc__ = parser.__doc__
    return parse


PARSERS: dict[str, Parser] = {
    "antminer": _with_make(parse_antminer),
    "whatsminer": _with_make(parse_whatsminer),
    "whatsminer-v3": _with_make(parse_whatsminer_v3),
    "braiins": _with_make(parse_braiins),
    "avalon": _with_make(parse_avalon),
    "epic": _with_make(parse_epic),
    "cgminer": _with_make(parse_cgminer),
}
