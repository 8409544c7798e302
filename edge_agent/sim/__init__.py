"""The simulated miner fleet used by tests, benchmarks and the demo.

`firmwares` renders the bytes each firmware family sends (quirks included) from a
`MinerState`; `server` serves them over TCP on loopback addresses.
"""
