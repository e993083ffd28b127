"""The labs' BokehJS loader: the installed bokeh's JavaScript, put into the page, nothing fetched.

Whether the plots then draw in a real JupyterLab page is tests/jupyterlab_page.py's question; this
is what the loader publishes.
"""

import re
from pathlib import Path

import bokeh
from IPython.core.interactiveshell import InteractiveShell
from IPython.utils.capture import capture_output

from course.plots import load_bokehjs

LOAD_MIME = "application/vnd.bokehjs_load.v0+json"  # what jupyter_bokeh's lab extension runs


def test_load_bokehjs_publishes_the_installed_bokehjs_inline_with_no_url_to_fetch():
    InteractiveShell.instance()  # publishing display data needs a shell, as in a kernel
    with capture_output() as captured:
        load_bokehjs()
    [output] = captured.outputs
    script = output.data[LOAD_MIME]
    assert output.data["application/javascript"], "the classic notebook's copy too"
    assert re.search(r"const js_urls = \[\];", script), "no script to fetch"
    assert re.search(r"const css_urls = \[\];", script), "no stylesheet to fetch"
    # BokehJS itself is in the script: the installed package's own file, whole
    library = (Path(bokeh.__file__).parent / "server/static/js/bokeh.min.js").read_text()
    samples = [library[at:at + 100] for at in range(len(library) // 4, len(library), 250_000)]
    assert len(samples) >= 3 and all(sample in script for sample in samples)
    assert library[-2000:].strip() in script  # its table of modules, which names this version's
    assert "text/html" not in output.data, "no banner"
