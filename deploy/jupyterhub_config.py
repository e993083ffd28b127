"""A JupyterHub for one class on one server (see docs/DEPLOY.md).

Each student logs in as their own Unix user (PAM), and gets their own single-user server,
started from the course's locked environment, in their own home directory. The dashboard is
reached through jupyter-server-proxy at /user/NAME/proxy/PORT/, which only that user may open;
telemetry and alarms stay on 127.0.0.1 inside each student's server.

Install on the server (as root), with the course in /opt/course. /opt/course is the learner
bundle, never the repository: students can read it, and the repository holds the solutions.

    git clone <this repository> /root/course-src && make -C /root/course-src learner-bundle
    cp -r /root/course-src/dist/learner-bundle /opt/course && make -C /opt/course .venv/.installed
    npm install -g configurable-http-proxy@5.3.0
    /opt/course/.venv/bin/pip install jupyterhub-idle-culler jupyterhub-systemdspawner
    /opt/course/.venv/bin/jupyterhub -f /opt/course/deploy/jupyterhub_config.py

Put TLS in front of it (a reverse proxy such as nginx or caddy on 443), or set
c.JupyterHub.ssl_cert and ssl_key below.
"""

import sys

c = get_config()  # noqa: F821 (JupyterHub's config loader defines it)

COURSE = "/opt/course"
VENV = f"{COURSE}/.venv"

c.JupyterHub.bind_url = "http://127.0.0.1:8000"  # the TLS proxy in front forwards here

# Students: Unix accounts on this server. The course's own admins may add them in the hub.
c.JupyterHub.authenticator_class = "pam"
c.Authenticator.admin_users = {"instructor"}
c.Authenticator.allowed_users = set()  # fill in, or use c.Authenticator.allow_all = True

# Each student's server, as a systemd unit with its own memory and CPU limits (see the sizing
# table in docs/DEPLOY.md), started from the locked environment. Without systemd, remove these
# four lines: LocalProcessSpawner (the default) runs the same, without the limits.
c.JupyterHub.spawner_class = "systemdspawner.SystemdSpawner"
c.SystemdSpawner.mem_limit = "1G"
c.SystemdSpawner.cpu_limit = 1.0
c.SystemdSpawner.isolate_tmp = True

c.Spawner.cmd = [f"{VENV}/bin/jupyterhub-singleuser"]
c.Spawner.notebook_dir = "~"
c.Spawner.default_url = "/lab/tree/labs/00_tour.ipynb"


def copy_labs(spawner):
    """The learner notebooks into a student's home, the first time their server starts; later
    starts keep their work."""
    import os
    import pwd
    import shutil
    from pathlib import Path

    user = pwd.getpwnam(spawner.user.name)
    target = Path(user.pw_dir) / "labs"
    if target.exists():
        return
    shutil.copytree(f"{COURSE}/labs", target)
    for path in [target, *target.rglob("*")]:
        os.chown(path, user.pw_uid, user.pw_gid)


c.Spawner.pre_spawn_hook = copy_labs

# Stop servers idle for an hour: a lab's system stops with its kernel.
c.JupyterHub.services = [{
    "name": "idle-culler",
    "command": [sys.executable, "-m", "jupyterhub_idle_culler", "--timeout=3600"],
}]
c.JupyterHub.load_roles = [{
    "name": "idle-culler",
    "scopes": ["list:users", "read:users:activity", "read:servers", "delete:servers"],
    "services": ["idle-culler"],
}]
