"""Waiting on a condition with a deadline: the one polling loop, in its two forms.

Code that needs the ward or the station to have done something (a datagram arrived, an alarm was
journaled, an outbox drained) waits for exactly that, and says what it was waiting for if it
never happens, instead of sleeping for a guessed time and hoping. It lives on the ground floor so
that every floor uses the same one: the devices and the station here, the labs and the tests
through :func:`course.wait_until`.

- :func:`wait_until` awaits: the event loop (the station's, the ward's, a notebook's) keeps
  running between looks.
- :func:`wait_until_blocking` blocks the calling thread, for code with no event loop to keep
  running: a subprocess's output, a JupyterHub's API, a browser page, a network namespace.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable


def _expired(deadline: float, timeout: float, what: str) -> None:
    if time.monotonic() > deadline:
        raise TimeoutError(f"after {timeout:g} s, still waiting for {what}")


async def wait_until(predicate: Callable[[], object], *, timeout: float = 10.0,
                     interval: float = 0.02, what: str = "the condition") -> object:
    """Let the event loop run until ``predicate()`` is truthy and return its value; raise
    TimeoutError naming ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not (value := predicate()):
        _expired(deadline, timeout, what)
        await asyncio.sleep(interval)
    return value


def wait_until_blocking(predicate: Callable[[], object], *, timeout: float = 10.0,
                        interval: float = 0.02, what: str = "the condition") -> object:
    """Block until ``predicate()`` is truthy and return its value; raise TimeoutError naming
    ``what`` after ``timeout`` seconds. Never call it on a running event loop: nothing on that
    loop could make the condition come true while it blocks (use :func:`wait_until`)."""
    deadline = time.monotonic() + timeout
    while not (value := predicate()):
        _expired(deadline, timeout, what)
        time.sleep(interval)
    return value
