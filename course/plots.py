"""BokehJS in the notebook's page, from the installed bokeh: what the labs' live plots need.

The labs' live plots are jupyter_bokeh ``BokehModel`` widgets, drawn in the page by BokehJS. The
widget does not bring BokehJS with it: in a JupyterLab page that has not loaded it, every plot is
a red "Failed to create view for 'BokehView' ... reading 'require'" instead of a plot. nbval
runs the cells without a page, so only a browser sees this.

:func:`load_bokehjs` puts BokehJS into the page as the output of the cell that calls it, inline:
the JavaScript comes from the installed bokeh package, so its version is always the Python
side's, and nothing is fetched from a CDN (the labs work offline, and behind a hub).
"""

from __future__ import annotations

from bokeh.io import output_notebook
from bokeh.resources import Resources

#: BokehJS's parts the labs draw with: plots, WebGL, bokeh's own widgets and tables. MathJax
#: (for LaTeX in labels, 1.8 MB) is left out, halving what each loading adds to the notebook.
COMPONENTS = ["bokeh", "bokeh-gl", "bokeh-widgets", "bokeh-tables"]


def bokehjs_resources() -> Resources:
    """The installed bokeh's JavaScript, to be put into the page itself (no URL to fetch)."""
    return Resources(mode="inline", components=list(COMPONENTS))


def load_bokehjs() -> None:
    """Load BokehJS into this notebook's page; call it before the first plot is shown.

    The cell that calls it carries the loader as its output (no banner). Running it again
    loads BokehJS again, which a page opened afresh needs.
    """
    output_notebook(resources=bokehjs_resources(), hide_banner=True)
