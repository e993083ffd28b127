"""A guard: no cell whose output nbval checks prints a third-party library's own representation.

A checked cell's recorded output is compared with a fresh run character by character, so it must
print only what the course decides. pandas 3.1 printing ``NaN`` where pandas 2 printed ``None``
in a frame's ``to_string()`` turned CI red without the course changing. Tables and packets go
through ``course.formatting`` instead.

The scan reads each lab's text source (the code) and its built instructor notebook (what the code
printed when it was recorded), and flags, with the lab, the cell and the reason:

- a call of a library's own printer: ``to_string()``, ``to_markdown()``, ``show()``,
  ``summary()``;
- a last line that is a bare expression other than ``print(...)``: IPython shows it with the
  object's own repr (a DataFrame, a PacketList);
- ``print()`` of a capture or a frame itself, or of a frame derived from one (``.head()``,
  ``.loc[...]``, ``frame[[...]]``, ``.groupby(...).agg(...)``);
- recorded text that only a library writes: a PacketList's ``<name.pcap: TCP:0 UDP:40 ...>``,
  ``show()``'s ``###[ IP ]###``, pandas' ``NaN``, ``<NA>``, ``dtype:`` and ``[3 rows x 4 columns]``,
  a scapy field class name;
- a recorded output that cannot differ between runs that matter (``stopped: True``).
"""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

import pytest

from course.build import CHECK_OUTPUT, read_source

LABS = Path(__file__).resolve().parent.parent / "labs"

#: calls that return a capture or a table, whose own repr would be printed
PRODUCERS = {"rdpcap", "recorded", "sniff", "PacketList", "DataFrame", "concat", "read_csv",
             "read_sql_query", "telemetry_table", "alarm_table", "segment_table",
             "retransmission_table", "compare_designs", "early_warning", "news2_frame",
             "beds_frame", "summarize", "loss_per_protocol", "latency_parts", "alarm_timeline"}
#: a library's own printers
PRINTERS = {"to_string", "to_markdown", "show", "summary", "nsummary"}
#: steps that keep a table a table
TABLE_STEPS = {"head", "tail", "agg", "aggregate", "groupby", "describe", "round", "sort_values",
               "set_index", "reset_index", "T", "loc", "iloc", "filter", "query", "copy",
               "to_frame", "value_counts", "count", "sum", "mean", "seq"}
LIBRARY_TEXT = [
    (re.compile(r"<\S+: TCP:\d+ UDP:\d+ ICMP:\d+ Other:\d+>"), "a scapy PacketList's repr"),
    (re.compile(r"###\[ \w+ \]###"), "scapy's show()"),
    (re.compile(r"\bNaN\b|<NA>|\bNaT\b"), "pandas' way of writing a missing value"),
    (re.compile(r"\bdtype:|\[\d+ rows x \d+ columns\]"), "a pandas repr"),
    (re.compile(r"\b[A-Z]\w*Field\b"), "a scapy field class name"),
]
CANNOT_DIFFER = re.compile(r"^\w[\w ]*: (True|False)\n?$")


def _root(node: ast.AST) -> tuple[str | None, list[str]]:
    """The name an expression starts from, and the steps after it (attributes, calls,
    subscripts with a list or a slice)."""
    steps: list[str] = []
    while True:
        if isinstance(node, ast.Call):
            node = node.func
        elif isinstance(node, ast.Attribute):
            steps.append(node.attr)
            node = node.value
        elif isinstance(node, ast.Subscript):
            steps.append("[list]" if isinstance(node.slice, ast.List | ast.Slice) else "[]")
            node = node.value
        elif isinstance(node, ast.Name):
            return node.id, steps[::-1]
        else:
            return None, steps[::-1]


def _called(node: ast.AST) -> str | None:
    if isinstance(node, ast.Call):
        f = node.func
        return f.attr if isinstance(f, ast.Attribute) else f.id if isinstance(f, ast.Name) \
            else None
    return None


def produced_names(code: str) -> set[str]:
    """Names a lab assigns from a call that returns a capture or a table."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(code)):
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Call):
            root_call = node.value
            while isinstance(root_call, ast.Call) and isinstance(root_call.func, ast.Attribute) \
                    and isinstance(root_call.func.value, ast.Call):
                root_call = root_call.func.value       # telemetry_table(x).head() and the like
            if _called(root_call) in PRODUCERS or _called(node.value) in PRODUCERS:
                names.update(t.id for t in node.targets if isinstance(t, ast.Name))
    return names


def code_problems(code: str, tables: set[str]) -> list[str]:
    """What a checked cell's code prints that a library formats."""
    tree = ast.parse(code.replace("await ", ""))
    found = []
    for node in ast.walk(tree):
        name = _called(node)
        if name in PRINTERS:
            found.append(f"calls .{name}(), a library's own printer")
        if name == "print":
            for arg in node.args:  # type: ignore[attr-defined]
                if _called(arg) in PRODUCERS:
                    found.append(f"prints {_called(arg)}(...) with its own repr")
                    continue
                root, steps = _root(arg)
                if root in tables and (not steps or all(s in TABLE_STEPS or s == "[list]"
                                                        for s in steps)):
                    found.append(f"prints {root}{''.join('.' + s for s in steps)}, a capture or "
                                 "a table, with its own repr")
    last = tree.body[-1] if tree.body else None
    if isinstance(last, ast.Expr) and _called(last.value) not in ("print", "display"):
        found.append("ends with a bare expression, which IPython shows with the object's own "
                     "repr")
    return found


