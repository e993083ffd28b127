"""Anti-replay for telemetry: a sliding window over (boot id, sequence number), sans-I/O.

A tag (HMAC) proves that a datagram was made by someone holding the device's key. It does not
prove the datagram is *new*: a datagram captured on the wire and sent again carries a valid tag.
IPsec (RFC 4303 section 3.4.3) and DTLS (RFC 9147 section 4.5.1) answer this with a sliding
window: the receiver remembers the highest sequence number it accepted and a bitmap of which
of the ``size`` numbers below it it has seen. A number already in the bitmap is a replay; a
number below the window is too old to tell, and is refused too; a number inside the window not
yet seen is admitted, so datagrams the network *reordered* still count. DTLS adds the epoch in
front of the sequence number; ours is the device's boot id, so that a restarted device (a newer
boot id, numbering from 0 again) is told from a replay of its earlier run (an older boot id).

:class:`ReplayWindow` holds one device's window. It is a pure object: :meth:`ReplayWindow.judge`
takes a (boot id, sequence number) and returns a verdict, changing its state only when it
admits. It reads no clock and opens no socket; the station's ingest calls it after the tag and
the values have been checked (RFC 4303 likewise updates the window only for a datagram whose
integrity check passed, so a forger cannot move it).
"""

from __future__ import annotations

SEQ_MOD = 2**32
_HALF = SEQ_MOD // 2

#: every verdict :meth:`ReplayWindow.judge` returns; only the first two admit the datagram
VERDICTS = ("admit", "restart", "replay", "old_boot", "new_boot", "sequence")


class ReplayWindow:
    """One device's anti-replay window over (boot id, sequence number).

    ``size`` numbers behind the highest admitted one are remembered, one bit each (4096 bits:
    half a kilobyte a device; a monitor sends about 20 datagrams a second, so the window spans
    three minutes of reordering). ``max_ahead`` bounds how far one datagram may move the window
    forward on its own: a jump further than that is believed only when the next datagram
    continues from it (a device back from a long outage sends a second; a forger must guess).

    Sequence numbers are u32 and wrap; inside one boot they are *extended* (taken as the
    number nearest the highest seen), so the window slides across the wrap without a seam.
    """

    def __init__(self, size: int = 4096, max_ahead: int = 256) -> None:
        if size < 1 or max_ahead < 1:
            raise ValueError(f"size ({size}) and max_ahead ({max_ahead}) must be at least 1")
        self.size = size
        self.max_ahead = max_ahead
        self.boot_id: int | None = None  # the boot the window belongs to, once one is admitted
        self.highest: int | None = None  # the highest extended sequence number admitted
        self._bits = 0  # bit k set: number highest - k was admitted (k < size)
        self._jump: int | None = None  # a sequence number refused as too far ahead or behind
        self._boot_candidate: tuple[int, int] | None = None  # (boot id, seq) of a newer boot

    def judge(self, boot_id: int, seq: int) -> str:
        """The verdict on one datagram, one of :data:`VERDICTS`:

        - ``"admit"``: the current boot, a number not seen before, inside the window or just
          ahead of it (the window slides forward to it);
        - ``"restart"``: the second datagram of a newer boot, continuing from the first
          (within ``max_ahead``): the device restarted. The window starts again from it. (A
          device with boot id 0 throughout cannot say it restarted; for it, a number far behind
          the window confirmed by a second that continues from it is taken as a restart, which
          is all a receiver can do without a boot id: such a device is only as safe as that.)
        - ``"replay"``: the current boot, and the number was admitted already, or lies further
          behind the highest than the window reaches (too old to tell: RFC 4303 refuses it
          too). Never admitted, never moves the window;
        - ``"old_boot"``: a boot older than the current one: sent before the device restarted;
        - ``"new_boot"``: the first datagram of a newer boot, remembered and not yet believed
          (one forged boot id far ahead must not lock the real device out as ``old_boot``);
        - ``"sequence"``: the current boot, further ahead than ``max_ahead``: remembered and
          admitted only when the next such datagram continues from it.

        Only ``"admit"`` and ``"restart"`` mark the number as seen."""
        current = self.boot_id
        if current is None:
            self._start(boot_id, seq)
            return "admit"
        if boot_id < current:
            return "old_boot"
        if boot_id > current:
            candidate, self._boot_candidate = self._boot_candidate, (boot_id, seq)
            if candidate is None or candidate[0] != boot_id \
                    or not 0 < (seq - candidate[1]) % SEQ_MOD <= self.max_ahead:
                return "new_boot"
            self._start(boot_id, candidate[1])
            self._advance(self._extend(seq))
            return "restart"
        return self._judge_seq(seq)

    def seen(self, seq: int) -> bool:
        """Has ``seq`` of the current boot been admitted (as far as the window remembers)?"""
        if self.highest is None:
            return False
        offset = self.highest - self._extend(seq)
        return 0 <= offset < self.size and bool(self._bits >> offset & 1)

    def _judge_seq(self, seq: int) -> str:
        assert self.highest is not None
        ext = self._extend(seq)
        offset = self.highest - ext
        if offset < 0:  # ahead of everything admitted
            if -offset <= self.max_ahead:
                self._jump = None
                self._advance(ext)
                return "admit"
            return self._far(seq, ext, restart=False)
        if offset < self.size:
            self._jump = None
            if self._bits >> offset & 1:
                return "replay"
            self._bits |= 1 << offset
            return "admit"
        if self.boot_id == 0:  # no boot id: far behind may be a restart (see judge)
            return self._far(seq, ext, restart=True)
        return "replay"

    def _far(self, seq: int, ext: int, *, restart: bool) -> str:
        """A number too far from the window for one datagram to move it: believed when the
        next such datagram continues from it (within ``max_ahead``)."""
        candidate, self._jump = self._jump, seq
        if candidate is None or not 0 < (seq - candidate) % SEQ_MOD <= self.max_ahead:
            return "sequence"
        self._jump = None
        if restart:
            self._start(self.boot_id or 0, candidate)
            self._advance(self._extend(seq))
            return "restart"
        self._advance(ext)
        return "admit"

    def _start(self, boot_id: int, seq: int) -> None:
        """A new run: the window holds just ``seq``."""
        self.boot_id = boot_id
        self.highest = seq
        self._bits = 1
        self._jump = None
        self._boot_candidate = None

    def _advance(self, ext: int) -> None:
        """Slide the window forward so that ``ext`` is its highest, and mark it seen."""
        assert self.highest is not None
        shift = ext - self.highest
        if shift >= self.size:
            self._bits = 0
        else:
            self._bits = (self._bits << shift) & ((1 << self.size) - 1)
        self._bits |= 1
        self.highest = ext

    def _extend(self, seq: int) -> int:
        """The number congruent to ``seq`` (mod 2**32) nearest the highest admitted."""
        highest = self.highest
        if highest is None:
            return seq
        return highest + (seq - highest + _HALF) % SEQ_MOD - _HALF
