"""Each student's own trace exercises (python -m course traces): for every capture made per
student (lab 04's telemetry loss and station restart, lab 02's TCP retransmissions), two
students' captures give different answers, each student's checks pass against their own capture
and fail with someone else's answers; the generated TCP captures are consistent TCP (tshark and
the course's dissector read them); an instructor regenerates the same bytes, and without a
student id the labs read the course's recordings as before."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from scapy.all import IP, TCP, rdpcap

from course.__main__ import main
from course.capture_analysis import longest_gap, tcp_retransmissions, telemetry_gaps
from course.constants import RECORDED_ALARM_PORT, RECORDED_HTTP_PORT, RECORDINGS
from course.tcp_evidence import head_of_line, restart_landmarks, segment_table, station_resend
from course.traces import PER_STUDENT, student_seed, student_traces, write_traces
from course.websocket import http_head, iter_frames, tcp_streams
from course.wireshark import tshark_fields
from tests.labcells import run_cell
from tests.requirements import require_tshark
from tests.tshark_alarms import alarm_disagreements, codec_alarm_frames

STUDENTS = ("s2041337", "s2045512")


@pytest.fixture
def traces_env(tmp_path, monkeypatch):
    monkeypatch.setenv("VITALSIM_TRACES", str(tmp_path))
    monkeypatch.delenv("VITALSIM_STUDENT", raising=False)
    return tmp_path


def lab04_exercise1(monkeypatch, student: str | None, answers=None) -> dict:
    """Lab 04's own cells, as a learner's kernel runs them: the imports, the cell that reads the
    capture (whose it is comes from VITALSIM_STUDENT), the instructor's solution (or functions
    that give ``answers``), and the check cell. The namespace afterwards."""
    if student is None:
        monkeypatch.delenv("VITALSIM_STUDENT", raising=False)
    else:
        monkeypatch.setenv("VITALSIM_STUDENT", student)
    ns: dict = {}
    run_cell("04", "from course import Checks", ns)
    run_cell("04", "traces = student_traces()", ns)
    run_cell("04", "def first_after(", ns)
    if answers is not None:  # someone else's answers, handed in as they are
        ns["lost"] = lambda packets, device: answers["lost"][device]
        ns["first_after"] = lambda packets, device, seq: answers["first_after"]
    run_cell("04", 'checks = Checks("Exercise 1: what UDP lost")', ns)
    return ns


def answers_of(ns: dict) -> dict:
    lossy = ns["lossy"]
    return {"lost": {d: ns["lost"](lossy, d) for d in (1001, 1002, 1003)},
            "first_after": ns["first_after"](lossy, ns["GAP_DEVICE"], ns["GAP_FIRST"] - 1)}


def test_two_students_answers_differ_and_each_passes_against_their_own(traces_env, monkeypatch):
    main(["traces", *(arg for s in STUDENTS for arg in ("--student", s))])
    runs = {s: lab04_exercise1(monkeypatch, s) for s in STUDENTS}
    for student, ns in runs.items():
        assert ns["traces"].student == student
        assert ns["traces"].path("telemetry-loss") == traces_env / student / "telemetry-loss.pcap"
        assert ns["checks"].passed, f"{student}: {ns['checks'].status}"
    first, second = (answers_of(runs[s]) for s in STUDENTS)
    assert first != second
    assert first["lost"] != second["lost"] and telemetry_gaps(runs[STUDENTS[0]]["lossy"]) != \
        telemetry_gaps(runs[STUDENTS[1]]["lossy"])
    recorded = answers_of(lab04_exercise1(monkeypatch, None))
    assert recorded not in (first, second), "the recording's answers are nobody's"
    # one student's answers, handed in by the other, fail the other's checks
    copied = lab04_exercise1(monkeypatch, STUDENTS[1], answers=first)
    assert not copied["checks"].passed


def test_the_tshark_check_passes_against_each_students_capture(traces_env, monkeypatch):
    require_tshark()
    for student in STUDENTS:
        ns = lab04_exercise1(monkeypatch, student)
        run_cell("04", 'loss_file = traces.path("telemetry-loss")', ns)
        run_cell("04", 'checks = Checks("tshark and scapy read the same capture")', ns)
        assert ns["checks"].passed, f"{student}: {ns['checks'].status}"


def test_an_instructor_regenerates_the_same_bytes(tmp_path):
    first = write_traces("s2041337", tmp_path / "student")
    again = write_traces("s2041337", tmp_path / "instructor")
    for name in PER_STUDENT:
        assert (first / f"{name}.pcap").read_bytes() == (again / f"{name}.pcap").read_bytes()
    assert (first / "traces.json").read_text() == (again / "traces.json").read_text()


def test_each_students_capture_is_the_recordings_exercise(traces_env):
    """The same ward as the recording: three devices, 40-odd numerics each, a fifth lost."""
    for student in STUDENTS:
        packets = student_traces(student).read("telemetry-loss")
        gaps = telemetry_gaps(packets)
        assert set(gaps) == {1001, 1002, 1003}
        sent = 3 * 41
        assert 0.1 < 1 - len(packets) / sent < 0.35, len(packets)
        device, first, last = longest_gap(packets)
        assert set(range(first, last + 1)) <= set(gaps[device])


def test_without_a_student_the_labs_read_the_recordings(traces_env):
    traces = student_traces()
    assert traces.student is None and "no student id" in traces.note
    assert traces.path("telemetry-loss") == RECORDINGS / "telemetry-loss.pcap"
    assert traces.path("alarm-retransmissions") == RECORDINGS / "alarm-retransmissions.pcap"
    assert traces.path("alarm-restart") == RECORDINGS / "alarm-restart.pcap"
    assert longest_gap(traces.read("telemetry-loss")) == \
        longest_gap(rdpcap(str(RECORDINGS / "telemetry-loss.pcap")))
    assert not any(traces_env.iterdir()), "nothing is generated without a student"


@pytest.mark.parametrize("bad", ["", "../etc", ".hidden", "a/b", "x" * 65, "name with space"])
def test_a_student_id_that_is_no_folder_name_is_refused(bad, capsys):
    with pytest.raises(ValueError, match="student id"):
        student_seed(bad)
    with pytest.raises(SystemExit):
        main(["traces", "--student", bad, "--out", "/nonexistent"])
    assert "student id" in capsys.readouterr().err


def test_grading_runs_each_student_in_their_own_traces(tmp_path, monkeypatch):
    """python -m course grade gives each student's kernel VITALSIM_STUDENT (their folder's name)
    and the traces folder; a folder name that is no student id reads the recordings."""
    from course.grading import student_environment

    monkeypatch.setenv("VITALSIM_STUDENT", "someone-else")
    env = student_environment("s2041337", tmp_path)
    assert env["VITALSIM_STUDENT"] == "s2041337"
    assert env["VITALSIM_TRACES"] == str(tmp_path.resolve())
    assert env["PATH"] == __import__("os").environ["PATH"]
    assert "VITALSIM_STUDENT" not in student_environment("no such id", tmp_path)


# -- lab 02: the alarm channel under loss -----------------------------------------------------


def lab02_trace(monkeypatch, student: str | None, answer=None) -> dict:
    """Lab 02's section 3 as a kernel without root runs it: the trace (whose comes from
    VITALSIM_STUDENT) is also "your capture"; then the cells that read it, the instructor's
    solution of Exercise 3 (or one that hands in ``answer``) and its check. The namespace."""
    if student is None:
        monkeypatch.delenv("VITALSIM_STUDENT", raising=False)
    else:
        monkeypatch.setenv("VITALSIM_STUDENT", student)
    from collections import Counter

    from course import Checks, not_done_yet
    from course.formatting import table

    traces = student_traces()
    trace = traces.read("alarm-retransmissions")
    ns: dict = {"Checks": Checks, "not_done_yet": not_done_yet, "table": table, "IP": IP,
                "TCP": TCP, "Counter": Counter, "traces": traces, "trace": trace,
                "packets": trace, "capture": SimpleNamespace(live=False)}
    run_cell("02", "held = head_of_line(trace)", ns)
    run_cell("02", "def find_retransmissions(", ns)
    if answer is not None:
        ns["find_retransmissions"] = lambda packets: answer
    run_cell("02", 'checks = Checks("Exercise 3: TCP retransmissions")', ns)
    run_cell("02", "resent = station_resend(trace)", ns)
    return ns


def lab02_answers(ns: dict) -> dict:
    return {"retransmissions": ns["find_retransmissions"](ns["trace"]),
            "held back": (ns["held"].lost, ns["held"].behind, ns["held"].jump),
            "station resent": ns["resent"].packets}


def test_lab02_two_students_traces_differ_and_each_passes_against_their_own(traces_env,
                                                                          monkeypatch):
    runs = {s: lab02_trace(monkeypatch, s) for s in STUDENTS}
    for student, ns in runs.items():
        assert ns["traces"].path("alarm-retransmissions") == \
            traces_env / student / "alarm-retransmissions.pcap"
        assert ns["checks"].passed, f"{student}: {ns['checks'].status}"
    first, second = (lab02_answers(runs[s]) for s in STUDENTS)
    for question in first:
        assert first[question] != second[question], question
    recorded = lab02_answers(lab02_trace(monkeypatch, None))
    assert recorded["retransmissions"] not in (first["retransmissions"],
                                               second["retransmissions"])
    copied = lab02_trace(monkeypatch, STUDENTS[1], answer=first["retransmissions"])
    assert not copied["checks"].passed
    assert "wrong because" in copied["checks"].report()


def test_lab02_questions_cite_what_the_trace_shows(traces_env, monkeypatch, capsys):
    """The packets each printed question and the head-of-line story cite say what the text says
    of them, in the recording and in each student's trace."""
    for student in (None, *STUDENTS):
        ns = lab02_trace(monkeypatch, student)
        printed = capsys.readouterr().out
        seg, held, resent = ns["segments"], ns["held"], ns["resent"]
        # the station re-sent data the bedside had: its ACKs of it were lost on the way in
        assert all(seg.loc[n, "from"] == "station" and seg.loc[n, "seq"] == resent.seq
                   for n in resent.packets)
        assert resent.lost_acks and all(seg.loc[n, "from"] == "bedside" for n in resent.lost_acks)
        assert f"1. Packet {resent.packets[1]} is the station sending" in printed
        # head-of-line: the lost segment was sent again after the next one had arrived,
        # and the station's ACK went from the hole to past both in one step
        assert held.lost[0] < held.behind < held.lost[-1] < held.jump
        assert seg.loc[held.behind, "seq"] == held.seq + held.length
        acks = seg[(seg["from"] == "station") & (seg.port == held.port)
                   & (seg.index > held.behind) & (seg.index <= held.jump)].ack
        assert set(acks.iloc[:-1]) <= {held.seq} and acks.iloc[-1] >= \
            held.seq + held.length + held.behind_length
        assert f"* {held.behind}: the next alarm" in printed
        assert "2. `" in printed and f"at packet {held.behind}" in printed
        most = max(tcp_retransmissions(ns["trace"]), key=lambda r: r.times_sent)
        assert f"{most.times_sent} times" in printed


