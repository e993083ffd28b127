"""How `make test` shares its work between pytest-xdist's workers (``--dist loadgroup``).

Most tests and every lab wait far more than they compute (a ward streaming in real time, a
browser drawing, a kernel starting), so three workers on two cores finish well before one. What
must stay together goes to one worker, in order:

- a notebook's cells (nbval runs them in one kernel, one after the other);
- a test module (its module-scoped fixtures: a hub, a JupyterLab, a broker, are made once);
- except the JupyterLab page test, whose learner and instructor halves are two groups, because
  it is the longest module by far.
"""

from __future__ import annotations

import pytest


def worker_group(item: pytest.Item) -> str:
    """The group an item runs in: its notebook or module, or a half of the page test."""
    path = item.nodeid.split("::", 1)[0]
    if path.endswith("test_jupyterlab.py"):
        notebook = getattr(item, "callspec", None) and item.callspec.params.get("notebook", "")
        return f"{path}:{'instructor' if str(notebook).startswith('instructor/') else 'learner'}"
    return path


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        item.add_marker(pytest.mark.xdist_group(worker_group(item)))
