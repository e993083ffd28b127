"""Lab 08 (A hospital of wards): its checks refuse wrong answers, and without mosquitto the whole
lab runs from the recorded results (course/recordings/hospital-lab.json), saying so.

The live lab runs under nbval with a real mosquitto (labs/08_*.ipynb in make test).
"""

from __future__ import annotations

import logging
from pathlib import Path

import nbformat
import pandas as pd
from nbclient import NotebookClient

from course import Checks, not_done_yet
from course.constants import RECORDINGS
from course.hospital_lab import ResetNotes, recorded
from course.mqtt_capture import HANDSHAKES, handshake, mqtt_messages
from server.hospital_state import AlarmDedup
from tests.labcells import run_cell

ROOT = Path(__file__).resolve().parent.parent
INSTRUCTOR = ROOT / "labs" / "instructor" / "08_a_hospital_of_wards.ipynb"


def exercise_2(exactly_once) -> Checks:
    alarms = recorded()["alarms"]
    ns = {"Checks": Checks, "not_done_yet": not_done_yet, "AlarmDedup": AlarmDedup, "display": repr,
          "alarms": alarms, "deliveries": alarms["deliveries"], "exactly_once": exactly_once}
    return run_cell("08", 'Checks("Exercise 2', ns)["checks"]


def failed(checks: Checks) -> list[str]:
    return [r.name for r in checks.results if r.status != "pass"]


def test_the_recording_has_duplicates_for_exercise_2():
    alarms = recorded()["alarms"]
    ids = [(d["ward"], d["alarm_id"]) for d in alarms["deliveries"]]
    assert len(ids) > len(set(ids)), "the recorded stream should show QoS 1 repeating an alarm"


def test_exercise_2_passes_the_solution_and_refuses_wrong_dedups():
    def first_by_key(key):
        def dedup(deliveries):
            seen, out = set(), []
            for d in deliveries:
                if key(d) not in seen:
                    seen.add(key(d))
                    out.append(d)
            return out
        return dedup

    assert failed(exercise_2(first_by_key(lambda d: (d["ward"], d["alarm_id"])))) == []
    # keyed by the alarm id alone: two wards' device 1001 would be taken for one monitor
    assert failed(exercise_2(first_by_key(lambda d: d["alarm_id"]))) == [
        "the same alarm id from two wards"]
    # no dedup at all: QoS 1's repeats go through
    assert "deliveries kept from the live stream" in failed(exercise_2(lambda ds: ds))
    # the last copy instead of the first: same ids, wrong order and wrong deliveries
    assert failed(exercise_2(lambda ds: list({(d["ward"], d["alarm_id"]): d
                                              for d in ds}.values())))


def test_exercise_3_refuses_a_handshake_that_does_not_stop_at_its_end():
    messages = mqtt_messages(RECORDINGS / "mqtt-qos.pcap")

    def every_later_packet_with_the_id(messages, frame):
        publish = messages[messages["frame"] == frame].iloc[0]
        if pd.isna(publish["msgid"]):
            return []
        later = messages[(messages["frame"] > frame) & (messages["msgid"] == publish["msgid"])
                         & (messages["client_port"] == publish["client_port"])]
        return list(later["type"])

    ns = {"Checks": Checks, "not_done_yet": not_done_yet, "messages": messages, "display": repr,
          "handshake": handshake, "HANDSHAKES": HANDSHAKES,
          "answers": every_later_packet_with_the_id}
    checks = run_cell("08", 'Checks("Exercise 3', ns)["checks"]
    # the subscriber's UNSUBSCRIBE reuses packet id 2 after the QoS 2 handshake ended
    assert failed(checks) == ["answers to frame 31 (QoS 2, broker to subscriber)"]


def test_without_mosquitto_the_lab_runs_from_the_recording():
    """The instructor notebook (every check asserted) with mosquitto hidden from it."""
    nb = nbformat.read(INSTRUCTOR, as_version=4)
    hide = nbformat.v4.new_code_cell("import course.mqtt_broker\n"
                                     "course.mqtt_broker.mosquitto_path = lambda: None")
    nb.cells.insert(0, hide)
    NotebookClient(nb, timeout=60, kernel_name="python3",
                   resources={"metadata": {"path": str(INSTRUCTOR.parent)}}).execute()
    text = "\n".join(o.get("text", "") for c in nb.cells if c.cell_type == "code"
                     for o in c.get("outputs", []))
    assert "Not live: the mosquitto broker is not installed" in text
    assert "course/recordings/" in text and "(recorded;" in text
    assert "from the recording" in text



def test_the_resets_the_lab_makes_are_counted_not_printed(caplog):
    notes = ResetNotes()
    mqtt = logging.getLogger("mqtt")
    with caplog.at_level(logging.WARNING, logger="mqtt"), notes.kept_from(mqtt):
        mqtt.error("failed to receive on socket: %s", "[Errno 104] Connection reset by peer")
        mqtt.error("something else went wrong")
    mqtt.error("failed to receive on socket: after the lab's resets")
    assert notes.count == 1
    assert [r.getMessage() for r in caplog.records] == [
        "something else went wrong", "failed to receive on socket: after the lab's resets"]


def test_the_instructors_check_cells_show_their_report_before_asserting():
    nb = nbformat.read(INSTRUCTOR, as_version=4)
    checks = [c.source for c in nb.cells if "check" in c.metadata.get("tags", [])]
    assert len(checks) == 3
    for source in checks:
        last = source.strip().splitlines()[-2:]
        assert last[0].startswith("display(checks)") and last[1].startswith("assert checks.passed")
