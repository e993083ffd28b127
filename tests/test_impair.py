"""The impairment models and proxies: what was set is what happens, reproducibly."""

import asyncio
import random
import socket
import struct

import pytest

from server import StationConfig, System
from server.system import SystemConfig
from tests.helpers import run, wait_until
from vitalsim.alarms import FLAPPING_HR
from vitalsim.devices import WardConfig
from vitalsim.impair import (
    GilbertElliott,
    TcpImpairmentProxy,
    TcpSettings,
    UdpImpairer,
    UdpImpairmentProxy,
    UdpSettings,
)
from vitalsim.protocol import ReceiverStats


def bursts(losses: list[bool]) -> list[int]:
    out, run_ = [], 0
    for lost in losses:
        if lost:
            run_ += 1
        elif run_:
            out.append(run_)
            run_ = 0
    return out


def test_gilbert_elliott_gives_the_loss_and_the_burst_length_asked_for():
    chain = GilbertElliott.from_loss(0.2, mean_burst=4.0, rng=random.Random(1))
    assert chain.stationary_loss == pytest.approx(0.2)
    losses = [chain.lost() for _ in range(200_000)]
    assert sum(losses) / len(losses) == pytest.approx(0.2, abs=0.01)
    lengths = bursts(losses)
    assert sum(lengths) / len(lengths) == pytest.approx(4.0, rel=0.08)
    independent = GilbertElliott.from_loss(0.2, rng=random.Random(1))
    lengths = bursts([independent.lost() for _ in range(200_000)])
    assert sum(lengths) / len(lengths) == pytest.approx(1.25, rel=0.05)  # 1 / (1 - 0.2)


def test_bad_settings_are_named():
    with pytest.raises(ValueError, match="loss=1.5"):
        UdpSettings(loss=1.5).check()
    with pytest.raises(ValueError, match="burst=0.5"):
        UdpSettings(burst=0.5).check()
    with pytest.raises(ValueError, match="p_gb=2"):
        GilbertElliott(2, 0.5)


def test_the_same_seed_impairs_the_same_datagrams():
    settings = UdpSettings(loss=0.1, burst=3, jitter=0.01, duplicate=0.05, reorder=0.05)
    a, b = UdpImpairer(settings, seed=7), UdpImpairer(settings, seed=7)
    assert [a.decide(i) for i in range(2000)] == [b.decide(i) for i in range(2000)]
    c = UdpImpairer(settings, seed=8)
    assert [c.decide(i) for i in range(2000)] != [UdpImpairer(settings, 7).decide(i)
                                                  for i in range(2000)]


def test_impairer_counts_match_the_settings_statistically():
    imp = UdpImpairer(UdpSettings(loss=0.1, duplicate=0.05, reorder=0.08), seed=3)
    for i in range(20_000):
        imp.decide(float(i))
    c = imp.counters
    assert c.dropped / c.received == pytest.approx(0.1, abs=0.01)
    assert c.duplicated / (c.received - c.dropped) == pytest.approx(0.05, abs=0.01)
    assert c.reordered / (c.received - c.dropped) == pytest.approx(0.08, abs=0.01)


def test_udp_proxy_what_the_receiver_measures_is_what_the_proxy_did():
    async def main():
        loop = asyncio.get_running_loop()
        received: list[int] = []
        stats = ReceiverStats()

        class Sink(asyncio.DatagramProtocol):
            def datagram_received(self, data, addr):
                (seq,) = struct.unpack("!I", data[:4])
                received.append(seq)
                stats.observe(seq, 0.0, 0.0)

        sink, _ = await loop.create_datagram_endpoint(Sink, local_addr=("127.0.0.1", 0))
        proxy = UdpImpairmentProxy(sink.get_extra_info("sockname"),
                                   UdpSettings(loss=0.15, burst=2.0, duplicate=0.05,
                                               reorder=0.1, reorder_delay=0.02), seed=11)
        await proxy.start()
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            n = 3000
            for seq in range(n):
                sock.sendto(struct.pack("!I", seq) + b"x" * 60, ("127.0.0.1", proxy.port))
                if seq % 50 == 49:
                    await asyncio.sleep(0.005)  # paced: the kernel must not drop any
            await wait_until(lambda: proxy.counters["received"] == n, what="all at the proxy")
            await wait_until(lambda: len(received) == proxy.counters["delivered"],
                             what="every forwarded copy at the receiver")
        finally:
            sock.close()
            await proxy.stop()
            sink.close()
        c = proxy.counters
        missing = n - len(set(received))
        assert missing == c["dropped"], "every drop shows as a sequence gap, and nothing else"
        assert stats.lost == c["dropped"] and stats.duplicates == c["duplicated"]
        assert stats.loss_ratio == pytest.approx(0.15, abs=0.025)
        assert 0 < stats.reordered <= c["reordered"]
    run(main())


