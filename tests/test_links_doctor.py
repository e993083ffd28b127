"""The dashboard link a lab shows, and the doctor's report of what an environment allows."""

from __future__ import annotations

from pathlib import Path

import pytest

from course.doctor import Finding, Report, check, effective_capabilities
from course.links import dashboard_link, hub_prefix

URL = "http://127.0.0.1:8123/"


def test_locally_the_link_is_the_stations_own_url():
    link = dashboard_link(URL, environ={})
    assert str(link) == URL and not link.via_hub
    assert f'href="{URL}"' in link._repr_html_() and "<iframe" not in link._repr_html_()


@pytest.mark.parametrize("prefix", ["/user/alice/", "/user/alice", "user/alice/"])
def test_under_a_hub_the_link_goes_through_its_proxy(prefix):
    link = dashboard_link(URL, environ={"JUPYTERHUB_SERVICE_PREFIX": prefix})
    assert link.href == "/user/alice/proxy/8123/" and link.via_hub


def test_binder_prefixes_and_a_stations_own_path_and_query_carry_over():
    env = {"JUPYTERHUB_SERVICE_PREFIX": "/binder/jupyter/user/org-repo-abc123/"}
    link = dashboard_link("http://127.0.0.1:9000/?session=xyz", environ=env)
    assert link.href == "/binder/jupyter/user/org-repo-abc123/proxy/9000/?session=xyz"


def test_the_embedded_view_is_an_iframe_of_the_same_link_and_text_is_escaped():
    link = dashboard_link(URL, embed=True, height=400,
                          environ={"JUPYTERHUB_SERVICE_PREFIX": '/user/a"b/'})
    html = link._repr_html_()
    assert '<iframe src="/user/a&quot;b/proxy/8123/"' in html and "height:400px" in html
    assert '"b/' not in html.replace("&quot;b/", "")


def test_an_empty_prefix_is_no_hub_and_a_url_without_a_port_is_refused():
    assert hub_prefix({"JUPYTERHUB_SERVICE_PREFIX": "  "}) is None
    with pytest.raises(ValueError, match="no port"):
        dashboard_link("http://example.org/", environ={"JUPYTERHUB_SERVICE_PREFIX": "/user/a/"})


def test_capabilities_are_read_from_proc_status(tmp_path: Path):
    status = tmp_path / "status"
    status.write_text("Name:\tpython\nCapEff:\t0000000000003000\n")
    bits = effective_capabilities(status)
    assert bits >> 12 & 1 and bits >> 13 & 1 and not bits >> 21 & 1  # NET_ADMIN, NET_RAW
    assert effective_capabilities(tmp_path / "missing") == 0


def test_the_report_names_every_requirement_and_a_plan_for_every_lab():
    report = check(environ={"JUPYTERHUB_SERVICE_PREFIX": "/user/alice/"})
    names = {f.name for f in report.findings}
    assert names >= {"root or CAP_NET_RAW", "CAP_NET_ADMIN", "nftables", "libpcap",
                     "live capture", "kernel loss", "Chromium", "hub prefix",
                     "jupyter-server-proxy", "free ports", "mosquitto"}
    assert report.get("hub prefix").available
    assert report.get("jupyter-server-proxy").available  # 4.6.0 from the lock
    assert set(report.lab_plans()) == {"00", "01", "02", "03", "04", "05", "06", "07", "08"}
    assert "through the hub's proxy" in report.lab_plans()["00"]
    assert "What each lab will do" in report.text()


def _report(**available: bool) -> Report:
    names = ["live capture", "kernel loss", "hub prefix", "jupyter-server-proxy", "free ports",
             "mosquitto"]
    return Report([Finding(n, available.get(n.replace(" ", "_").replace("-", "_"), True), "")
                   for n in names])


def test_without_root_the_plans_fall_back_to_the_recordings():
    plans = _report(live_capture=False, kernel_loss=False, hub_prefix=False).lab_plans()
    assert "course/recordings/alarm-retransmissions.pcap" in plans["02"]
    assert "course/recordings/websocket.pcap" in plans["03"]
    assert "course/recordings/spoofed-telemetry.pcap" in plans["04"]
    assert "station's own URL" in plans["00"]


def test_lab_04_says_whether_tshark_runs_and_whose_traces_it_reads(monkeypatch):
    report = check(environ={"VITALSIM_STUDENT": "s2041337"})
    assert report.get("student traces").available
    assert "VITALSIM_STUDENT=s2041337" in report.get("student traces").detail
    assert "the student's own capture" in report.lab_plans()["04"]
    assert not check(environ={}).get("student traces").available
    monkeypatch.setattr("course.doctor.shutil.which",
                        lambda name: None if name == "tshark" else f"/usr/bin/{name}")
    plans = check(environ={}).lab_plans()
    assert "its tshark section cannot run (apt-get install tshark)" in plans["04"]
    assert "own capture" not in plans["04"]
def test_without_mosquitto_lab_08_says_it_shows_the_recorded_results():
    assert "course/recordings/hospital-lab.json" in _report(mosquitto=False).lab_plans()["08"]
    assert "live on a real mosquitto" in _report().lab_plans()["08"]


def test_a_hub_without_the_proxy_is_called_out():
    plans = _report(jupyter_server_proxy=False).lab_plans()
    assert "will not open" in plans["01"]
    assert all("no free ports" in p for p in _report(free_ports=False).lab_plans().values())
