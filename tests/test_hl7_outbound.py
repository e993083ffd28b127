"""The station's HL7 outbound interface against the course's interface engine, on loopback.

Every alarm event reaches the engine at least once, across a reset of the engine's connection
and a restart of the station on the same journal; a control id is never given to two messages,
and a message answered AA is never sent again. AE, AR and silence make the station send the
same message again, with the same control id."""

from collections import Counter

import pytest

from course.hl7_receiver import Hl7Receiver
from server import System
from server import hl7_messages as hm
from server.config import StationConfig
from server.hl7_outbound import format_target, parse_target
from server.system import SystemConfig
from tests.helpers import run, wait_until
from vitalsim.alarms import FLAPPING_HR
from vitalsim.devices import WardConfig


def ward_system(receiver: Hl7Receiver, journal, *, beds=3, interval=60.0, ack_timeout=2.0,
                storm=True) -> System:
    return System(SystemConfig(
        StationConfig(http_port=0, udp_port=0, tcp_port=0, journal_path=journal,
                      hl7_target=receiver.target, hl7_interval=interval,
                      hl7_ack_timeout=ack_timeout, hl7_retry=0.1),
        WardConfig(beds=beds, scenario="stable_adult", seed=7, speed=5.0, waves=False,
                   limits=FLAPPING_HR if storm else None)))


def r40_count(receiver: Hl7Receiver) -> int:
    return len(receiver.control_ids("ORU^R40"))


def test_every_alarm_arrives_across_an_engine_reset_and_a_station_restart(tmp_path):
    journal = tmp_path / "journal.sqlite"

    async def main():
        async with Hl7Receiver() as engine:
            first = await ward_system(engine, journal).start()
            try:
                await wait_until(lambda: r40_count(engine) >= 4, timeout=30, what="4 ORU^R40")
                # the engine crashes mid-conversation: every open connection gets an RST
                assert engine.reset() >= 1
                await wait_until(lambda: engine.connections >= 2, timeout=15,
                                 what="the station reconnecting after the reset")
                n = r40_count(engine)
                await wait_until(lambda: r40_count(engine) >= n + 3, timeout=30,
                                 what="alarms after the reset")
                # the engine hangs: what the station sends now is received but never answered,
                # and the station is stopped with it still in its outbox
                engine.stall()
                n = r40_count(engine)
                await wait_until(lambda: r40_count(engine) > n, timeout=30,
                                 what="an unanswered ORU^R40")
                unanswered = engine.received[-1].control_id
            finally:
                await first.stop()
            engine.resume()
            second = await ward_system(engine, journal).start()
            try:
                await wait_until(lambda: unanswered in
                                 [r.control_id for r in engine.received if r.answer == "AA"],
                                 timeout=30, what=f"{unanswered} sent again after the restart")
                await second.ward.stop()
                second.ward = None
                station = second.station
                outbox = station.hl7.outbox

                def settled():
                    # synchronous from here to the return: nothing is journaled in between
                    station.hl7.sync()
                    rows = [r for r in outbox.rows() if r["kind"] == "ORU^R40"]
                    acks = sum(a["action"] == "acknowledge" for a in station.journal.actions())
                    done = all(r["status"] == "acked" for r in rows)
                    return done and (rows, station.journal.count() + acks)

                rows, journaled = await wait_until(settled, timeout=30,
                                                   what="every alarm event answered AA")
            finally:
                await second.stop()

            # one ORU^R40 per journaled event, each answered AA
            assert len(rows) == journaled
            assert len({r["source"] for r in rows}) == len(rows)
            assert all(r["status"] == "acked" and r["ack_code"] == "AA" for r in rows)
            # ...and each reached the engine, under the control id the outbox gave it
            received = [r for r in engine.received if r.type == "ORU^R40"]
            assert {r["control_id"] for r in rows} == {r.control_id for r in received}
            # a control id is never given to two different messages
            texts: dict[str, set[str]] = {}
            for r in received:
                texts.setdefault(r.control_id, set()).add(r.text)
            assert all(len(t) == 1 for t in texts.values()), \
                [c for c, t in texts.items() if len(t) > 1]
            # a message answered AA is never sent again
            for control_id in texts:
                answers = [r.answer for r in received if r.control_id == control_id]
                assert "AA" in answers and answers.index("AA") == len(answers) - 1, \
                    (control_id, answers)
            # and the unanswered one was sent again after the restart, as a re-send
            copies = [r for r in received if r.control_id == unanswered]
            assert len(copies) >= 2 and all(r.duplicate for r in copies[1:])
            assert [r.answer for r in copies][0] == ""

    run(main())