async def echo_server() -> asyncio.Server:
    """A TCP server on loopback that sends back whatever it reads."""
    async def echo(reader, writer):
        while data := await reader.read(1024):
            writer.write(data)
            await writer.drain()
        writer.close()

    return await asyncio.start_server(echo, "127.0.0.1", 0)


def test_tcp_proxy_adds_latency_each_way():
    async def main():
        server = await echo_server()
        proxy = TcpImpairmentProxy(server.sockets[0].getsockname(), TcpSettings(latency=0.1))
        await proxy.start()
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
            loop = asyncio.get_running_loop()
            start = loop.time()
            writer.write(b"ping")
            assert await reader.readexactly(4) == b"ping"
            assert loop.time() - start >= 0.2, "0.1 s there and 0.1 s back"
            writer.close()
        finally:
            await proxy.stop()
            server.close()
    run(main())


def test_a_stopped_tcp_proxy_leaves_no_task_behind_even_with_data_in_flight():
    async def main():
        server = await echo_server()
        proxy = TcpImpairmentProxy(server.sockets[0].getsockname(), TcpSettings(latency=0.5))
        await proxy.start()
        before = asyncio.all_tasks()
        try:
            clients = [await asyncio.open_connection("127.0.0.1", proxy.port) for _ in range(3)]
            for _, writer in clients:
                writer.write(b"still on the wire when the proxy stops")
            await wait_until(lambda: proxy.counters["open"] == 3, what="three connections")
        finally:
            await proxy.stop()
            server.close()
        left = {t for t in asyncio.all_tasks() - before if not t.done()}
        assert not left, f"tasks outlived the proxy: {left}"
        assert proxy.counters["open"] == 0
        for reader, writer in clients:  # stopping resets: each client sees it, none hangs
            with pytest.raises(ConnectionResetError):
                await asyncio.wait_for(reader.read(), 5)
            writer.close()
    run(main())


def test_tcp_resets_make_the_alarm_channel_reconnect_and_lose_nothing():
    flapping = FLAPPING_HR

    async def main():
        cfg = SystemConfig(StationConfig(http_port=0, udp_port=0, tcp_port=0),
                           WardConfig(beds=3, scenario="stable_adult", waves=False, speed=20.0,
                                      limits=flapping),
                           tcp_impairment=TcpSettings())
        async with System(cfg) as sys_:
            st, proxy, links = sys_.station, sys_.tcp_proxy, sys_.ward.links
            for round_ in range(3):
                await wait_until(lambda: proxy.counters["open"] == 3, timeout=10,
                                 what=f"three alarm connections (round {round_})")
                await wait_until(lambda r=round_: st.journal.count("device") >= 10 * (r + 1),
                                 timeout=15, what="alarms flowing")
                assert proxy.reset_connections() == 3
            await wait_until(lambda: all(link.connections >= 4 for link in links), timeout=15,
                             what="every device reconnected after each reset")
            for link in links:  # no new alarms; the alarm links stay up to drain the outboxes
                await link.stop_telemetry()
            await wait_until(lambda: all(not link.sender.outbox for link in links), timeout=20,
                             what="every outbox emptied")
            sent = sum(link.alarms_raised for link in links)
            assert st.journal.count("device") == sent, "no alarm lost, none twice"
            assert st.journal.count("station") >= 1, "the station noticed the lost links"
            assert proxy.counters["resets"] == 9
    run(main())


def test_sliders_change_a_running_proxys_settings():
    from course.impair_widgets import controls

    udp = UdpImpairmentProxy(("127.0.0.1", 9), UdpSettings())
    tcp = TcpImpairmentProxy(("127.0.0.1", 9), TcpSettings())
    panel = controls(udp, tcp)
    sliders = {w.description: w for w in panel.children if hasattr(w, "description")}
    sliders["loss %"].value = 12.5
    sliders["jitter ms"].value = 20.0
    sliders["latency ms"].value = 250.0
    assert (udp.settings.loss, udp.settings.jitter) == (0.125, 0.02)
    assert tcp.settings.latency == 0.25


def test_settings_tell_their_watchers_of_each_change_and_only_of_changes():
    settings = UdpSettings(loss=0.1)
    heard: list[tuple[str, object]] = []
    unwatch = settings.watch(lambda name, value: heard.append((name, value)))
    settings.loss = 0.2
    settings.loss = 0.2  # no change: nothing to tell
    settings.burst = 3.0
    unwatch()
    settings.jitter = 0.01
    assert heard == [("loss", 0.2), ("burst", 3.0)]
    assert settings == UdpSettings(loss=0.2, burst=3.0, jitter=0.01), "watchers are not a field"


def _sliders(panel) -> dict:
    found, todo = {}, [panel]
    while todo:
        widget = todo.pop()
        todo += list(getattr(widget, "children", ()))
        if getattr(widget, "description", ""):
            found[widget.description] = widget
    return found


