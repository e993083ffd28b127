"""Where the station's static files are: the dashboard, and BokehJS.

The dashboard ships inside the ``server`` package (``server/dashboard/``, declared as package
data), so that a non-editable install serves it as well as a source checkout does.

BokehJS is the copy inside the installed ``bokeh`` package, always the version Python has and
never a CDN. It is found from the package's location alone: importing ``bokeh`` itself would cost
the station's start-up a few hundred milliseconds for files it only serves.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

DASHBOARD_DIR = Path(__file__).resolve().parent / "dashboard"


def bokehjs_static() -> Path:
    """``bokeh/server/static`` of the installed bokeh, without importing bokeh."""
    spec = importlib.util.find_spec("bokeh")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("bokeh is not installed: the station serves BokehJS from it")
    return Path(next(iter(spec.submodule_search_locations))) / "server" / "static"
