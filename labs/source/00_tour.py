# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Lab 00 — A tour of the ward
#
# **Objectives.** By the end of this tour you will have started the whole system (a central station and a
# ward of simulated bedside monitors) from this notebook, opened its dashboard, read live vital signs into
# pandas, and stopped everything cleanly — and started it again.
#
# **Prerequisites.** Python and a first look at pandas. No root, no network beyond this machine.
#
# **Time.** About 10 minutes.
#
# Everything runs on *this notebook's own event loop*: cells `await` the system, they never block it, so
# the bedside monitors keep sending while you read.

# %% [markdown]
# ## 0. What this environment allows
#
# Some later labs capture packets live or drop them in the kernel, which needs root, libpcap and
# nftables; without them they read the recordings in `course/recordings/` and say so. The course's doctor
# tells you now what each lab will do here (an instructor can run it from a shell too:
# `python -m course doctor`).

# %%
from course.doctor import check

check()

# %% [markdown]
# ## 1. Start the system
#
# `System.ephemeral()` asks the operating system for free ports (port 0), so two students on one machine
# never collide. The station prints where its dashboard is.

# %%
from server import System

system = System.ephemeral(beds=4, scenario="mix", seed=7)
await system.start()
print("telemetry arrives on UDP port", system.station.udp_port,
      "and alarms on TCP port", system.station.tcp_port)

# %% [markdown]
# The station listens on this machine's loopback address, `127.0.0.1`: telemetry and alarms never
# leave the server this notebook runs on. Its dashboard is a web page, and `dashboard_link` gives the
# address that opens it from *your* browser: the station's own URL when JupyterLab runs on your
# computer, or a path through the hub's proxy (`/user/NAME/proxy/PORT/`) when it runs on a
# JupyterHub or Binder. `embed=True` also shows the dashboard inside the notebook.

# %%
from course.links import dashboard_link

dashboard_link(system.url)

# %% [markdown]
# Open the dashboard link in a new browser tab: a tile per bed, whose numbers change every second.
#
# ## 2. Wait until every bed has been heard
#
# Each bedside monitor sends its numerics once a second by UDP. The station learns about a bed from its
# first datagram.

# %%
await system.wait_ready(timeout=10)
print(len(system.station.beds.beds), "beds reporting")

# %% [markdown]
# ## 3. Read live values with pandas
#
# `beds_frame(system)` gives the latest value of every bed as a DataFrame. Run the cell twice, a few seconds
# apart: the values move, because the patients' physiology is being simulated as you watch.

# %%
from course.tables import beds_frame

frame = beds_frame(system)
frame

# %%
# NBVAL_CHECK_OUTPUT
checks = {
    "every bed has a heart rate": bool(frame["hr"].notna().all()),
    "heart rates are physiological (30-220 bpm)": bool(frame["hr"].between(30, 220).all()),
    "SpO2 is a percentage": bool(frame["spo2"].dropna().between(50, 100).all()),
}
for name, ok in checks.items():
    print(("PASS " if ok else "FAIL ") + name)

# %% [markdown]
# ## 4. What crossed the network
#
# The station keeps reception statistics for each bed: how many datagrams arrived, how many the sequence
# numbers say were lost, and the one-way latency. On loopback nothing is lost — later labs change that.

# %%
import pandas as pd

# one row per bed: orient="index" keeps each column's own type, so counters stay integers
per_bed = system.station.stats()["beds"]
stats = pd.DataFrame.from_dict(per_bed, orient="index")[["received", "lost", "duplicates",
                                                        "latency_p50_ms"]]
stats

# %% [markdown]
# ## 5. Stop, and start again
#
# A well-behaved program gives back its ports and tasks when stopped. We stop the system and start a new
# one in the same kernel.

# %%
await system.stop()
system = System.ephemeral(beds=2, scenario="stable_adult", seed=7)
await system.start()
await system.wait_ready(timeout=10)
print("restarted with", len(beds_frame(system)), "beds")

# %%
await system.stop()
print("stopped:", not system.station.running)

# %% [markdown]
# ## Reflection
#
# 1. The station learned about each bed from UDP datagrams alone. What would it show if a bed's first
#    datagrams were lost?
# 2. Why do you think vitals travel over UDP while alarms travel over TCP? (Lab 01 and Lab 02 answer this.)
