"""One dedicated thread for every NVML call the collector makes.

A driver call can wedge in the kernel (a GPU falling off the bus, a hung
driver) and cannot be cancelled. Running NVML on one thread of our own keeps
the event loop free, and the busy flag stops a second call from queueing
behind a stuck one: the caller gets an immediate error instead of a pile-up.
The thread is a daemon so that a call stuck forever cannot hold up exit.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
from collections.abc import Callable
from typing import Any, TypeVar

from edge_agent.errors import CollectorError

log = logging.getLogger(__name__)

T = TypeVar("T")

_Job = tuple[Callable[[], Any], asyncio.AbstractEventLoop, "asyncio.Future[Any]"]


class NvmlThread:
    """Runs submitted functions one at a time on a single daemon thread."""

    def __init__(self, name: str = "nvml") -> None:
        self._jobs: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._busy = threading.Event()
        self._stopped = False
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    @property
    def busy(self) -> bool:
        """True while a submitted function is still running (possibly stuck in the driver)."""
        return self._busy.is_set()

    @property
    def thread(self) -> threading.Thread:
        return self._thread

    async def call(self, fn: Callable[[], T]) -> T:
        """Run `fn` on the thread and wait for it.

        Raises CollectorError at once if the previous call has not returned.
        Cancelling the caller (a timeout) does not stop `fn`; the thread stays
        busy until the driver returns.
        """
        if self._stopped:
            raise CollectorError("NVML worker is stopped")
        if self._busy.is_set():
            raise CollectorError("previous NVML call still running")
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[T] = loop.create_future()
        self._busy.set()
        self._jobs.put((fn, loop, fut))
        return await fut

    def stop(self) -> None:
        """Let the thread exit after its current job. Never blocks."""
        if not self._stopped:
            self._stopped = True
            self._jobs.put(None)

    def join(self, timeout: float) -> bool:
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def _run(self) -> None:
        while True:
            job = self._jobs.get()
            if job is None:
                return
            fn, loop, fut = job
            result: Any = None
            error: BaseException | None = None
            try:
                result = fn()
            except BaseException as exc:  # handed to the awaiting coroutine, which re-raises it
                error = exc
            finally:
                # Cleared before the result is delivered so the next collection sees us idle.
                self._busy.clear()
            try:
                loop.call_soon_threadsafe(_settle, fut, result, error)
            except RuntimeError:
                log.debug("event loop closed before an NVML result could be delivered")


def _settle(fut: asyncio.Future[Any], result: Any, error: BaseException | None) -> None:
    if fut.done():  # the caller timed out and went away
        return
    if error is not None:
        fut.set_exception(error)
    else:
        fut.set_result(result)
