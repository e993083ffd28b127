"""The teaching code around the product: what the labs, the instructor and the deployment use.

It imports :mod:`server` and :mod:`vitalsim`; neither of them imports it. This package holds,
among other things:

- :mod:`course.links`: the dashboard link a lab shows, which opens where the notebook runs
  (a local JupyterLab, or a JupyterHub or Binder through jupyter-server-proxy);
- :mod:`course.doctor`: what this environment allows (root, capabilities, libpcap, nftables,
  Chromium, a hub) and what each lab will do about it;
- :mod:`course.bundle`: the learner bundle, without solutions;
- :mod:`course.grading`: every student's notebooks run headless, their checks in a table.

``python -m course doctor|bundle|grade`` runs them from a shell.
"""
