"""Who may import whom: the floors of the house, and the product kept free of teaching libraries.

- ``vitalsim`` (the bedside side) imports nothing of ours;
- ``server`` (the station) imports only ``vitalsim``;
- ``course`` (the teaching code) may import both;
- nothing imports ``course`` except the labs and the tests;
- the product packages import neither pandas, ipywidgets nor jupyter_bokeh, and the station starts
  without importing bokeh's Python side (it only serves BokehJS's files).

Imports are read from the source (every ``import`` statement, also those inside functions), so an
import on a path no test happens to run is caught too; the runtime check then confirms what
importing every product module really loads.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
OURS = {"vitalsim", "server", "course", "bench", "tests", "tools", "labs"}

#: for code in each folder, which of our top-level packages it may import
ALLOWED = {
    "vitalsim": {"vitalsim"},
    "server": {"server", "vitalsim"},
    "course": {"course", "server", "vitalsim"},
    # the class-size benchmark measures the course itself on a real JupyterHub
    "bench": {"bench", "course", "server", "vitalsim"},
    "tools": {"tools"},
    "tests": {"tests", "course", "server", "vitalsim", "bench"},
    "labs": {"course", "server", "vitalsim"},
}
TEACHING_LIBRARIES = {"pandas", "ipywidgets", "jupyter_bokeh"}
PRODUCT = ("vitalsim", "server")


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported(path: Path) -> set[str]:
    """Every module ``path`` imports, absolute, with relative imports resolved."""
    here = module_name(path).split(".")
    package = here if path.name == "__init__.py" else here[:-1]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[:len(package) - node.level + 1]
                found.add(".".join(base + ([node.module] if node.module else [])))
            else:
                found.add(node.module or "")
    return found


def sources(folder: str) -> list[Path]:
    return sorted(p for p in (ROOT / folder).rglob("*.py") if "__pycache__" not in p.parts)


def violations(folder: str) -> list[str]:
    """``file: module`` for each import of ours that ``folder``'s code may not make, and each
    teaching library imported by a product package."""
    bad = []
    for path in sources(folder):
        for name in imported(path):
            top = name.split(".")[0]
            if top in OURS and top not in ALLOWED[folder]:
                bad.append(f"{path.relative_to(ROOT)}: {name}")
            if folder in PRODUCT and top in TEACHING_LIBRARIES:
                bad.append(f"{path.relative_to(ROOT)}: {name} (a teaching library)")
    return bad


def test_the_reader_resolves_relative_imports():
    assert imported(ROOT / "server" / "web.py") >= {"server.beds", "vitalsim.physiology"}
    assert "course.checks" in imported(ROOT / "course" / "__init__.py")


@pytest.mark.parametrize("folder", sorted(ALLOWED))
def test_each_folder_imports_only_the_floors_below_it(folder):
    assert sources(folder), f"no Python files under {folder}/"
    assert violations(folder) == []


def test_importing_every_product_module_loads_no_teaching_library_and_server_no_bokeh():
    script = f"""
import importlib, json, pkgutil, sys
import server
after_server = sorted(m for m in ("bokeh", *{sorted(TEACHING_LIBRARIES)!r}) if m in sys.modules)
for package in {PRODUCT!r}:
    root = importlib.import_module(package)
    for info in pkgutil.walk_packages(root.__path__, package + "."):
        if not info.name.endswith("__main__"):
            importlib.import_module(info.name)
print(json.dumps({{"server": after_server,
                  "all": sorted(m for m in {sorted(TEACHING_LIBRARIES)!r} if m in sys.modules)}}))
"""
    out = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True,
                         text=True, check=True).stdout
    loaded = json.loads(out.splitlines()[-1])
    assert loaded == {"server": [], "all": []}


def test_no_test_file_imports_another():
    """Shared test code lives in helper modules (tests/helpers.py, tests/browser.py,
    tests/station_client.py): a test file that imports another runs that file's tests' imports
    and fixtures twice, and breaks when the other is renamed."""
    tests = ROOT / "tests"
    offenders = []
    for path in sorted(tests.glob("*.py")):
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import) else
                     [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            offenders += [f"{path.name}: {n}" for n in names if n.startswith("tests.test_")]
    assert offenders == []
