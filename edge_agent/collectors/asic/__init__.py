"""ASIC miners: the cgminer-family RPC client, firmware detection and pure parsers.

Layers, each with one job:
- `client`: bytes on a socket, read-only by construction, errors classified
  (cgminer JSON on 4028, ePIC HTTP GET, Whatsminer API v3 frames on 4433).
- `repair`: narrow fixes for the JSON faults real firmware sends.
- `firmware`: the detection table (which firmware, which commands, which parser).
- `parse` (and `parse_<family>` over `parse_common`): pure functions from
  decoded replies to `MinerInfo` and readings.
- `miner`: identify a miner and poll it, one connection at a time.
"""
