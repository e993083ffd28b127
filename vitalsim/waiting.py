"""Waiting on a condition with a deadline, on the running event loop: the one polling loop.

Code that needs the ward or the station to have done something (a datagram arrived, an alarm was
journaled, an outbox drained) waits for exactly that, and says what it was waiting for if it
never happens, instead of sleeping for a guessed time and hoping. It lives on the ground floor so
that every floor uses the same one: the devices and the station here, the labs and the tests
through :func:`course.wait_until`.
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
