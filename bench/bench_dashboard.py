"""How smoothly the dashboard runs in Chromium: frames per second and main-thread busy time.

    .venv/bin/python bench/bench_dashboard.py [--beds 32] [--wave-beds 4] [--seconds 10]
                                              [--screenshot docs/dashboard.png]

Starts the whole system (the ward at real speed, with waveforms), opens the dashboard in Debian's
headless Chromium, selects the waveform beds, then counts requestAnimationFrame callbacks and
sums the long tasks (> 50 ms) over the measuring window. Chromium's own CPU time for the page
comes from the DevTools protocol's Performance domain (TaskDuration, ScriptDuration).
"""

from __future__ import annotations

import argparse
import asyncio
import threading

from playwright.sync_api import sync_playwright

from server import System
from server.config import StationConfig
from server.system import SystemConfig
from vitalsim.devices import WardConfig

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]

PROBE = """(seconds) => new Promise((resolve) => {
  let frames = 0, longTasks = 0, longMs = 0, worst = 0, last = performance.now();
  new PerformanceObserver((list) => {
    for (const e of list.getEntries()) { longTasks++; longMs += e.duration; }
  }).observe({ type: "longtask", buffered: false });
  const start = performance.now();
  function tick(now) {
    frames++; worst = Math.max(worst, now - last); last = now;
    if (now - start < seconds * 1000) requestAnimationFrame(tick);
    else resolve({ frames, elapsed: (now - start) / 1000, longTasks, longMs, worst });
  }
  requestAnimationFrame(tick);
})"""


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--beds", type=int, default=32)
    p.add_argument("--wave-beds", type=int, default=4)
    p.add_argument("--seconds", type=float, default=10.0)
    p.add_argument("--screenshot", help="also save a full-page PNG here")
    args = p.parse_args()

    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    system = System(SystemConfig(StationConfig(http_port=0, udp_port=0, tcp_port=0),
                                 WardConfig(beds=args.beds, scenario="mix", waves=True)))
    asyncio.run_coroutine_threadsafe(system.start(), loop).result(30)
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            page = browser.new_page(viewport={"width": 1600, "height": 1000})
            cdp = page.context.new_cdp_session(page)
            cdp.send("Performance.enable")
            page.goto(system.url)
            page.wait_for_function(
                f"document.querySelectorAll('.tile').length === {args.beds}", timeout=20_000)
            for bed in range(1, args.wave_beds + 1):
                page.locator(f'.tile[data-bed="{bed}"] .wave-toggle').click()
            page.locator('.tile[data-bed="1"] .trend-btn').click()
            page.wait_for_selector("#trend canvas", timeout=10_000)

            def metrics() -> dict[str, float]:
                return {m["name"]: m["value"]
                        for m in cdp.send("Performance.getMetrics")["metrics"]}

            before = metrics()
            result = page.evaluate(PROBE, args.seconds)
            after = metrics()
            if args.screenshot:
                page.screenshot(path=args.screenshot)
            browser.close()
    finally:
        asyncio.run_coroutine_threadsafe(system.stop(), loop).result(30)
        loop.call_soon_threadsafe(loop.stop)

    elapsed = result["elapsed"]
    task = after["TaskDuration"] - before["TaskDuration"]
    script = after["ScriptDuration"] - before["ScriptDuration"]
    print(f"dashboard: {args.beds} beds, {args.wave_beds} with waveforms, {elapsed:.1f} s")
    print(f"frames per second:        {result['frames'] / elapsed:.1f}")
    print(f"worst frame gap:          {result['worst']:.1f} ms")
    print(f"long tasks (> 50 ms):     {result['longTasks']} ({result['longMs']:.0f} ms)")
    print(f"main thread busy:         {100 * task / elapsed:.1f}% "
          f"(script {100 * script / elapsed:.1f}%)")


if __name__ == "__main__":
    main()
