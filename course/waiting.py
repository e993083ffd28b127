"""Waiting on a condition with a deadline, on the notebook's own event loop.

A lab cell that needs the ward or the station to have done something (a datagram arrived, an
alarm was journaled) waits for exactly that, and says what it was waiting for if it never
happens, instead of sleeping for a guessed time and hoping. The tests use the same function.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable


async def wait_until(predicate: Callable[[], object], *, timeout: float = 10.0,
                     interval: float = 0.02, what: str = "the condition") -> object:
    """Let the event loop run until ``predicate()`` is truthy and return its value; raise
    TimeoutError naming ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not (value := predicate()):
        if time.monotonic() > deadline:
            raise TimeoutError(f"after {timeout} s, still waiting for {what}")
        await asyncio.sleep(interval)
    return value
