"""Every benchmark, in one folder; they print figures and are never tests.

``bench_codec.py``, ``bench_physiology.py`` and ``bench_dashboard.py`` are scripts. This package is
the capacity benchmark: how many beds one station holds, against the machine's own ceiling.

``python -m bench`` runs it (``--smoke`` for a few seconds' version). A load generator,
the dashboards and the station each run in their own process on 127.0.0.1; a bare asyncio
receiver measured with the same generator gives the ceiling, and the same station with
``StationConfig(coalesce=False)`` gives the naive design. See :mod:`bench.run`.
"""

from .run import BenchConfig, format_row, format_summary, holds, run_benchmark, run_point

__all__ = ["BenchConfig", "format_row", "format_summary", "holds", "run_benchmark", "run_point"]
