"""Child processes of the capacity benchmark, and the pipe each one is driven through.

Each part of a run (load generator, dashboards, station or bare receiver) is its own process, so
that one part's CPU is never the other's, and the station's CPU time and peak memory are its own.
They are *spawned* (a fresh interpreter, nothing inherited from the parent's memory), talk to the
parent over a ``multiprocessing`` pipe, and are killed in ``finally`` whatever happens.
"""

from __future__ import annotations

import asyncio
import multiprocessing as mp
from collections.abc import Callable
from multiprocessing.connection import Connection
from typing import Any


class ChildFailed(RuntimeError):
    """A child process died, answered with an error, or did not answer in time."""


class Child:
    """One spawned process and the parent's end of its pipe."""

    def __init__(self, name: str, target: Callable[..., None], *args: Any) -> None:
        ctx = mp.get_context("spawn")
        self.name = name
        self.conn, child_end = ctx.Pipe()
        self.process = ctx.Process(target=target, args=(child_end, *args), name=name,
                                   daemon=True)
        self.process.start()
        child_end.close()

    @property
    def pid(self) -> int:
        assert self.process.pid is not None
        return self.process.pid

    def ask(self, command: str, timeout: float = 30.0, **args: Any) -> dict:
        """Send a command and wait for its answer, at most ``timeout`` seconds."""
        self.conn.send((command, args))
        return self.wait(timeout, what=command)

    def wait(self, timeout: float = 30.0, what: str = "an answer") -> dict:
        if not self.conn.poll(timeout):
            alive = "alive" if self.process.is_alive() else f"dead ({self.process.exitcode})"
            raise ChildFailed(f"{self.name} ({alive}) gave no answer to {what} in {timeout}s")
        try:
            answer = self.conn.recv()
        except EOFError:
            raise ChildFailed(f"{self.name} died (exit code {self.process.exitcode}) "
                              f"before answering {what}") from None
        if isinstance(answer, dict) and "error" in answer:
            raise ChildFailed(f"{self.name}: {answer['error']}")
        return answer

    def kill(self) -> None:
        if self.process.is_alive():
            self.process.kill()
        self.process.join(5)
        self.conn.close()


async def receive(conn: Connection) -> tuple[str, dict]:
    """The next command from the parent, without blocking the child's event loop."""
    loop = asyncio.get_running_loop()
    while not conn.poll():
        ready = loop.create_future()
        loop.add_reader(conn.fileno(), lambda f=ready: f.done() or f.set_result(None))
        try:
            await ready
        finally:
            loop.remove_reader(conn.fileno())
    return conn.recv()


def cpu_seconds() -> float:
    """User plus system CPU time of this process so far."""
    import resource

    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def memory() -> dict[str, int]:
    """Resident and peak resident memory of this process in bytes, from /proc (Linux)."""
    out = {"rss": 0, "peak_rss": 0}
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                out["rss"] = int(line.split()[1]) * 1024
            elif line.startswith("VmHWM:"):
                out["peak_rss"] = int(line.split()[1]) * 1024
    return out


def use_loop(name: str) -> str:
    """Install uvloop when asked for and installed; the default asyncio loop otherwise."""
    if name == "uvloop":
        try:
            import uvloop  # type: ignore[import-not-found]
        except ImportError:
            return "asyncio"
        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
        return "uvloop"
    return "asyncio"