def output_problems(outputs: list[dict]) -> list[str]:
    found = []
    text = ""
    for out in outputs:
        if out.get("output_type") == "execute_result" or "text/html" in out.get("data", {}):
            found.append("its recorded output is an object's repr (an execute_result)")
        text += "".join(out.get("text", "")) + "".join(out.get("data", {}).get("text/plain", ""))
    for pattern, what in LIBRARY_TEXT:
        match = pattern.search(text)
        if match:
            found.append(f"its recorded output holds {what}: {match.group(0)!r}")
    if CANNOT_DIFFER.match(text):
        found.append(f"its recorded output, {text.strip()!r}, can never differ")
    return found


def checked_cells(src: Path) -> list[tuple[int, str]]:
    nb = read_source(src)
    return [(i, "".join(c["source"])) for i, c in enumerate(nb["cells"])
            if c["cell_type"] == "code" and CHECK_OUTPUT in "".join(c["source"])]


def lab_problems(src: Path, built: Path) -> list[str]:
    nb = read_source(src)
    whole = "\n".join("".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "code")
    tables = produced_names(whole.replace("await ", ""))
    recorded = {"".join(c["source"]): c.get("outputs", [])
                for c in json.loads(built.read_text())["cells"] if c["cell_type"] == "code"}
    problems = []
    for index, code in checked_cells(src):
        for problem in code_problems(code, tables) + output_problems(recorded.get(code, [])):
            problems.append(f"{src.name}, cell {index}: {problem}")
    return problems


SOURCES = sorted((LABS / "source").glob("*.py"))


@pytest.mark.parametrize("src", SOURCES, ids=[s.stem for s in SOURCES])
def test_no_checked_cell_prints_a_third_party_repr(src):
    problems = lab_problems(src, LABS / "instructor" / src.with_suffix(".ipynb").name)
    assert not problems, "\n".join(problems)


def printer_calls(code: str) -> list[str]:
    """The library printers (``to_string``, ``show``…) a cell's code calls."""
    tree = ast.parse(code.replace("await ", ""))
    return sorted({f".{node.func.attr}()" for node in ast.walk(tree)
                   if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                   and node.func.attr in PRINTERS})


@pytest.mark.parametrize("src", SOURCES, ids=[s.stem for s in SOURCES])
def test_no_lab_cell_prints_through_a_librarys_own_printer(src):
    """Checked or not, a learner reads every cell's output, and a library's own layout changes
    between releases: what the page shows goes through the course's formatting."""
    cells = read_source(src)["cells"]
    problems = [f"{src.name}, cell {index}: calls {', '.join(calls)}"
                for index, cell in enumerate(cells) if cell["cell_type"] == "code"
                for calls in [printer_calls("".join(cell["source"]))] if calls]
    assert not problems, "\n".join(problems)


def test_the_printer_scan_sees_a_call_anywhere_in_a_cell():
    assert printer_calls("x = 1\nif x:\n    clean[0].show()") == [".show()"]
    assert printer_calls("print(table(frame))") == []


@pytest.mark.parametrize(("code", "reason"), [
    ("print(frames[['a', 'b']].to_string(index=False))", "calls .to_string()"),
    ("clean = recorded('x')\nprint(clean)", "prints clean, a capture"),
    ("pkts = rdpcap('x.pcap')\npkts[0].show()", "calls .show()"),
    ("t = telemetry_table(p)\nprint(t.groupby('d').seq.agg(['count']))", "prints t.groupby"),
    ("t = telemetry_table(p)\nt.head()", "ends with a bare expression"),
    ("print(compare_designs(seed=2))", "prints compare_designs(...)"),
    ("print(clean[0].summary())", "calls .summary()"),
])
def test_the_scan_flags_each_kind_of_library_repr_in_code(code, reason):
    tables = produced_names(code)
    assert any(reason in p for p in code_problems(code, tables)), code_problems(code, tables)


@pytest.mark.parametrize("code", [
    "clean = recorded('x')\nprint(len(clean), 'packets')",
    "clean = recorded('x')\nprint('hr', clean[0][Telemetry].numerics.hr)",
    "t = telemetry_table(p)\nprint(table(t.head(6), ['packet']))",
    "print(packet_fields(clean[0]))",
])
def test_the_scan_lets_the_courses_own_formatting_through(code):
    assert code_problems(code, produced_names(code)) == []


@pytest.mark.parametrize(("text", "reason"), [
    ("<telemetry-loss.pcap: TCP:0 UDP:105 ICMP:0 Other:0>\n", "PacketList"),
    ("###[ Ethernet ]###\n  dst = 0\n", "show()"),
    ("  3  HELLO  NaN  NaN\n", "missing value"),
    ("magic  XShortField  2 byte(s)\n", "field class name"),
    ("stopped: True\n", "can never differ"),
])
def test_the_scan_flags_library_text_in_recorded_output(text, reason):
    outputs = [{"output_type": "stream", "name": "stdout", "text": text}]
    assert any(reason in p for p in output_problems(outputs)), output_problems(outputs)


def test_a_recorded_repr_is_flagged():
    outputs = [{"output_type": "execute_result", "data": {"text/plain": "   a\n0  1"},
                "metadata": {}, "execution_count": 1}]
    assert any("execute_result" in p for p in output_problems(outputs))
