"""Every lab in a real JupyterLab page: Debian's Chromium, driven by Playwright, runs each learner
and instructor notebook cell by cell, as a learner does, and looks at what the page shows.

nbval runs the cells without a page, so it cannot see a plot that fails to draw or a widget shown
as text. Here, for each notebook:

- no output shows a JavaScript error (an ipywidgets "Failed to create view ... Click to show
  javascript error" box, JupyterLab's "Javascript Error"), and no cell fails except a learner's
  stub (tagged raises-exception) with its NotImplementedError;
- every bokeh plot draws its canvas, and a plot whose cell streams data changes its pixels after
  its first drawing, from the data its cell streams;
- every ipywidgets output renders as a widget, never as its text repr;
- lab 01: a slider moved in the page changes the proxy in the kernel, and a setting changed from
  code moves the slider;
- lab 00: the dashboard link the lab prints opens a page whose tiles update.

JupyterLab serves a temporary copy of ``labs/`` (it autosaves; the tracked notebooks are never
touched). Cells run one at a time through JupyterLab's own "run cell" command, because the checks
above happen between cells while the lab's system runs. (Run All would not stop at a learner's
stub either: JupyterLab sends a cell tagged raises-exception with ``stop_on_error`` off, so the
kernel runs the cells queued behind it.) A screenshot of each lab goes to ``test-artifacts/``.

Each notebook opens in a page of its own (a fresh JupyterLab, with no BokehJS left over from the
notebook before), and that page starts loading while the notebook before it runs: JupyterLab's
start-up and the kernel's overlap with the lab before (:class:`PageLoader`), instead of adding to
it, which saves a page load and a kernel start per notebook. Every page has a workspace of its
own, so that two JupyterLab tabs never share one.

The learner notebooks and the instructor ones are two test modules
(tests/test_jupyterlab_learner.py, tests/test_jupyterlab_instructor.py), each with its own
JupyterLab and browser, so that `make test`'s pytest-xdist workers (``--dist loadfile``) run the
two halves side by side: together they are the longest part of the suite.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.browser import ARTIFACTS, CHROMIUM_ARGS, wait_for_tiles_updating
from tests.requirements import require_chromium
from vitalsim.waiting import wait_until_blocking

ROOT = Path(__file__).resolve().parent.parent
LABS = sorted(p.name for p in (ROOT / "labs").glob("[0-9][0-9]_*.ipynb"))
INSTRUCTOR_LABS = [f"instructor/{name}" for name in LABS]
LAB_SECONDS = 60  # each notebook, from its first cell to its last
OPEN_SECONDS = 60  # to load JupyterLab's page and start the notebook's kernel
SERVER_SECONDS = 90  # for JupyterLab to start listening
ERROR_TEXTS = ("Failed to create view", "javascript error", "Javascript Error",
               "Error displaying widget", "Failed to load model")
WIDGET_REPRS = ("VBox(children=", "HBox(children=", "FloatSlider(", "BokehModel(")

# JupyterLab's user settings for the run: no news or update checks, no extension manager that
# asks PyPI; nothing in the page needs the internet.
SETTINGS = {
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings":
        {"fetchNews": "false", "checkForUpdates": False},
    "@jupyterlab/extensionmanager-extension/plugin.jupyterlab-settings": {"enabled": False},
}


@dataclass
class JupyterLab:
    url: str  # http://127.0.0.1:PORT/
    token: str
    root: Path  # what it serves: the copy of labs/

    def api(self, method: str, path: str) -> object:
        request = urllib.request.Request(f"{self.url}api/{path}", method=method,
                                         headers={"Authorization": f"token {self.token}"})
        with urllib.request.urlopen(request, timeout=10) as response:
            body = response.read()
        return json.loads(body) if body else None

    def shutdown_kernels(self) -> None:
        for kernel in self.api("GET", "kernels"):
            self.api("DELETE", f"kernels/{kernel['id']}")

    def shutdown_notebook(self, notebook: str) -> None:
        """End the session (and kernel) of ``notebook`` only: the next notebook's page may
        already have started its own."""
        for session in self.api("GET", "sessions"):
            if session["path"] == notebook:
                self.api("DELETE", f"sessions/{session['id']}")


class Deadline:
    """One budget for a whole notebook: each wait gets what is left of it."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.start = time.monotonic()
        self.end = self.start + seconds
        self.where = "opening the notebook"  # for the message when it runs out

    def ms(self) -> float:
        left = self.end - time.monotonic()
        if left <= 0:
            raise AssertionError(f"over the {self.seconds:.0f} s a lab may take; "
                                 f"{self.where}")
        return left * 1000

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self.start


