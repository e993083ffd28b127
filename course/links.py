"""The dashboard link a lab shows: one that opens in the student's browser, wherever the
notebook runs.

A station binds 127.0.0.1 inside the student's own server (container, or process under a hub),
so ``http://127.0.0.1:PORT/`` only opens from that machine. Under a JupyterHub or Binder the
single-user server sets ``JUPYTERHUB_SERVICE_PREFIX`` (``/user/alice/``), and
jupyter-server-proxy forwards ``{prefix}proxy/{port}/`` to ``127.0.0.1:{port}``, after the hub
has checked that the browser belongs to that user. The dashboard's URLs are all relative, so it
works under that prefix unchanged. Locally (no prefix) the link is the station's own URL.

Only HTTP and the dashboard's WebSocket go through the proxy: telemetry (UDP) and alarms (TCP)
stay on loopback inside the student's server.
"""

from __future__ import annotations

import html
import os
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlparse

PREFIX_VARIABLE = "JUPYTERHUB_SERVICE_PREFIX"


def hub_prefix(environ: Mapping[str, str] | None = None) -> str | None:
    """The single-user server's path prefix under a hub or Binder (ending in ``/``), or None."""
    env = os.environ if environ is None else environ
    prefix = env.get(PREFIX_VARIABLE, "").strip()
    if not prefix:
        return None
    if not prefix.startswith("/"):
        prefix = "/" + prefix
    return prefix if prefix.endswith("/") else prefix + "/"


@dataclass(frozen=True)
class DashboardLink:
    """Where the dashboard opens, shown in a notebook as a clickable link.

    ``href`` is what the browser should open: the station's own URL locally, or the path through
    the hub's proxy (relative to the hub's host, which is the notebook's own origin).
    ``embed`` adds the dashboard itself in an iframe under the link.
    """

    href: str
    station_url: str
    via_hub: bool
    embed: bool = False
    height: int = 600

    def __str__(self) -> str:
        return self.href

    def _repr_html_(self) -> str:
        href = html.escape(self.href, quote=True)
        where = "through the hub's proxy" if self.via_hub else "on this machine"
        out = (f'<p>dashboard ({where}): <a href="{href}" target="_blank" '
               f'rel="noopener">{html.escape(self.href)}</a></p>')
        if self.embed:
            out += (f'<iframe src="{href}" title="central station dashboard" '
                    f'style="width:100%;height:{int(self.height)}px;border:1px solid #ccc">'
                    f'</iframe>')
        return out

    def _repr_pretty_(self, printer, cycle: bool) -> None:  # noqa: ANN001 (IPython's printer)
        printer.text(f"dashboard: {self.href}")


def dashboard_link(station_url: str, *, embed: bool = False, height: int = 600,
                   environ: Mapping[str, str] | None = None) -> DashboardLink:
    """The link to a station's dashboard that opens where this notebook runs.

    ``station_url`` is the station's own URL (``system.url``). Under a hub or Binder
    (``JUPYTERHUB_SERVICE_PREFIX`` set) the link is ``{prefix}proxy/{port}/``; otherwise it is
    ``station_url`` itself.
    """
    prefix = hub_prefix(environ)
    if prefix is None:
        return DashboardLink(station_url, station_url, False, embed, height)
    parts = urlparse(station_url)
    if parts.port is None:
        raise ValueError(f"{station_url!r} names no port for the hub's proxy to forward to")
    # the station's own path and query (a session token, say) follow the proxy's prefix
    rest = (parts.path or "/").lstrip("/") + (f"?{parts.query}" if parts.query else "")
    return DashboardLink(f"{prefix}proxy/{parts.port}/{rest}", station_url, True, embed, height)