def test_sliders_follow_settings_changed_by_code():
    from course.impair_widgets import controls

    udp = UdpImpairmentProxy(("127.0.0.1", 9), UdpSettings())
    tcp = TcpImpairmentProxy(("127.0.0.1", 9), TcpSettings())
    sliders = _sliders(controls(udp, tcp))
    written: list[float] = []
    udp.settings.watch(lambda name, value: written.append(value) if name == "loss" else None)
    udp.settings.loss = 0.2
    tcp.settings.latency = 0.25
    tcp.settings.stall = True
    assert sliders["loss %"].value == pytest.approx(20.0)
    assert sliders["latency ms"].value == pytest.approx(250.0)
    assert sliders["stall"].value is True
    assert udp.settings.loss == 0.2 and written == [0.2], "the slider wrote nothing back"


def test_a_setting_beyond_a_sliders_range_widens_it_instead_of_being_clamped():
    from course.impair_widgets import controls

    udp = UdpImpairmentProxy(("127.0.0.1", 9), UdpSettings(delay=0.8))
    sliders = _sliders(controls(udp))
    assert sliders["delay ms"].value == pytest.approx(800.0)
    udp.settings.loss = 0.75  # above the slider's 50%
    assert sliders["loss %"].value == pytest.approx(75.0)
    assert sliders["loss %"].max >= 75.0
    assert udp.settings.loss == 0.75, "a clamped slider would have written 0.5 back"


def test_two_panels_on_one_proxy_follow_each_other():
    from course.impair_widgets import controls

    udp = UdpImpairmentProxy(("127.0.0.1", 9), UdpSettings())
    first, second = _sliders(controls(udp)), _sliders(controls(udp))
    first["burst (0 = independent)"].value = 4.0
    assert udp.settings.burst == 4.0
    assert second["burst (0 = independent)"].value == 4.0


def test_the_command_line_proxy_reports_its_port_and_what_it_did():
    import subprocess
    import sys

    async def main():
        loop = asyncio.get_running_loop()
        got = asyncio.Queue()

        class Sink(asyncio.DatagramProtocol):
            def datagram_received(self, data, addr):
                got.put_nowait(data)

        sink, _ = await loop.create_datagram_endpoint(Sink, local_addr=("127.0.0.1", 0))
        port = sink.get_extra_info("sockname")[1]
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "vitalsim.impair", "udp", "--target", f"127.0.0.1:{port}",
            stdout=subprocess.PIPE)
        try:
            line = (await asyncio.wait_for(proc.stdout.readline(), 20)).decode()
            listen = int(line.split("->")[0].rsplit(":", 1)[1])
            sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            sock.sendto(b"hello ward", ("127.0.0.1", listen))
            sock.close()
            assert await asyncio.wait_for(got.get(), 10) == b"hello ward"
        finally:
            proc.send_signal(2)
            out = (await asyncio.wait_for(proc.stdout.read(), 20)).decode()
            await proc.wait()
            sink.close()
        assert "received 1" in out and "delivered 1" in out
    run(main())


def test_the_command_line_names_a_bad_setting():
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-m", "vitalsim.impair", "udp", "--target",
                           "127.0.0.1:5005", "--loss", "2"], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 2 and "loss=2.0" in done.stderr


def test_tcp_proxy_stalls_and_throttles():
    async def main():
        received = bytearray()
        done = asyncio.Event()

        async def sink(reader, writer):
            while data := await reader.read(65536):
                received.extend(data)
                if len(received) >= 20_000:
                    done.set()
            writer.close()

        server = await asyncio.start_server(sink, "127.0.0.1", 0)
        settings = TcpSettings(stall=True)
        proxy = TcpImpairmentProxy(server.sockets[0].getsockname(), settings)
        await proxy.start()
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
            writer.write(b"x" * 20_000)
            await writer.drain()
            with pytest.raises(TimeoutError):  # stalled: nothing gets through
                await asyncio.wait_for(done.wait(), 0.5)
            assert len(received) == 0
            settings.stall, settings.bandwidth = False, 10_000.0  # 10 kB/s from now on
            loop = asyncio.get_running_loop()
            start = loop.time()
            await asyncio.wait_for(done.wait(), 10)
            assert loop.time() - start >= 1.5, "20 kB at 10 kB/s takes about two seconds"
            assert proxy.counters["bytes_up"] == 20_000
            writer.close()
        finally:
            await proxy.stop()
            server.close()
    run(main())


def test_every_delayed_datagram_is_counted():
    imp = UdpImpairer(UdpSettings(delay=0.01), seed=1)
    for i in range(100):
        imp.decide(float(i))
    assert imp.counters.delayed == 100
    plain = UdpImpairer(UdpSettings(), seed=1)
    plain.decide(0.0)
    assert plain.counters.delayed == 0
