"""A missing requirement skips on a laptop and fails under CI=true."""

import pytest
from _pytest.outcomes import Failed, Skipped

from tests import requirements


def test_missing_requirement_skips_on_a_laptop(monkeypatch):
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(Skipped, match="needs Chromium"):
        requirements.missing("this test needs Chromium")


def test_missing_requirement_fails_under_ci(monkeypatch):
    monkeypatch.setenv("CI", "true")
    with pytest.raises(Failed, match="CI=true and this test needs Chromium"):
        requirements.missing("this test needs Chromium")


def test_chromium_check_looks_at_the_debian_path(monkeypatch):
    monkeypatch.setenv("CI", "true")
    monkeypatch.setattr(requirements, "CHROMIUM", "/nonexistent/chromium")
    with pytest.raises(Failed, match="/nonexistent/chromium"):
        requirements.require_chromium()


def test_capture_check_names_libpcap_when_scapy_cannot_filter(monkeypatch):
    from vitalsim.impair import live

    monkeypatch.setenv("CI", "true")
    monkeypatch.setattr(live.os, "geteuid", lambda: 0)
    monkeypatch.setattr(live.ctypes.util, "find_library", lambda name: None)
    with pytest.raises(Failed, match="libpcap0.8"):
        requirements.require_capture()


def test_capture_check_names_root_first(monkeypatch):
    from vitalsim.impair import live

    monkeypatch.setattr(live.os, "geteuid", lambda: 1000)
    assert "needs root" in live.capture_unavailable_reason()