def test_an_ae_answer_makes_the_station_send_the_same_message_again(tmp_path):
    async def main():
        async with Hl7Receiver() as engine:
            engine.answer_next("AE", 2, "database unavailable")
            async with ward_system(engine, tmp_path / "j.sqlite"):
                await wait_until(lambda: "AA" in [r.answer for r in engine.received],
                                 timeout=30, what="an AA after two AE")
            first = engine.received[0]
            copies = [r for r in engine.received if r.control_id == first.control_id]
            assert [r.answer for r in copies] == ["AE", "AE", "AA"]
            assert len({r.text for r in copies}) == 1
            assert [r.duplicate for r in copies] == [False, True, True]

    run(main())


def test_an_ar_answer_is_retried_and_counted(tmp_path):
    async def main():
        async with Hl7Receiver() as engine:
            engine.answer_next("AR", 1, "unknown patient")
            async with ward_system(engine, tmp_path / "j.sqlite") as system:
                await wait_until(lambda: "AA" in [r.answer for r in engine.received],
                                 timeout=30, what="an AA after an AR")
                stats = system.station.hl7.stats()
                assert stats["answered_AR"] == 1
                assert stats["problems"]["answered_AR"] == 1
                assert "unknown patient" in system.station.hl7.problems.last_error["answered_AR"]

    run(main())


def test_a_message_rejected_max_rejects_times_is_set_aside_and_the_rest_flow(tmp_path):
    async def main():
        async with Hl7Receiver() as engine:
            engine.answer_next("AR", 3, "unsupported message")
            async with ward_system(engine, tmp_path / "j.sqlite") as system:
                await wait_until(lambda: "AA" in [r.answer for r in engine.received],
                                 timeout=30, what="the next message answered AA")
                outbox = system.station.hl7.outbox
                first = engine.received[0].control_id
                status = {r["control_id"]: r["status"] for r in outbox.rows()}
                assert status[first] == "rejected"
                assert [r.answer for r in engine.received if r.control_id == first] == \
                    ["AR", "AR", "AR"]
                assert next(r for r in engine.received if r.answer == "AA").control_id != first
                assert outbox.counts()["rejected"] == 1
                assert system.station.hl7.problems.counts["rejected"] == 1

    run(main())


def test_no_answer_within_the_timeout_sends_it_again_on_a_new_connection(tmp_path):
    async def main():
        async with Hl7Receiver() as engine:
            engine.stall()
            async with ward_system(engine, tmp_path / "j.sqlite", ack_timeout=0.3) as system:
                await wait_until(lambda: len(engine.received) >= 2, timeout=30,
                                 what="a message sent twice")
                assert engine.received[1].control_id == engine.received[0].control_id
                assert engine.received[1].duplicate
                assert system.station.hl7.stats()["ack_timeouts"] >= 1
                assert engine.connections >= 2  # the station gave up on that connection
                engine.resume()
                await wait_until(lambda: "AA" in [r.answer for r in engine.received],
                                 timeout=30, what="an answer once the engine is back")

    run(main())