# -- lab 04, section 2: the station restart ----------------------------------------------------


def lab04_exercise2(monkeypatch, student: str | None, answer=None) -> dict:
    """Lab 04's section 2 cells, from reading the capture to Exercise 2's check, with the
    instructor's solution or one that hands in ``answer``. The namespace."""
    ns = lab04_exercise1(monkeypatch, student)
    run_cell("04", 'restart = traces.read("alarm-restart")', ns)
    run_cell("04", "marks = restart_landmarks(restart)", ns)
    run_cell("04", "FIRST_ALARM =", ns)
    run_cell("04", "def after_reconnect(", ns)
    if answer is not None:
        ns["after_reconnect"] = lambda packets, port: answer
    run_cell("04", 'checks = Checks("Exercise 2: the alarms that waited")', ns)
    run_cell("04", "second = restart[marks.hello][AlarmFrame:2]", ns)
    return ns


def test_lab04_restart_two_students_differ_and_each_passes_against_their_own(traces_env,
                                                                           monkeypatch):
    runs = {s: lab04_exercise2(monkeypatch, s) for s in STUDENTS}
    answers = {}
    for student, ns in runs.items():
        assert ns["traces"].path("alarm-restart") == traces_env / student / "alarm-restart.pcap"
        assert ns["checks"].passed, f"{student}: {ns['checks'].status}"
        answers[student] = ns["after_reconnect"](ns["restart"], RECORDED_ALARM_PORT)
    first, second = answers.values()
    assert first != second and {a for _, a in first}.isdisjoint({a for _, a in second})
    recorded = lab04_exercise2(monkeypatch, None)
    assert recorded["checks"].passed
    assert recorded["after_reconnect"](recorded["restart"], RECORDED_ALARM_PORT) not in \
        list(answers.values())
    copied = lab04_exercise2(monkeypatch, STUDENTS[1], answer=first)
    assert not copied["checks"].passed


