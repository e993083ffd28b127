"""The running system's state as pandas tables, for the labs.

The station itself hands out plain rows (:meth:`server.Station.bed_summaries`); turning them into
DataFrames is teaching work, so it lives here and pandas stays out of the product packages.
"""

from __future__ import annotations

import pandas as pd

from server.system import System

BED_COLUMNS = ["bed", "hr", "spo2", "rr", "temp", "nibp_sys", "nibp_dia", "flags"]


def beds_frame(system: System) -> pd.DataFrame:
    """The latest values of every bed, as a pandas DataFrame indexed by bed."""
    return pd.DataFrame(system.station.bed_summaries(), columns=BED_COLUMNS).set_index("bed")
