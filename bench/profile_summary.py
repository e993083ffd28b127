"""Where the station's time went at one benchmark point, read from py-spy's collapsed stacks.

``python -m bench --profile DIR`` records each point's profile (``bench.run._profile``); for a
target the run missed, the benchmark prints this summary of the point that decided it, so that
the output says what is left as well as by how much it was missed.
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

#: a frame as py-spy writes it: "Class.method (path/to/file.py:123)"
_FRAME = re.compile(r"^(?P<name>.+?) \((?P<path>[^()]*?):\d+\)$")
#: the course's own code: the station's modules and the protocol it runs
_OURS = ("server/", "vitalsim/")


def where_the_time_went(path: Path, top: int = 6, ceiling: float = 0.85) -> str:
    """The ``top`` functions of the course's own code by share of the samples they were on
    the stack for (each at most once per sample), leaving out the frames nearly every sample
    has (above ``ceiling``: the process's entry points). Idle time is the event loop's
    ``select``."""
    on_stack: Counter[str] = Counter()
    total = idle = 0
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        total += n
        names = set()
        for frame in stack.split(";"):
            m = _FRAME.match(frame)
            if m is None:
                continue
            if m["name"].endswith("select") and "selectors" in m["path"]:
                idle += n
            if any(part in m["path"] for part in _OURS):
                names.add(m["name"])
        on_stack.update(dict.fromkeys(names, n))
    if not total:
        return "no samples"
    ranked = sorted(on_stack.items(), key=lambda item: (-item[1], item[0]))  # ties by name
    shares = [(name, n / total) for name, n in ranked if n / total <= ceiling][:top]
    parts = [f"{name} {100 * share:.0f}%" for name, share in shares]
    return ", ".join(parts + [f"idle {100 * idle / total:.0f}%"]) + f" ({total} samples)"