def test_lab04_restart_text_cites_what_the_capture_shows(traces_env, monkeypatch, capsys):
    for student in (None, *STUDENTS):
        ns = lab04_exercise2(monkeypatch, student)
        printed = capsys.readouterr().out
        restart, marks = ns["restart"], ns["marks"]
        flags = [str(p[TCP].flags) for p in restart]
        assert "F" in flags[marks.closing[0]] and restart[marks.closing[0]][TCP].sport == \
            RECORDED_ALARM_PORT, "the station's FIN first"
        for syn, _ in marks.refused:
            assert flags[syn] == "S" and flags[syn + 1] == "RA"
        waits = [wait for _, wait in marks.refused]
        doubling = zip(waits, waits[1:], strict=False)
        assert all(later > earlier * 1.5 for earlier, later in doubling), \
            f"the back-off doubles: {waits}"
        assert flags[marks.reconnect] == "S" and restart[marks.reconnect][TCP].sport == \
            marks.new_port != marks.first_port
        frames = ns["frames"]
        at_hello = frames[frames.packet == marks.hello]
        assert list(at_hello.frame) == ["HELLO"] + ["ALARM"] * len(marks.waiting)
        acked = set(frames[(frames.packet == marks.acked) & (frames.frame == "ACK")].alarm_id)
        assert set(marks.waiting) <= acked
        assert f"packet {marks.hello}: HELLO and {len(marks.waiting)} alarms" in printed
        assert ns["second"].message()["alarm_id"] == marks.waiting[0]
        assert ns["frame"].message()["alarm_id"] is not None


