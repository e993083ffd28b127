"""What many test files share, in one module (no test file imports another test file).

Tests wait the way the labs do, with :func:`course.wait_until` (TimeoutError naming what never
happened), never sleeping and hoping.
"""

import asyncio
import json

from tornado.httpclient import AsyncHTTPClient

from course.waiting import wait_until

__all__ = ["get_json", "next_message", "run", "wait_until"]


def run(coro):
    """Run a test's coroutine on a fresh event loop, with a deadline so a hang fails, not stalls."""
    return asyncio.run(asyncio.wait_for(coro, timeout=60))


async def get_json(url: str) -> dict:
    resp = await AsyncHTTPClient().fetch(url)
    return json.loads(resp.body)


async def next_message(ws, kind: str, timeout: float = 10.0) -> dict:
    """The next WebSocket message of type ``kind`` from the station, skipping the others."""
    async def loop():
        while True:
            raw = await ws.read_message()
            assert raw is not None, "the station closed the WebSocket"
            msg = json.loads(raw)
            if msg["type"] == kind:
                return msg
    return await asyncio.wait_for(loop(), timeout)
