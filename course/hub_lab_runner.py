"""Run a notebook in a student's server through JupyterHub, as JupyterLab would: nbclient
driving a kernel that jupyter_server's gateway kernel manager starts with the server's REST API
(``JUPYTER_GATEWAY_URL`` = ``HUB/user/NAME``, the student's token in
``JUPYTER_GATEWAY_AUTH_TOKEN``) and talks to over its WebSocket, all through the hub's proxy.

``python -m course.hub_lab_runner NOTEBOOK THEN FINALLY``: runs every cell, then the code THEN, and
prints one JSON line (each cell's text output, and the seconds taken); waits for a line on stdin;
runs FINALLY, shuts the kernel down and prints a last JSON line. A failure (a cell that raises,
a kernel that dies) prints ``{"error": ...}`` instead, at once. Used by course/hub_harness.py.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from threading import Thread

import nbformat
import websocket
from jupyter_core.utils import ensure_async
from jupyter_server.gateway.gateway_client import GatewayClient
from jupyter_server.gateway.managers import GatewayKernelClient, GatewayKernelManager
from jupyter_server.utils import url_path_join
from nbclient import NotebookClient
from tornado.escape import url_escape
from traitlets import DottedObjectName, Type


class HubKernelClient(GatewayKernelClient):
    """The gateway kernel client, with the student's token on the kernel's WebSocket too.

    jupyter_server's own client sends ``Authorization`` on its REST calls but opens the
    channels' WebSocket without it; a hub's single-user server refuses that (403). This is its
    ``start_channels`` with the header added, nothing else.
    """

    async def start_channels(self, shell=True, iopub=True, stdin=True, hb=True, control=True):
        gateway = GatewayClient.instance()
        ws_url = url_path_join(gateway.ws_url or "", gateway.kernels_endpoint,
                               url_escape(self.kernel_id), "channels")
        self.channel_socket = websocket.create_connection(
            ws_url, timeout=gateway.KERNEL_LAUNCH_TIMEOUT, enable_multithread=True,
            header=[f"{gateway.auth_header_key}: {gateway.auth_scheme} {gateway.auth_token}"])
        await ensure_async(super(GatewayKernelClient, self).start_channels(
            shell=shell, iopub=iopub, stdin=stdin, hb=hb, control=control))
        self.response_router = Thread(target=self._route_responses)
        self.response_router.start()


class HubKernelManager(GatewayKernelManager):
    client_class = DottedObjectName("course.hub_lab_runner.HubKernelClient")
    client_factory = Type(klass="course.hub_lab_runner.HubKernelClient")


def text_of(cell) -> str:
    parts = []
    for output in cell.get("outputs", []):
        if output.get("output_type") == "stream":
            parts.append(output.get("text", ""))
        elif output.get("output_type") in ("execute_result", "display_data"):
            data = output.get("data", {})
            parts.append(data.get("text/html") or data.get("text/plain", ""))
        elif output.get("output_type") == "error":
            parts.append(f"{output.get('ename')}: {output.get('evalue')}")
    return "".join(parts)


async def main(path: str, then: str, finally_: str) -> int:
    nb = nbformat.read(path, as_version=4)
    km = HubKernelManager()
    # the benchmark runs on past a failing check, to measure the whole lab; tests stop at one
    allow_errors = os.environ.get("HUB_LAB_ALLOW_ERRORS") == "1"
    client = NotebookClient(nb, km=km, kernel_name="python3", timeout=180, startup_timeout=180,
                            allow_errors=allow_errors)
    started = time.monotonic()
    code = 0
    try:
        await client.async_start_new_kernel()
        await client.async_start_new_kernel_client()
        for index, cell in enumerate(nb.cells):
            await client.async_execute_cell(cell, index)
        lab_seconds = time.monotonic() - started
        extra = nbformat.v4.new_code_cell(then)
        if then:
            nb.cells.append(extra)
            await client.async_execute_cell(extra, len(nb.cells) - 1)
        errors = [f"{o.get('ename')}: {o.get('evalue')}"[:300] for c in nb.cells
                  for o in c.get("outputs", []) if o.get("output_type") == "error"]
        print(json.dumps({"outputs": [text_of(c) for c in nb.cells], "errors": errors,
                          "lab_seconds": round(lab_seconds, 2)}), flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
        last = nbformat.v4.new_code_cell(finally_)
        if finally_:
            nb.cells.append(last)
            await client.async_execute_cell(last, len(nb.cells) - 1)
        print(json.dumps({"finally": text_of(last)}), flush=True)
    except Exception as exc:  # the parent reads this line rather than waiting for a report
        print(json.dumps({"error": f"{type(exc).__name__}: {exc}"[:4000]}), flush=True)
        code = 1
    finally:
        # the kernel is the student's server's, not ours: nbclient leaves a kernel manager it
        # was given alone, so shut the kernel down here, within a deadline
        if km.has_kernel:
            try:
                await asyncio.wait_for(km.shutdown_kernel(now=True), 60)
            except Exception as exc:
                print(f"kernel shutdown: {exc!r}", file=sys.stderr, flush=True)
    return code


if __name__ == "__main__":
    # os._exit: the gateway client's channel threads can outlive a failed run and hold the exit
    os._exit(asyncio.run(main(*sys.argv[1:4])))