# -- the generated TCP captures: TCP as tshark reads it -------------------------------------


def _flow(pkt) -> tuple:
    return (pkt[IP].src, pkt[TCP].sport, pkt[IP].dst, pkt[TCP].dport)


@pytest.mark.parametrize("name", ["alarm-retransmissions", "alarm-restart"])
def test_generated_tcp_is_consistent(name, traces_env):
    """In each student's capture: every connection opens with SYN, SYN-ACK, ACK; each side's
    data is contiguous in sequence space (every byte sent before it is acknowledged, every seq
    either new at the end of what was sent or a resending); an ack never runs ahead of the
    bytes its peer sent."""
    for student in STUDENTS:
        packets = student_traces(student).read(name)
        sent_to: dict[tuple, int] = {}  # flow -> the next new seq
        for number, pkt in enumerate(packets):
            tcp, flow = pkt[TCP], _flow(pkt)
            back = (flow[2], flow[3], flow[0], flow[1])
            length = len(tcp.payload) + bool(tcp.flags.S) + bool(tcp.flags.F)
            if tcp.flags.R:
                continue
            if tcp.flags.S:
                sent_to[flow] = tcp.seq + 1
                if tcp.flags.A:
                    assert tcp.ack == sent_to[back], f"{name} {student} packet {number}"
                continue
            nxt = sent_to[flow]
            assert tcp.seq <= nxt, f"{name} {student} packet {number}: a hole in what it sent"
            sent_to[flow] = max(nxt, tcp.seq + length)
            assert tcp.ack <= sent_to[back], f"{name} {student} packet {number}: acks ahead"


def test_tshark_reads_the_alarm_frames_of_each_students_captures(traces_env):
    """The course's dissector, run by tshark over a student's generated captures, shows every
    alarm frame the codec decodes, in the same packets, with the same fields, and no other."""
    require_tshark()
    for student in STUDENTS:
        traces = student_traces(student)
        for name in ("alarm-retransmissions", "alarm-restart"):
            path = traces.path(name)
            assert alarm_disagreements(path) == [], (student, name)
            shown = tshark_fields(path, ["vitalsim.alarm.type"])
            frames = codec_alarm_frames(traces.read(name))
            assert sum(len(p.get("vitalsim.alarm.type", [])) for p in shown) == \
                sum(len(f) for f in frames.values()) > 5, (student, name)


def test_each_students_alarm_captures_show_what_the_labs_ask_about(traces_env):
    for student in STUDENTS:
        traces = student_traces(student)
        lossy = traces.read("alarm-retransmissions")
        assert head_of_line(lossy) is not None and station_resend(lossy) is not None
        seg = segment_table(lossy)
        assert set(seg["from"]) == {"bedside", "station"} and seg.port.nunique() == 2
        marks = restart_landmarks(traces.read("alarm-restart"))
        assert len(marks.refused) >= 2 and len(marks.waiting) >= 2 and marks.acked is not None


# -- lab 03: the WebSocket conversation -----------------------------------------------------


