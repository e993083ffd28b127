"""What an impaired network does to each datagram, decided without sockets or clocks.

Every decision draws from one seeded random generator, in a fixed order per datagram, so a run
with the same seed and the same traffic drops, delays, duplicates and reorders the same datagrams.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field

#: called as ``watcher(field_name, new_value)`` after a settings field changes
Watcher = Callable[[str, object], None]


class Watched:
    """Settings that announce each change of a field to their watchers.

    A proxy's settings are changed from two places while it runs: by code
    (``settings.loss = 0.2``) and by whatever shows them (a notebook's sliders). Whatever shows
    them watches them, so that it follows a change made by code as well as making its own; the
    settings stay plain attributes, with nothing to call to change them. A watcher is called
    after the new value is stored, only when the value differs, and in the thread that set it.
    Watchers live as long as the settings (a proxy's lifetime) unless unwatched.
    """

    def watch(self, watcher: Watcher) -> Callable[[], None]:
        """Call ``watcher(name, value)`` after each change; returns a function that stops it."""
        watchers: list[Watcher] = self.__dict__.setdefault("_watchers", [])
        watchers.append(watcher)

        def unwatch() -> None:
            if watcher in watchers:
                watchers.remove(watcher)

        return unwatch

    def __setattr__(self, name: str, value: object) -> None:
        missing = object()
        old = self.__dict__.get(name, missing)
        object.__setattr__(self, name, value)
        if name.startswith("_") or old is missing or old == value:
            return  # private, first assignment (in __init__), or no change
        for watcher in list(self.__dict__.get("_watchers", ())):
            watcher(name, value)


class GilbertElliott:
    """Bursty loss: a two-state Markov chain. In the *good* state datagrams are lost with
    ``loss_good``, in the *bad* state with ``loss_bad``; each datagram the chain may move, good to
    bad with ``p_gb``, bad to good with ``p_bg``.

    Stationary probability of the bad state: p_gb / (p_gb + p_bg); mean length of a stay in the
    bad state (a burst): 1 / p_bg datagrams.
    """

    def __init__(self, p_gb: float, p_bg: float, *, loss_good: float = 0.0,
                 loss_bad: float = 1.0, rng: random.Random | None = None) -> None:
        for name, p in (("p_gb", p_gb), ("p_bg", p_bg), ("loss_good", loss_good),
                        ("loss_bad", loss_bad)):
            if not 0.0 <= p <= 1.0:
                raise ValueError(f"{name}={p!r} is not a probability in 0..1")
        if p_bg == 0.0 and p_gb > 0.0:
            raise ValueError("p_bg=0 would leave the chain stuck in the bad state for ever")
        self.p_gb, self.p_bg = p_gb, p_bg
        self.loss_good, self.loss_bad = loss_good, loss_bad
        self.rng = rng or random.Random(0)
        self.bad = False

    @classmethod
    def from_loss(cls, loss: float, mean_burst: float | None = None, *,
                  rng: random.Random | None = None) -> GilbertElliott:
        """A chain losing every datagram in its bad state, with this average loss ratio and
        this mean burst length (in datagrams, >= 1). Without ``mean_burst`` losses are
        independent (Bernoulli): the chain forgets its state, p_gb + p_bg = 1, and bursts
        average 1 / (1 - loss) datagrams by chance alone."""
        if not 0.0 <= loss < 1.0:
            raise ValueError(f"loss={loss!r}: expected 0 <= loss < 1")
        if mean_burst is None:
            return cls(loss, 1.0 - loss, rng=rng)
        if mean_burst < 1.0:
            raise ValueError(f"mean_burst={mean_burst!r}: a burst is at least one datagram")
        p_bg = 1.0 / mean_burst
        p_gb = loss * p_bg / (1.0 - loss)
        if p_gb > 1.0:
            raise ValueError(f"loss={loss} with bursts of {mean_burst} is impossible: "
                             f"bursts must average at least {loss / (1 - loss):.2f}")
        return cls(p_gb, p_bg, rng=rng)

    @property
    def stationary_loss(self) -> float:
        if self.p_gb + self.p_bg == 0:
            return self.loss_good
        bad = self.p_gb / (self.p_gb + self.p_bg)
        return bad * self.loss_bad + (1 - bad) * self.loss_good

    def lost(self) -> bool:
        """Move the chain one step and say whether this datagram is lost."""
        if self.bad:
            self.bad = self.rng.random() >= self.p_bg
        else:
            self.bad = self.rng.random() < self.p_gb
        return self.rng.random() < (self.loss_bad if self.bad else self.loss_good)


@dataclass
class UdpSettings(Watched):
    """What the UDP proxy does; change any field while it runs (watchers hear of it)."""

    loss: float = 0.0  # average fraction of datagrams dropped
    burst: float = 0.0  # mean burst length in datagrams (Gilbert-Elliott); 0 = independent
    delay: float = 0.0  # seconds added to every datagram
    jitter: float = 0.0  # seconds, uniform +- around the delay
    duplicate: float = 0.0  # fraction of datagrams delivered twice
    reorder: float = 0.0  # fraction held back by reorder_delay, so later ones overtake them
    reorder_delay: float = 0.05

    def check(self) -> None:
        for name in ("loss", "duplicate", "reorder"):
            value = getattr(self, name)
            if not 0.0 <= value < 1.0:
                raise ValueError(f"{name}={value!r}: expected a fraction 0 <= x < 1")
        for name in ("delay", "jitter", "reorder_delay"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name}={getattr(self, name)!r}: expected seconds >= 0")
        if self.burst != 0.0 and self.burst < 1.0:
            raise ValueError(f"burst={self.burst!r}: 0 for independent losses, or a mean "
                             "burst length of at least one datagram")


@dataclass
class UdpCounters:
    received: int = 0
    dropped: int = 0
    delayed: int = 0  # given any extra delay (delay, jitter or reordering)
    duplicated: int = 0
    reordered: int = 0
    delivered: int = 0

    def as_dict(self) -> dict[str, int]:
        return dict(self.__dict__)


@dataclass
class UdpImpairer:
    """Decides, per datagram, when (if ever) each copy of it is delivered."""

    settings: UdpSettings = field(default_factory=UdpSettings)
    seed: int = 0

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)
        self.counters = UdpCounters()
        self._chain: GilbertElliott | None = None
        self._chain_for: tuple[float, float] | None = None

    def _loss_chain(self) -> GilbertElliott:
        key = (self.settings.loss, self.settings.burst)
        if self._chain_for != key:  # settings changed: a new chain, same generator
            self._chain = GilbertElliott.from_loss(key[0], key[1] or None, rng=self.rng)
            self._chain_for = key
        assert self._chain is not None
        return self._chain

    def decide(self, now: float) -> list[float]:
        """Delivery times for one datagram arriving at ``now``: [] means dropped."""
        s = self.settings
        s.check()
        self.counters.received += 1
        if self._loss_chain().lost():
            self.counters.dropped += 1
            return []
        copies = 2 if self.rng.random() < s.duplicate else 1
        held = self.rng.random() < s.reorder
        out = []
        for _ in range(copies):
            t = now + s.delay + (self.rng.uniform(-s.jitter, s.jitter) if s.jitter else 0.0)
            if held:
                t += s.reorder_delay
            out.append(max(t, now))
        if any(t > now for t in out):
            self.counters.delayed += 1
        if copies == 2:
            self.counters.duplicated += 1
        if held:
            self.counters.reordered += 1
        self.counters.delivered += copies
        return out


@dataclass
class TcpSettings(Watched):
    """What the TCP proxy does to each connection; change any field while it runs (watchers
    hear of it)."""

    latency: float = 0.0  # seconds added to every piece of data, each way
    bandwidth: float = 0.0  # bytes per second each way; 0 = unlimited
    stall: bool = False  # while True, nothing is forwarded (the connection hangs)

    def check(self) -> None:
        if self.latency < 0 or self.bandwidth < 0:
            raise ValueError(f"latency={self.latency!r} and bandwidth={self.bandwidth!r} "
                             "must be >= 0")
