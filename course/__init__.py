"""The course's own code: everything the labs need that the product does not.

The product packages (``vitalsim``, the bedside side, and ``server``, the central station) run a
ward without a notebook; this package turns them into lessons:

- named checks with expected-versus-actual feedback, and :func:`wait_until`;
- the notebook builder (``python -m course.build``);
- lab helpers: hand-written framing and WebSocket parsing, the reset drill, push against polling,
  the virtual-time alarm drill and replay, packets and TCP evidence from captures;
- recorders that turn the running system into pandas frames, and ipywidgets controls;
- the capture generator (``python -m course.captures``);
- for instructors and deployments: the dashboard link that opens where the notebook runs
  (:mod:`course.links`), the capability report (:mod:`course.doctor`), the learner bundle
  without solutions (:mod:`course.bundle`) and grading (:mod:`course.grading`), run from a
  shell as ``python -m course doctor|bundle|grade``.

It imports ``server`` and ``vitalsim``; neither of them imports it, and only the labs and the
tests do. pandas, ipywidgets and jupyter_bokeh are its dependencies, never the product's.
"""

from .checks import Check, CheckResult, Checks, not_done_yet
from .waiting import wait_until

__all__ = ["Check", "CheckResult", "Checks", "not_done_yet", "wait_until"]
