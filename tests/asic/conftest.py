"""Fixtures for the miner tests (helpers live in `helpers.py`)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from .helpers import Handler, Peer


@pytest.fixture
async def peer_factory() -> AsyncIterator[Callable[[Handler], Awaitable[Peer]]]:
    peers: list[Peer] = []

    async def make(handler: Handler) -> Peer:
        peer = await Peer(handler).start()
        peers.append(peer)
        return peer

    yield make
    for peer in peers:
        await peer.aclose()