def _children(pid: int) -> list[int]:
    """The processes ``pid`` started (its kernels), from /proc."""
    found = []
    for task in Path(f"/proc/{pid}/task").glob("*/children"):
        try:
            found += [int(p) for p in task.read_text().split()]
        except OSError:
            pass
    return found


@pytest.fixture(scope="module")
def jupyterlab(tmp_path_factory) -> Iterator[JupyterLab]:
    """JupyterLab on 127.0.0.1, an ephemeral port and a token, serving a copy of labs/, with its
    own config, data, runtime and settings folders; stopped, with its kernels, even on failure."""
    if shutil.which("jupyter", path=str(Path(sys.executable).parent)) is None:
        pytest.fail("jupyter is not installed in this environment (make .venv/.installed)")
    base = tmp_path_factory.mktemp("jupyterlab")
    root = base / "course" / "labs"
    (root / "instructor").mkdir(parents=True)
    for name in LABS:
        shutil.copy(ROOT / "labs" / name, root / name)
        shutil.copy(ROOT / "labs" / "instructor" / name, root / "instructor" / name)
    for sibling in ("docs",):  # what the labs' relative links point to (recordings: package data)
        (base / "course" / sibling).symlink_to(ROOT / sibling)
    settings = base / "settings"
    for name, values in SETTINGS.items():
        path = settings / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(values))
    env = dict(os.environ,
               JUPYTER_CONFIG_DIR=str(base / "config"), JUPYTER_DATA_DIR=str(base / "data"),
               JUPYTER_RUNTIME_DIR=str(base / "runtime"), IPYTHONDIR=str(base / "ipython"),
               JUPYTERLAB_SETTINGS_DIR=str(settings),
               JUPYTERLAB_WORKSPACES_DIR=str(base / "workspaces"))
    env.pop("JUPYTER_PATH", None)
    if env.pop("PYTHONDONTWRITEBYTECODE", None):
        # Where bytecode may not be written beside the sources, every kernel would compile
        # pandas, scapy and bokeh afresh (20 s on a busy machine); a bytecode cache in this
        # run's temporary folder lets every kernel after the first skip that.
        env["PYTHONPYCACHEPREFIX"] = str(base / "pycache")
    token = secrets.token_hex(16)
    log = (base / "jupyterlab.log").open("wb")
    server = subprocess.Popen(
        [sys.executable, "-m", "jupyter", "lab", "--no-browser", "--allow-root",
         "--ServerApp.ip=127.0.0.1", "--ServerApp.port=0", "--ServerApp.port_retries=0",
         f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={root}",
         "--LabApp.expose_app_in_browser=True", "--LabApp.extension_manager=readonly",
         "--LabApp.news_url=", "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"],
        cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    kernels: set[int] = set()
    try:
        info = base / "runtime" / f"jpserver-{server.pid}.json"
        def listening() -> bool:  # the runtime file is written once the server listens
            if server.poll() is not None:
                raise RuntimeError(f"jupyter lab exited with {server.returncode}")
            return info.exists()
        try:
            wait_until_blocking(listening, timeout=SERVER_SECONDS, interval=0.2,
                                what="JupyterLab's runtime file")
        except (RuntimeError, TimeoutError) as exc:
            pytest.fail(f"JupyterLab did not start ({exc}):\n"
                        + (base / "jupyterlab.log").read_text()[-3000:])
        lab = JupyterLab(json.loads(info.read_text())["url"], token, root)
        assert lab.api("GET", "status") is not None
        yield lab
        kernels.update(_children(server.pid))
        lab.shutdown_kernels()
    finally:
        kernels.update(_children(server.pid))
        if server.poll() is None:
            server.send_signal(signal.SIGTERM)  # it shuts its kernels down too
            try:
                server.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(server.pid, signal.SIGKILL)
                server.wait(10)
        for pid in kernels:  # kernels run in their own sessions: end any that outlived it
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        log.close()


@pytest.fixture(scope="module")
def browser_context():
    """One Chromium, and one browser context for every notebook: each opens in a page of its
    own (a fresh JupyterLab, with no BokehJS left over from the last lab), and JupyterLab's
    scripts come from the context's cache after the first."""
    executable = require_chromium()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        try:
            yield browser.new_context(viewport={"width": 1280, "height": 1000})
        finally:
            browser.close()


class LoadingPage:
    """A notebook's own JupyterLab page, asked for and left to load in the browser: JupyterLab
    starts, opens the notebook and starts its kernel while the test drives another page."""

    def __init__(self, context, lab: JupyterLab, notebook: str, workspace: str) -> None:
        self.notebook = notebook
        self.errors: list[str] = []  # the page's uncaught JavaScript errors, from the start
        self.page = context.new_page()
        self.page.on("pageerror", lambda exc: self.errors.append(str(exc)))
        self.asked = time.monotonic()
        # a workspace per page: JupyterLab would otherwise move a second tab of one workspace
        # to another; ?reset opens it empty of anything a page before left in it
        self.page.goto(f"{lab.url}lab/workspaces/{workspace}/tree/{notebook}"
                       f"?reset&token={lab.token}", wait_until="commit")


class PageLoader:
    """Gives each notebook its page, and asks for the next notebook's page as soon as one has
    opened, so that the next one loads while this one runs. The order is the order in which
    pytest runs the notebooks (with ``-k``, only the chosen ones)."""

    def __init__(self, context, lab: JupyterLab, order: list[str]) -> None:
        self.context = context
        self.lab = lab
        self.order = order
        self.loading: dict[str, LoadingPage] = {}

    def page_for(self, notebook: str) -> LoadingPage:
        """The notebook's page, loading since the notebook before opened (or from now)."""
        if notebook not in self.loading:
            self.loading[notebook] = self._ask(notebook)
        return self.loading.pop(notebook)

    def opened(self, notebook: str) -> None:
        """``notebook`` has opened: start loading the one after it."""
        position = self.order.index(notebook) if notebook in self.order else len(self.order)
        if position + 1 < len(self.order):
            following = self.order[position + 1]
            if following not in self.loading:
                self.loading[following] = self._ask(following)

    def _ask(self, notebook: str) -> LoadingPage:
        workspace = "course-" + notebook.replace("/", "-").removesuffix(".ipynb")
        return LoadingPage(self.context, self.lab, notebook, workspace)

    def close(self) -> None:
        for loading in self.loading.values():
            loading.page.close()
        self.loading.clear()


@pytest.fixture(scope="module")
def page_loader(request, jupyterlab, browser_context) -> Iterator[PageLoader]:
    # nbval's notebook cells are session items too, without a module
    order = [item.callspec.params["notebook"] for item in request.session.items
             if getattr(item, "module", None) is request.module and hasattr(item, "callspec")
             and "notebook" in item.callspec.params]
    loader = PageLoader(browser_context, jupyterlab, order)
    try:
        yield loader
    finally:
        loader.close()


# JavaScript run in the page; `jupyterapp` is JupyterLab's application (expose_app_in_browser).
JS_HELPERS = """
window.__lab = {
  panel() { return window.jupyterapp.shell.currentWidget; },
  cell(i) { return this.panel().content.widgets[i]; },
  canvases(node) {
    const out = [];
    const walk = n => {
      if (n instanceof HTMLCanvasElement) out.push(n);
      if (n.shadowRoot) walk(n.shadowRoot);
      for (const c of n.children || []) walk(c);
    };
    walk(node);
    return out;
  },
  drawn(i) {
    const all = this.canvases(this.cell(i).node);
    return all.length > 0 && all.some(c => {
      if (c.width === 0 || c.height === 0) return false;
      const blank = document.createElement('canvas');
      blank.width = c.width; blank.height = c.height;
      return c.toDataURL() !== blank.toDataURL();
    });
  },
  pixels(i) { return this.canvases(this.cell(i).node).map(c => c.toDataURL()).join('|'); },
  // the rows the cell's plots' data sources hold, from BokehJS itself (-1: no plot view here)
  streamedRows(i) {
    const node = this.cell(i).node, index = window.Bokeh && window.Bokeh.index;
    if (!index) return -1;
    let rows = -1;
    for (const view of index) {
      if (!view.el || !node.contains(view.el)) continue;
      rows = Math.max(rows, 0);
      for (const m of view.model.document.all_models) {
        if (typeof m.stream !== 'function' || m.data == null) continue;
        const cols = m.data instanceof Map ? [...m.data.values()] : Object.values(m.data);
        if (cols.length) rows += cols[0].length;
      }
    }
    return rows;
  },
  run(i) {
    const panel = this.panel();
    this.done = false;
    this.cell(i).node.scrollIntoView({block: 'center'});  // as Shift+Enter would
    panel.content.activeCellIndex = i;
    panel.content.deselectAll();
    window.jupyterapp.commands.execute('notebook:run-cell').then(
      () => { this.done = true; }, () => { this.done = true; });
  },
  idle() {
    const kernel = this.panel().sessionContext.session?.kernel;
    return this.done && kernel != null && kernel.status === 'idle';
  },
  outputs(i) {
    const area = this.cell(i).outputArea;
    if (!area) return [];
    const found = [];
    for (let k = 0; k < area.model.length; k++) {
      const model = area.model.get(k);
      const node = area.widgets[k] ? area.widgets[k].node : null;
      found.push({
        type: model.type,
        mimes: Object.keys(model.data),
        text: node ? node.innerText : '',
        html: node ? node.innerHTML.slice(0, 1500) : '',
        // an ipywidgets view, or jupyter_bokeh's BokehView (a bokeh root), not text
        widgets: node ? node.querySelectorAll('.jupyter-widgets, [data-root-id]').length : 0,
        renderedText: node ? node.querySelectorAll('.jp-RenderedText').length : 0,
        widgetErrors: node ? node.querySelectorAll('.widget-error').length : 0,
        ename: model.toJSON().ename || null,
      });
    }
    return found;
  },
  async kernel(code, expression) {
    const kernel = this.panel().sessionContext.session.kernel;
    const reply = await kernel.requestExecute({code, silent: true, store_history: false,
      user_expressions: expression ? {value: expression} : {}}).done;
    if (reply.content.status !== 'ok') throw new Error(reply.content.evalue);
    return expression ? reply.content.user_expressions.value.data['text/plain'] : null;
  },
};
"""


def open_notebook(page, notebook: str, deadline: Deadline) -> list[dict]:
    """Wait for the notebook's page (already asked for) to show it with its kernel idle, and
    list its cells."""
    page.wait_for_function(
        """path => { const w = window.jupyterapp && window.jupyterapp.shell.currentWidget;
                    return w && w.context && w.context.path === path && w.content
                      && w.sessionContext.session?.kernel?.status === 'idle'; }""",
        arg=notebook, timeout=deadline.ms())
    page.evaluate(JS_HELPERS)
    page.evaluate("() => window.jupyterapp.shell.collapseLeft()")  # the notebook, wide
    return page.evaluate("""() => window.__lab.panel().content.widgets.map(c => ({
        type: c.model.type, source: c.model.sharedModel.getSource(),
        tags: c.model.getMetadata('tags') || []}))""")


def run_cell(page, index: int, cell: dict, deadline: Deadline, during=None) -> None:
    """Run one cell through JupyterLab's own command; ``during(index)`` checks the page while it
    runs. Returns once the cell has finished and the kernel is idle."""
    deadline.where = f"cell {index} started at {deadline.elapsed:.1f} s"
    page.evaluate("i => window.__lab.run(i)", index)
    if during is not None:
        during(index)
    page.wait_for_function("() => window.__lab.idle()", timeout=deadline.ms())


def check_bokeh_draws(page, index: int, cell: dict, deadline: Deadline) -> None:
    """A plot's canvas draws, and if its cell streams data, changes after its first drawing."""
    try:  # on a busy machine the first drawing may come after the cell has ended
        page.wait_for_function("i => window.__lab.drawn(i)", arg=index, timeout=deadline.ms())
    except Exception:
        shown = " / ".join(o["text"] for o in page.evaluate("i => window.__lab.outputs(i)", index))
        raise AssertionError(f"cell {index}: the bokeh plot drew nothing on a canvas; the "
                             f"output shows {shown[:600]!r}") from None
    if ".stream(" not in cell["source"]:
        return
    page.evaluate("i => { window.__lab.base = window.__lab.pixels(i); }", index)
    if page.evaluate("() => window.__lab.idle()"):
        # On a busy machine the page may draw for the first time only after the cell has ended:
        # that first drawing already holds every streamed row and no change can follow. What it
        # drew is then read from BokehJS: the plot's sources must hold the streamed rows.
        rows = page.evaluate("i => window.__lab.streamedRows(i)", index)
        if rows <= 0:
            raise AssertionError(f"cell {index}: the plot first drew after its cell ended, and "
                                 f"its data sources hold {rows} streamed rows")
        return
    # The kernel sends the streamed data only while the cell runs, so any change after the
    # first drawing is streamed data drawn. On a busy machine the page may draw the last of it
    # just after the cell has ended, so the wait is for the change, not for the cell.
    try:
        page.wait_for_function("i => window.__lab.pixels(i) !== window.__lab.base", arg=index,
                               timeout=deadline.ms())
    except Exception as exc:
        raise AssertionError(f"cell {index}: the plot's pixels never changed while its cell "
                             "streamed data") from exc


def check_outputs(page, index: int, cell: dict) -> None:
    """What the cell shows: widgets as widgets, no JavaScript error, no unexpected exception."""
    for out in page.evaluate("i => window.__lab.outputs(i)", index):
        where = f"cell {index} ({(cell['source'].splitlines() or [''])[0][:60]!r})"
        for text in ERROR_TEXTS:
            assert text.lower() not in out["text"].lower(), f"{where} shows {out['text'][:500]!r}"
        assert out["widgetErrors"] == 0, f"{where}: a widget failed: {out['text'][:500]!r}"
        if "application/vnd.jupyter.widget-view+json" in out["mimes"]:
            assert out["widgets"] > 0 and out["renderedText"] == 0, \
                f"{where}: a widget shown as {out['html']!r}"
        for text in WIDGET_REPRS:
            assert not out["text"].startswith(text), f"{where}: a widget shown as text"
        if out["type"] == "error":
            assert "raises-exception" in cell["tags"], \
                f"{where} raised {out['ename']}: {out['text'][-800:]}"
            assert out["ename"] == "NotImplementedError", f"{where}: {out['text'][-800:]}"


def dashboard_tiles_update(page, index: int, deadline: Deadline) -> None:
    """Lab 00: the dashboard link in the cell's output opens a dashboard whose tiles update."""
    link = page.evaluate_handle("i => window.__lab.cell(i).node", index).as_element() \
        .query_selector("a[href^='http://127.0.0.1']")
    assert link is not None, f"cell {index} prints the dashboard's address, but no link to it"
    with page.context.expect_page(timeout=deadline.ms()) as opened:
        link.click()
    dashboard = opened.value
    try:
        wait_for_tiles_updating(dashboard, timeout_ms=deadline.ms())
    finally:
        dashboard.close()


def slider(page, index: int, label: str):
    """The ipywidgets slider labelled ``label`` in cell ``index``'s output."""
    cell = page.evaluate_handle("i => window.__lab.cell(i).node", index).as_element()
    for row in cell.query_selector_all(".widget-slider"):
        if row.query_selector(".widget-label").inner_text().strip() == label:
            return row
    raise AssertionError(f"cell {index}: no slider labelled {label!r}")


def wait_readout(page, row, value: str, deadline: Deadline) -> None:
    page.wait_for_function("([row, value]) => row.querySelector('.widget-readout')"
                           ".innerText.trim() === value", arg=[row, value],
                           timeout=deadline.ms())


def loss_in_kernel(page) -> float:
    return float(page.evaluate(
        "() => window.__lab.kernel('', 'system.udp_proxy.settings.loss')"))


def sliders_follow_both_ways(page, controls: int, deadline: Deadline) -> None:
    """Lab 01, after the cell that set ``settings.loss = 0.2``: the slider shows it; a slider
    dragged in the page changes the proxy; a setting changed from code moves the slider."""
    loss = slider(page, controls, "loss %")
    wait_readout(page, loss, "20.00", deadline)  # the lab's own cell set it from code
    handle = loss.query_selector(".noUi-handle")
    handle.scroll_into_view_if_needed()
    box = handle.bounding_box()
    track = loss.query_selector(".noUi-target").bounding_box()
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    page.mouse.down()
    page.mouse.move(track["x"] + track["width"] * 0.7, box["y"] + box["height"] / 2, steps=5)
    page.mouse.up()
    page.wait_for_function(
        "row => row.querySelector('.widget-readout').innerText.trim() !== '20.00'", arg=loss,
        timeout=deadline.ms())
    shown = float(loss.query_selector(".widget-readout").inner_text())
    assert shown > 20.0
    # each look is a round trip to the kernel, so there is no need to pause between looks
    moved = wait_until_blocking(
        lambda: (in_kernel := loss_in_kernel(page)) != 0.2 and (in_kernel,),
        timeout=deadline.ms() / 1000, interval=0, what="the proxy's loss to follow the slider")
    assert moved[0] == pytest.approx(shown / 100), "the slider moved, the proxy did not"
    page.evaluate("() => window.__lab.kernel('system.udp_proxy.settings.loss = 0.05')")
    wait_readout(page, loss, "5.00", deadline)
    page.evaluate("() => window.__lab.kernel('system.udp_proxy.settings.loss = 0.2')")
    wait_readout(page, loss, "20.00", deadline)


#: a test's bound: the first one also starts JupyterLab
TEST_SECONDS = SERVER_SECONDS + OPEN_SECONDS + LAB_SECONDS + 30


def run_lab_in_page(jupyterlab: JupyterLab, page_loader: PageLoader, notebook: str) -> None:
    """Run ``notebook`` cell by cell in its own JupyterLab page, with the checks above."""
    lab = notebook.removeprefix("instructor/")[:2]
    loading = page_loader.page_for(notebook)
    page, page_errors = loading.page, loading.errors
    try:
        opening = Deadline(OPEN_SECONDS)
        cells = open_notebook(page, notebook, opening)
        opened = opening.elapsed  # what this test waited; the page may have loaded before
        page_loader.opened(notebook)
        deadline = Deadline(LAB_SECONDS)
        plots, controls, dashboard_checked = [], None, False
        for index, cell in enumerate(cells):
            source = cell["source"]
            during = None
            if cell["type"] == "code" and "BokehModel(" in source:
                plots.append(index)
                during = lambda i, cell=cell: check_bokeh_draws(page, i, cell, deadline)  # noqa: E731
            if cell["type"] != "code":
                continue  # JupyterLab rendered the markdown when it opened the notebook
            run_cell(page, index, cell, deadline, during)
            check_outputs(page, index, cell)
            if "controls(system.udp_proxy" in source:
                controls = index
            if lab == "00" and not dashboard_checked and "dashboard_link(" in source:
                dashboard_tiles_update(page, index, deadline)
                dashboard_checked = True
            if lab == "01" and "settings.loss = 0.2" in source:
                assert controls is not None, "lab 01 shows its sliders before it sets the loss"
                sliders_follow_both_ways(page, controls, deadline)
        if lab in ("01", "03", "05"):
            assert plots, f"lab {lab} has a live bokeh plot"
        if lab == "00":
            assert dashboard_checked, "lab 00 prints its dashboard's link"
        assert page_errors == [], page_errors
        ARTIFACTS.mkdir(exist_ok=True)
        if plots:  # the picture shows the (first) live plot
            page.evaluate("i => window.__lab.cell(i).node.scrollIntoView({block: 'center'})",
                          plots[0])
        name = notebook.replace("instructor/", "instructor-").removesuffix(".ipynb")
        page.screenshot(path=str(ARTIFACTS / f"jupyterlab-{name}.png"))
        print(f"{notebook}: opened in {opened:.1f} s, ran in {deadline.elapsed:.1f} s")
    finally:
        page.close()
        jupyterlab.shutdown_notebook(notebook)
