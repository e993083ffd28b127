"""Kernel-level loss in network namespaces (root and nftables: CI, or sudo on Linux).

Under CI=true a missing requirement fails these tests; on a laptop they skip with the reason.
"""

import json
import sqlite3
import subprocess
import sys

import pytest

from course.capture_analysis import tcp_retransmissions
from course.netns_recorder import wait_for_line
from server.alarm_source import DEVICE_ONLY_SQL
from tests.requirements import require_capture, require_nft, require_root
from vitalsim.impair.netns import STATION_ADDR, Namespaces, NetnsUnavailable

pytestmark = pytest.mark.root


def station_stats(net: Namespaces) -> dict:
    code = ("import json, urllib.request; print(urllib.request.urlopen("
            f"'http://{STATION_ADDR}:8080/api/stats', timeout=10).read().decode())")
    done = net.run("station", [sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    out, _ = done.communicate(timeout=30)
    return json.loads(out)


def test_under_20_percent_kernel_loss_every_alarm_arrives_once_and_tcp_retransmits(tmp_path):
    require_root()
    require_nft()
    require_capture()
    journal, pcap = tmp_path / "alarms.sqlite3", tmp_path / "alarm-channel.pcap"
    with Namespaces(loss=0.2) as net:
        station = net.run("station", [
            sys.executable, "-m", "server", "--beds", "0", "--devices", "3", "--host", STATION_ADDR,
            "--http-port", "8080", "--udp-port", "5005", "--tcp-port", "5006",
            "--journal", str(journal),
            "--no-auth"],  # this test reads /api/stats with a plain GET; it is about loss
            stdout=subprocess.PIPE, text=True)
        wait_for_line(station, "dashboard:", 30)
        sniffer = net.run("station", [
            sys.executable, "-m", "vitalsim.impair.sniff", "--iface", net.veth["station"],
            "--out", str(pcap), "--seconds", "120", "--filter", "tcp port 5006"],
            stdout=subprocess.PIPE, text=True)
        wait_for_line(sniffer, "sniffing", 30)
        ward = net.run("bedside", [
            sys.executable, "-m", "vitalsim.devices", "--host", STATION_ADDR,
            "--udp-port", "5005", "--tcp-port", "5006", "--beds", "3",
            "--scenario", "stable_adult", "--speed", "10", "--seconds", "12", "--no-waves",
            "--alarm-storm", "--drain", "60"], stdout=subprocess.PIPE, text=True)
        out, _ = ward.communicate(timeout=120)
        summary = json.loads(out.strip().splitlines()[-1])
        stats = station_stats(net)
        sniffer.terminate()
        sniffer.wait(timeout=60)
    db = sqlite3.connect(journal)
    journaled = db.execute(
        f"SELECT COUNT(*) FROM alarm_events WHERE {DEVICE_ONLY_SQL}").fetchone()[0]
    retransmissions = tcp_retransmissions(pcap)
    losses = [bed["loss_ratio"] for bed in stats["beds"].values()]
    lost = sum(bed["lost"] for bed in stats["beds"].values())
    expected = sum(bed["expected"] for bed in stats["beds"].values())
    print(f"\nnetns 20% loss: alarms raised {summary['alarms_raised']}, journaled {journaled}, "
          f"TCP segments retransmitted {len(retransmissions)}, UDP loss measured "
          f"{lost}/{expected} = {lost / expected:.3f} (per bed {[round(x, 3) for x in losses]})")
    assert summary["alarms_raised"] >= 10, summary
    assert summary["unacknowledged"] == 0, summary
    assert journaled == summary["alarms_raised"], "every alarm exactly once"
    assert retransmissions, "20% loss must make TCP retransmit data segments"
    # nftables' numgen is not seeded: about 360 datagrams give a standard deviation of about
    # 0.02 around 0.2, so this window is four of them wide
    assert expected > 300 and 0.12 < lost / expected < 0.28, (lost, expected)


def test_without_root_the_helper_says_so_and_points_to_the_recordings(monkeypatch):
    monkeypatch.setattr("os.geteuid", lambda: 1000)
    with pytest.raises(NetnsUnavailable, match="need root.*recorded captures"):
        Namespaces(loss=0.1).__enter__()
