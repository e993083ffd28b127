"""Lab 05's helpers: the ward replayed on virtual time (alarms, onsets, NEWS2), and the recorder
that follows the live system's alarms from the patient to a dashboard, with what each protocol
lost on the way."""

import asyncio

import pandas as pd
import pytest

from course.replay import (
    breach_onset,
    early_warning,
    first_time,
    news2_frame,
    parameter_of,
    replay_bed,
    replay_ward,
    with_onsets,
)
from course.ward_recording import (
    DashboardRecorder,
    StalledDashboard,
    alarm_timeline,
    drain,
    history_frame,
    protocol_counters,
    undelivered_alarms,
    ws_url,
)
from server import System
from tests.helpers import run, wait_until
from vitalsim.alarms import Limit
from vitalsim.clock import VirtualClock
from vitalsim.devices import BedsideMonitor, DeviceLink
from vitalsim.physiology import news2

WARD = ["sepsis", "haemorrhage", "af_rvr"]


def test_the_replay_raises_the_same_alarms_as_the_bedside_monitor_itself():
    # the device, polled on virtual time in uneven steps, against the replay
    monitor = BedsideMonitor(1003, 3, "af_rvr", seed=1003, waves=False)
    events = []
    for sim_t in [0.4, 7.0, 19.5, 25.9, 26.0, 80.0, 299.0]:
        events += monitor.poll(sim_t, wall_now=1000.0 + sim_t)[1]
    replay = replay_bed("af_rvr", seed=1003, duration=300, bed=3)
    assert [(e.alarm_id, e.condition, e.state, e.value) for e in events] == \
        [(a.alarm_id, a.condition, a.state, a.value) for a in replay.alarms.itertuples()]
    assert events, "new AF at 146/min must breach the 130/min limit within five minutes"


def test_a_ward_replay_seeds_its_beds_as_a_live_ward_does_and_is_repeatable():
    one = replay_ward(WARD, seed=1, duration=900)
    two = replay_ward(WARD, seed=1, duration=900)
    assert [rp.seed for rp in one.values()] == [1001, 1002, 1003]
    for bed in one:
        pd.testing.assert_frame_equal(one[bed].alarms, two[bed].alarms)
    assert one[3].alarms["alarm_id"].iloc[0] == "1003-1"  # device 1000 + bed, first alarm


def test_every_raised_alarm_waited_exactly_its_limits_delay_after_the_breach_began():
    ward = replay_ward(WARD, seed=1, duration=3600)
    raised = pd.concat([with_onsets(rp) for rp in ward.values()])
    assert len(raised) >= 5
    assert (raised["waited"] == raised["delay"]).all()
    af = raised[raised["bed"] == 3].iloc[0]
    assert (af["condition"], af["onset"], af["t"]) == ("HR HIGH", 21.0, 26.0)


def test_a_missing_value_breaks_the_breach_and_an_inside_value_has_no_onset():
    limit = Limit("spo2", 90, None, "high", delay=3.0)
    values = pd.Series([95, 88, float("nan"), 87, 86, 85, 85], index=range(7), dtype=float)
    assert breach_onset(values, limit, 6) == 3.0  # the NaN at 2 reset the timer
    assert breach_onset(values, limit, 1) == 1.0
    with pytest.raises(ValueError, match="not out of its limits"):
        breach_onset(values, limit, 0)
    assert parameter_of("NIBP SYS LOW") == "nibp_sys" and parameter_of("SpO2 LOW") == "spo2"


def test_news2_frame_scores_each_second_as_the_station_does():
    rp = replay_bed("sepsis", seed=1001, duration=120, bed=1)
    frame = news2_frame(rp.numerics)
    row = rp.numerics.loc[60.0]
    expected = news2(rr=row.rr, spo2=row.spo2, temp=row.temp, systolic=row.nibp_sys, hr=row.hr)
    assert (frame.loc[60.0, "total"], frame.loc[60.0, "band"]) == (expected.total, expected.band)
    assert first_time(pd.Series([False, False], index=[0.0, 1.0])) is None
    assert first_time(pd.Series([False, True, True], index=[0.0, 1.0, 2.0])) == 1.0


def test_news2_warns_of_sepsis_before_any_high_priority_alarm_and_the_alarm_catches_af_first():
    table = early_warning(replay_ward(WARD, seed=1, duration=3600))
    sepsis, af = table.loc[1], table.loc[3]
    # sepsis reaches NEWS2 7 within the hour, and no red alarm ever: its limit alarms are all
    # yellow (red is for the life-threatening), so only the score says "emergency"
    assert sepsis["news2_7_min"] < 60 and pd.isna(sepsis["first_high_min"])
    assert af["first_alarm"] == "HR HIGH" and af["first_alarm_min"] <= 0.5
    # NEWS2 may never reach 5 for fast AF alone: the alarm is what catches it
    assert pd.isna(af["news2_5_min"]) or af["first_alarm_min"] < af["news2_5_min"]
    assert pd.isna(table.loc[2, "first_high_min"])  # haemorrhage: medium alarms only