def test_vitals_arrive_per_bed_as_the_station_has_them(tmp_path):
    async def main():
        async with Hl7Receiver() as engine:
            async with ward_system(engine, tmp_path / "j.sqlite", interval=0.5,
                                   storm=False) as system:
                await system.wait_ready()
                await wait_until(lambda: {r.bed for r in engine.received
                                          if r.type == "ORU^R01"} >= {1, 2, 3},
                                 timeout=30, what="an ORU^R01 for each bed")
                latest = {b: s.latest for b, s in system.station.beds.beds.items()}
        text = next(t for t in engine.messages("ORU^R01") if "PV1||I|WARD^^2" in t)
        msg = hm.parse(text)
        values = {o["name"]: float(o["value"]) for o in hm.observations(msg)}
        assert {"MDC_ECG_HEART_RATE", "MDC_PULS_OXIM_SAT_O2", "MDC_RESP_RATE",
                "MDC_TEMP"} <= values.keys()
        assert all(o["device"] == "1002" for o in hm.observations(msg))
        assert 30 < values["MDC_ECG_HEART_RATE"] < 200
        assert latest[2] is not None and latest[2].device_id == 1002
        assert Counter(r.answer for r in engine.received if r.type == "ORU^R01") \
            == Counter({"AA": len(engine.messages("ORU^R01"))})

    run(main())


def test_a_quiet_bed_is_not_sent_again_as_if_new(tmp_path):
    async def main():
        async with Hl7Receiver() as engine:
            async with ward_system(engine, tmp_path / "j.sqlite", storm=False) as system:
                await system.wait_ready()
                await system.ward.stop()  # the monitors go quiet; their last readings stay
                system.ward = None
                hl7 = system.station.hl7
                hl7.send_vitals()
                await wait_until(lambda: len(engine.messages("ORU^R01")) >= 3, timeout=15,
                                 what="one ORU^R01 per bed")
                hl7.send_vitals()  # whatever came in since the first call
                made = len(hl7.outbox.rows())
                hl7.send_vitals()  # nothing can arrive between these two calls (no await)
                assert len(hl7.outbox.rows()) == made

    run(main())


@pytest.mark.parametrize("text", ["localhost", "127.0.0.1:", ":2575", "h:70000", "h:x"])
def test_a_bad_target_is_refused_with_the_flag_named(text):
    with pytest.raises(ValueError, match="--hl7"):
        parse_target(text)


def test_a_good_target_parses():
    assert parse_target("127.0.0.1:2575") == ("127.0.0.1", 2575)
    assert parse_target("[::1]:2575") == ("::1", 2575)
    assert format_target(parse_target("[::1]:2575")) == "[::1]:2575"


def test_an_ipv6_target_without_brackets_is_refused_saying_so():
    with pytest.raises(ValueError, match=r"--hl7 '::1:2575': an IPv6 address goes in brackets"):
        parse_target("::1:2575")


@pytest.mark.parametrize("argv, said", [
    (["--hl7", "h:1", "--hl7-interval", "inf"], "--hl7-interval must be a finite number"),
    (["--hl7", "h:1", "--hl7-interval", "nan"], "--hl7-interval must be a finite number"),
    (["--hl7", "h:1", "--hl7-interval", "0"], "--hl7-interval must be a finite number"),
    (["--hl7-interval", "5"], "--hl7-interval is the HL7 interface's: give --hl7"),
])
def test_a_bad_hl7_interval_is_refused_with_the_flag_named(argv, said, capsys):
    from server.__main__ import parse_args
    with pytest.raises(SystemExit):
        parse_args(argv)
    assert said in capsys.readouterr().err


def test_the_interval_defaults_with_hl7_and_a_finite_one_is_taken():
    from server.__main__ import parse_args
    assert parse_args(["--hl7", "[::1]:2575"]).hl7_interval == 60.0
    args = parse_args(["--hl7", "[::1]:2575", "--hl7-interval", "2.5"])
    assert (args.hl7, args.hl7_interval) == (("::1", 2575), 2.5)


@pytest.mark.parametrize("kwargs", [{"interval": float("inf")}, {"interval": float("nan")},
                                    {"ack_timeout": float("inf")}, {"retry": float("nan")}])
def test_the_interface_refuses_a_time_that_is_not_finite(kwargs):
    from server.hl7_outbound import Hl7Outbound
    from server.journal import AlarmJournal
    from vitalsim.clock import VirtualClock
    with pytest.raises(ValueError, match="finite"):
        Hl7Outbound(AlarmJournal(), VirtualClock(), ("h", 1), readings=list, **kwargs)


