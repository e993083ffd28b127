"""Every instructor notebook in a real JupyterLab page in Chromium: tests/jupyterlab_page.py says
what is checked, and why the learner notebooks are a module of their own."""

import pytest

from tests.jupyterlab_page import (  # noqa: F401 (the fixtures are used by name)
    INSTRUCTOR_LABS,
    TEST_SECONDS,
    browser_context,
    jupyterlab,
    page_loader,
    run_lab_in_page,
)

pytestmark = pytest.mark.browser


@pytest.mark.timeout(TEST_SECONDS)
@pytest.mark.parametrize("notebook", INSTRUCTOR_LABS)
def test_instructor_notebook_runs_in_jupyterlab(jupyterlab, page_loader, notebook):  # noqa: F811
    run_lab_in_page(jupyterlab, page_loader, notebook)