def lab03_capture(monkeypatch, student: str | None, *, accept=None, frames=None) -> dict:
    """Lab 03's cells that read websocket.pcap (whose comes from VITALSIM_STUDENT), without the
    live station: the handshake read, Exercise 1 and 2's solutions (or ones that hand in
    ``accept`` and the parsed ``frames`` in order) and their checks. The namespace."""
    if student is None:
        monkeypatch.delenv("VITALSIM_STUDENT", raising=False)
    else:
        monkeypatch.setenv("VITALSIM_STUDENT", student)
    ns: dict = {}
    run_cell("03", "import base64", ns)
    run_cell("03", 'packets = traces.read("websocket")', ns)
    run_cell("03", "def accept_for(", ns)
    run_cell("03", "def parse_frame(", ns)
    ns["live_key"] = ns["request"]["sec-websocket-key"]   # no root: the live handshake is this
    ns["live_accept"] = ns["response"]["sec-websocket-accept"]
    if accept is not None:
        ns["accept_for"] = lambda key: accept
    run_cell("03", 'checks = Checks("Exercise 1: the accept key")', ns)
    ns["exercise1"] = ns["checks"]
    if frames is not None:
        handed = iter(frames)
        solution = ns["parse_frame"]
        ns["parse_frame"] = lambda data: next(handed, None) if len(data) < 70000 \
            else solution(data)
    run_cell("03", 'checks = Checks("Exercise 2: parse a frame")', ns)
    ns["exercise2"] = ns["checks"]
    run_cell("03", 'print("station:", explain_header(', ns)
    run_cell("03", "rows = []", ns)
    return ns


def lab03_answers(ns: dict) -> dict:
    parsed = [ns["reference"](frame) for side in ("client", "server")
              for _, frame in iter_frames(ns["streams"][side].data,
                                          http_head(ns["streams"][side].data)[2])]
    return {"accept": ns["response"]["sec-websocket-accept"], "frames": parsed,
            "masks": [r["key"] for r in ns["rows"] if r["MASK"]]}


def test_lab03_two_students_captures_differ_and_each_passes_against_their_own(traces_env,
                                                                            monkeypatch):
    runs = {s: lab03_capture(monkeypatch, s) for s in STUDENTS}
    for student, ns in runs.items():
        assert ns["traces"].path("websocket") == traces_env / student / "websocket.pcap"
        for name in ("exercise1", "exercise2"):
            assert ns[name].passed, f"{student} {name}: {ns[name].status}"
    first, second = (lab03_answers(runs[s]) for s in STUDENTS)
    for what in first:
        assert first[what] != second[what], what
    recorded = lab03_capture(monkeypatch, None)
    assert recorded["exercise1"].passed and recorded["exercise2"].passed
    assert lab03_answers(recorded)["accept"] not in (first["accept"], second["accept"])
    copied = lab03_capture(monkeypatch, STUDENTS[1], accept=first["accept"],
                           frames=first["frames"])
    assert not copied["exercise1"].passed and not copied["exercise2"].passed


def test_lab03_prints_what_its_capture_holds(traces_env, monkeypatch, capsys):
    """The header bytes read aloud are each capture's own, and every capture holds what lab 03
    asks about: two masked client frames (subscribe, close), unmasked station frames with both
    header sizes, and a close frame from each side with status 1000."""
    for student in (None, *STUDENTS):
        ns = lab03_capture(monkeypatch, student)
        printed = capsys.readouterr().out
        rows = ns["rows"]
        client = [r for r in rows if r["from"] == "client"]
        station = [r for r in rows if r["from"] == "station"]
        assert [r["MASK"] for r in client] == [1, 1] and {r["MASK"] for r in station} == {0}
        assert {r["header"] for r in station if r["opcode"] == "0x1 text"} == {2, 4}
        assert [r["payload"] for r in rows if "close" in r["opcode"]] == \
            ["status 1000 'dashboard closed'", "status 1000 ''"]
        first_mask = next(r["key"] for r in client)
        assert f"the key `{first_mask.hex(' ')}`" in printed


def test_tshark_reads_each_students_websocket_conversation(traces_env):
    """Wireshark's own WebSocket dissector follows a student's generated conversation: the
    upgrade, then every frame the course's parser finds, with the same opcodes and masks."""
    require_tshark()
    for student in STUDENTS:
        traces = student_traces(student)
        streams = tcp_streams(traces.read("websocket"), RECORDED_HTTP_PORT)
        ours = sorted((streams[side].packet_at(offset) + 1, frame.opcode, int(frame.masked))
                      for side in ("client", "server")
                      for offset, frame in iter_frames(streams[side].data,
                                                       http_head(streams[side].data)[2]))
        shown = tshark_fields(traces.path("websocket"), ["websocket.opcode", "websocket.mask",
                                                         "http.response.code"])
        theirs = sorted((int(p["frame.number"][0]), int(p["websocket.opcode"][0]),
                         int(p["websocket.mask"][0] in ("1", "True")))
                        for p in shown if "websocket.opcode" in p)
        assert theirs == ours, student
        assert [p["http.response.code"] for p in shown if "http.response.code" in p] == [["101"]]