def test_a_problem_is_logged_as_to_the_receiver_not_from_it(caplog):
    from server.hl7_outbound import Hl7Outbound
    from server.journal import AlarmJournal
    from vitalsim.clock import VirtualClock
    hl7 = Hl7Outbound(AlarmJournal(), VirtualClock(), ("::1", 2575), readings=list)
    with caplog.at_level("WARNING", logger="server.hl7"):
        hl7._problem("connect", "cannot connect (refused); retrying")
    assert "HL7 outbound connect #1 (the first of its reason) to [::1]:2575: cannot connect" \
        in caplog.text
    assert hl7.stats()["target"] == "[::1]:2575"


def test_python_m_server_hl7_sends_to_the_engine_and_reports_in_api_stats():
    """What an instructor types: ``python -m server --hl7 HOST:PORT``. It says where it
    sends, the engine gets each bed's ORU^R01, and /api/stats shows the interface."""
    import asyncio
    import json
    import sys
    import urllib.request

    async def main():
        async with Hl7Receiver() as engine:
            proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "server", "--beds", "2", "--http-port", "0",
                "--udp-port", "0", "--tcp-port", "0", "--journal", ":memory:", "--no-auth",
                "--hl7", f"127.0.0.1:{engine.port}", "--hl7-interval", "0.5",
                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
            try:
                lines = [(await asyncio.wait_for(proc.stdout.readline(), 20)).decode()
                         for _ in range(4)]
                assert any(line.startswith(f"hl7: vitals (ORU^R01) every 0.5 s and alarms "
                                           f"(ORU^R40) to 127.0.0.1:{engine.port}")
                           for line in lines), lines
                base = next(line.split()[1] for line in lines if line.startswith("dashboard:"))
                await wait_until(lambda: {r.bed for r in engine.received
                                          if r.type == "ORU^R01"} >= {1, 2}, timeout=30,
                                 what="ORU^R01 from both beds")
                body = await asyncio.to_thread(
                    lambda: urllib.request.urlopen(base + "api/stats", timeout=10).read())
                hl7 = json.loads(body)["hl7"]
                assert hl7["target"] == f"127.0.0.1:{engine.port}" and hl7["connected"]
                assert hl7["answered_AA"] >= 2
            finally:
                proc.terminate()
                await asyncio.wait_for(proc.wait(), 15)

    run(main())


def ack(code: str, answered: str) -> str:
    return f"MSH|^~\\&|IE|H|VITALSIM_CS|WARD|20260101||ACK|IE-{answered[:20]}|P|2.6" \
           f"\rMSA|{code}|{answered}\r"


class HostileEngine:
    """An engine that answers each message with what ``answers(control id, rng)`` gives, the
    answers in one write; by default one ACK with a long random MSA-1 code (seeded)."""

    def __init__(self, answers=None) -> None:
        import random
        self.rng = random.Random(7)
        self.answers = answers or (lambda cid, rng: [ack("".join(
            rng.choices("ABCDEFGHIJKLMNOPQRSTUVWXYZ", k=100_000)), cid)])
        self.answered = 0
        self.server = None
        self.target = ("127.0.0.1", 0)

    async def __aenter__(self):
        import asyncio
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.target = ("127.0.0.1", self.server.sockets[0].getsockname()[1])
        return self

    async def __aexit__(self, *exc):
        self.server.close()
        await self.server.wait_closed()

    async def _serve(self, reader, writer):
        from vitalsim.protocol.mllp import MllpDeframer, frame
        deframer = MllpDeframer(1 << 20)
        try:
            while data := await reader.read(65536):
                for raw in deframer.feed(data):
                    cid = hm.control_id(hm.parse(raw))
                    writer.write(b"".join(frame(a.encode())
                                          for a in self.answers(cid, self.rng)))
                    self.answered += 1
                await writer.drain()
        except ConnectionError:
            pass
        finally:
            writer.close()