def test_the_recorder_follows_every_alarm_to_the_dashboard_and_counts_each_protocols_losses():
    async def main():
        system = System.ephemeral(beds=3, scenario=WARD, seed=1, speed=300, waves=False,
                                  impaired=True, history_seconds=3600, client_send_buffer=4096)
        await system.start()
        recorder = stalled = None
        try:
            system.udp_proxy.settings.loss = 0.1
            system.udp_proxy.settings.delay = 0.05  # still in flight when drain is called
            system.tcp_proxy.settings.latency = 0.05
            recorder = await DashboardRecorder(ws_url(system)).start()
            stalled = await StalledDashboard("127.0.0.1", system.station.http_port).start()
            # run until sepsis has raised and cleared an alarm and the haemorrhage's cuff
            # pressure has alarmed (simulated 1800 s: six wall seconds at 300x)
            await wait_until(lambda: system.station.journal.count("device") >= 6, timeout=30,
                             what="six alarm events journaled")
            await wait_until(lambda: system.station.hub.counters()["superseded"] > 0,
                             timeout=20, what="the frozen dashboard to fall behind")
            await drain(system, recorder)
            assert undelivered_alarms(system, recorder) == []
            counts = protocol_counters(system, recorder)
            assert counts["tcp"]["raised"] == counts["tcp"]["journaled"] >= 6
            assert counts["tcp"]["unacked"] == 0
            assert counts["websocket"]["alarm_events_not_shown"] == 0
            udp = counts["udp"]
            # all the proxy delivered arrived, give or take a kernel buffer on a loaded machine
            assert 0 <= udp["proxy_delivered"] - udp["received"] <= 0.01 * udp["sent"]
            assert 0.99 * udp["sent"] <= udp["proxy_delivered"] + udp["proxy_dropped"] \
                <= udp["sent"]
            assert 0.03 < udp["proxy_dropped"] / udp["sent"] < 0.2
            timeline = alarm_timeline(system, recorder)
            assert len(timeline) >= 4
            steps = timeline[["onset", "due", "raised", "journaled", "shown"]].diff(axis=1)
            assert (steps.iloc[:, 1:] > -0.001).all().all(), timeline
            assert (timeline["journaled"] - timeline["raised"] >= 0.05).all()  # proxy latency
            history = await history_frame(system, 1, channels="hr,rr")
            assert list(history.columns) == ["hr", "rr"] and len(history) > 100
            vitals = recorder.vitals()
            assert set(vitals["bed"]) == {1, 2, 3} and vitals["news2"].notna().any()
        finally:
            if stalled is not None:
                stalled.close()
            if recorder is not None:
                await recorder.stop()
            await system.stop()
        assert not system.station.running
    run(main())


def test_the_recorder_sends_commands_and_a_stopped_recorder_cannot():
    async def main():
        async with System.ephemeral(beds=1, scenario="stable_adult", waves=False) as system:
            recorder = await DashboardRecorder(ws_url(system)).start()
            recorder.send({"type": "ack", "alarm_id": "nope", "user": "lab"})
            await wait_until(lambda: recorder.counts().get("error"), what="an error reply")
            await recorder.stop()
            with pytest.raises(RuntimeError, match="not connected"):
                recorder.send({"type": "subscribe", "beds": None})
        await asyncio.wait_for(recorder.closed.wait(), 5)
    run(main())


def test_started_at_is_the_wall_time_a_devices_simulated_time_began():
    async def main():
        clock = VirtualClock(1_000.0)
        link = DeviceLink(BedsideMonitor(1001, 1, "stable_adult", seed=1, waves=False),
                          "127.0.0.1", 9, 9, clock=clock, speed=300.0)
        await link.start()  # UDP needs no listener; the alarm channel retries in the background
        try:
            clock.advance(2.5)  # 750 simulated seconds later
            assert link.sim_time() == 750.0
            assert link.started_at == 1_000.0
            assert link.started_at + 750.0 / link.speed == clock.now()
        finally:
            await link.stop()
    run(main())


def test_lab05_exercise2_fails_an_answer_that_passes_nan_to_news2():
    from course import Checks, not_done_yet
    from course.replay import news2_frame, replay_ward
    from tests.labcells import run_cell

    def passes_nan(numerics):
        return pd.Series([news2(rr=r.rr, spo2=r.spo2, temp=r.temp, systolic=r.nibp_sys,
                                hr=r.hr).total for r in numerics.itertuples()],
                         index=numerics.index)

    ward = replay_ward(["sepsis", "haemorrhage", "af_rvr"], seed=1, duration=1800)
    ns = run_cell("05", 'Checks("Exercise 2', {
        "Checks": Checks, "not_done_yet": not_done_yet, "pd": pd, "ward": ward,
        "news2_frame": news2_frame, "news2_totals": passes_nan})
    failed = {r.name: r.message for r in ns["checks"].results if r.status == "fail"}
    name = "a second with SpO2 and temperature missing (NaN in the frame)"
    assert name in failed, ns["checks"].report()
    assert "spo2 is NaN; pass None" in failed[name]
