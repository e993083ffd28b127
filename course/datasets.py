"""Small, seeded datasets for the labs' exercises: deterministic, so checks can be exact."""

from __future__ import annotations

import pandas as pd

from vitalsim.impair import UdpImpairer, UdpSettings


def lossy_telemetry(*, n: int = 600, period: float = 1.0, loss: float = 0.1,
                    burst: float = 0.0, delay: float = 0.03, jitter: float = 0.01,
                    duplicate: float = 0.0, seed: int = 1) -> pd.DataFrame:
    """What a receiver logs for one device's datagrams sent every ``period`` seconds through
    an impaired network, on a virtual clock: one row per datagram that arrived, in arrival
    order, with columns ``seq``, ``sent_at`` and ``received_at`` (seconds)."""
    impairer = UdpImpairer(UdpSettings(loss=loss, burst=burst, delay=delay, jitter=jitter,
                                       duplicate=duplicate), seed=seed)
    rows = [(seq, seq * period, at) for seq in range(n) for at in impairer.decide(seq * period)]
    frame = pd.DataFrame(rows, columns=["seq", "sent_at", "received_at"])
    return frame.sort_values("received_at", kind="stable").reset_index(drop=True)