def test_an_answer_code_hl7_does_not_have_is_refused_under_one_reason_and_stats_stay_small(
        tmp_path):
    import json

    async def main():
        async with HostileEngine() as engine:
            async with ward_system(engine, tmp_path / "j.sqlite") as system:
                hl7 = system.station.hl7
                await wait_until(lambda: hl7.outbox.counts()["rejected"] >= 3, timeout=30,
                                 what="three messages set aside after bad answer codes")
                stats = hl7.stats()
                rows = [r for r in hl7.outbox.rows() if r["status"] == "rejected"]
        assert engine.answered >= 9
        # one fixed reason, counted per answer; no key carries what the engine wrote
        assert stats["bad_answer_code"] == stats["problems"]["bad_answer_code"] >= 9
        assert not any(k.startswith("answered_") for k in stats)
        assert all(len(k) < 40 for k in [*stats, *stats["problems"]])
        assert len(json.dumps(stats)) < 2000, len(json.dumps(stats))
        # each message went max_rejects (3) times, then was set aside: no endless loop
        assert len(rows) >= 3 and all(r["sends"] == 3 and len(r["ack_text"]) < 200 for r in rows)
        last = hl7.problems.last_error["bad_answer_code"]
        assert "not one of AA/AE/AR/CA/CE/CR" in last and len(last) < 300
        assert "(100000 characters)" in last

    run(main())


def test_two_outboxes_made_at_the_same_moment_give_different_control_ids(tmp_path):
    from server.hl7_outbound import Hl7Outbox
    from server.journal import AlarmJournal
    from vitalsim.clock import VirtualClock

    clock = VirtualClock(1_800_000_000.0)
    first = Hl7Outbox(AlarmJournal(tmp_path / "a.sqlite"), clock)
    second = Hl7Outbox(AlarmJournal(":memory:"), clock)
    assert first.identity != second.identity
    # the identity is the journal's: made again on the same file, the outbox keeps it
    assert Hl7Outbox(AlarmJournal(tmp_path / "a.sqlite"), clock).identity == first.identity


def test_two_stations_started_together_share_no_control_id(tmp_path):
    async def main():
        async with Hl7Receiver() as engine:
            async with ward_system(engine, tmp_path / "a.sqlite", interval=0.5, storm=False), \
                    ward_system(engine, tmp_path / "b.sqlite", interval=0.5, storm=False):
                await wait_until(lambda: len({r.text for r in engine.received
                                              if r.type == "ORU^R01"}) >= 12, timeout=30,
                                 what="ORU^R01 from both stations")
        texts: dict[str, set[str]] = {}
        for r in engine.received:
            texts.setdefault(r.control_id, set()).add(r.text)
        assert all(len(t) == 1 for t in texts.values()), \
            [c for c, t in texts.items() if len(t) > 1]
        assert not any(r.duplicate for r in engine.received)
        # both stations were heard: two outbox identities among the control ids
        assert len({c.split("-")[0] for c in texts}) == 2

    run(main())


def test_every_extra_answer_in_one_read_is_counted(tmp_path):
    async def main():
        # each message answered AA, then twice more (to an id never sent), in one write
        engine = HostileEngine(lambda cid, rng: [ack("AA", cid), ack("AA", "X-1"),
                                                 ack("AA", "X-2")])
        async with engine:
            async with ward_system(engine, tmp_path / "j.sqlite") as system:
                hl7 = system.station.hl7
                await wait_until(lambda: hl7.stats().get("answered_AA", 0) >= 3, timeout=30,
                                 what="three messages answered")
                stats = hl7.stats()
        assert stats["stale_answers"] == 2 * stats["answered_AA"]
        assert "answered 'X-2' while waiting for" in hl7.problems.last_error["stale_answer"]

    run(main())


def test_an_answer_to_another_control_id_is_named_not_called_no_answer(tmp_path):
    async def main():
        engine = HostileEngine(lambda cid, rng: [ack("AA", "W" * 5000)])
        async with engine:
            async with ward_system(engine, tmp_path / "j.sqlite", ack_timeout=0.3) as system:
                hl7 = system.station.hl7
                await wait_until(lambda: hl7.problems.counts["connection_lost"] >= 1,
                                 timeout=30, what="the wait for an answer given up")
                lost = hl7.problems.last_error["connection_lost"]
        assert "answered 'WWWW" in lost and "(5000 characters) while waiting for " in lost
        assert "no answer to" in lost and len(lost) < 400

    run(main())
