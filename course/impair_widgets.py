"""Sliders for a running impairment proxy, for a notebook: turn the network bad and watch."""

from __future__ import annotations

import ipywidgets as widgets

from vitalsim.impair.proxy import TcpImpairmentProxy, UdpImpairmentProxy

# (field, label, min, max, step, scale shown to the learner)
UDP_SLIDERS = (
    ("loss", "loss %", 0.0, 50.0, 0.5, 100.0),
    ("burst", "burst (0 = independent)", 0.0, 10.0, 0.5, 1.0),
    ("delay", "delay ms", 0.0, 500.0, 5.0, 1000.0),
    ("jitter", "jitter ms", 0.0, 200.0, 1.0, 1000.0),
    ("duplicate", "duplicate %", 0.0, 20.0, 0.5, 100.0),
    ("reorder", "reorder %", 0.0, 20.0, 0.5, 100.0),
)
TCP_SLIDERS = (
    ("latency", "latency ms", 0.0, 1000.0, 10.0, 1000.0),
    ("bandwidth", "bandwidth B/s (0 = no limit)", 0.0, 100_000.0, 1000.0, 1.0),
)


def _slider(settings: object, name: str, label: str, lo: float, hi: float, step: float,
            scale: float) -> widgets.FloatSlider:
    slider = widgets.FloatSlider(value=getattr(settings, name) * scale, min=lo, max=hi,
                                 step=step, description=label, continuous_update=False,
                                 style={"description_width": "14em"},
                                 layout=widgets.Layout(width="32em"))

    def changed(change: dict) -> None:
        setattr(settings, name, change["new"] / scale)

    slider.observe(changed, names="value")
    return slider


def controls(udp: UdpImpairmentProxy | None = None,
             tcp: TcpImpairmentProxy | None = None) -> widgets.Widget:
    """A panel of sliders bound live to the proxies' settings, with the proxies' counters."""
    rows: list[widgets.Widget] = []
    counters = widgets.HTML()

    def refresh(_: object = None) -> None:
        parts = []
        if udp is not None:
            parts.append("UDP " + ", ".join(f"{k} {v}" for k, v in udp.counters.items()))
        if tcp is not None:
            parts.append("TCP " + ", ".join(f"{k} {v}" for k, v in tcp.counters.items()))
        counters.value = "<br>".join(parts)  # numbers only: nothing from the network

    if udp is not None:
        rows.append(widgets.HTML("<b>UDP telemetry</b>"))
        rows += [_slider(udp.settings, *spec) for spec in UDP_SLIDERS]
    if tcp is not None:
        rows.append(widgets.HTML("<b>TCP alarm channel</b>"))
        rows += [_slider(tcp.settings, *spec) for spec in TCP_SLIDERS]
        stall = widgets.ToggleButton(value=tcp.settings.stall, description="stall")
        stall.observe(lambda c: setattr(tcp.settings, "stall", c["new"]), names="value")
        reset = widgets.Button(description="reset connections", button_style="warning")
        reset.on_click(lambda _: (tcp.reset_connections(), refresh()))
        rows.append(widgets.HBox([stall, reset]))
    show = widgets.Button(description="refresh counters")
    show.on_click(refresh)
    refresh()
    return widgets.VBox([*rows, widgets.HBox([show]), counters])
