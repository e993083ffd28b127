"""Scenario files: every shipped one loads, a bad one gets an error naming file and field, and
each one's description is true at the times it states (numerics, rhythm, NEWS2 and alarms)."""

from dataclasses import dataclass

import pytest

from vitalsim.alarms import ARRHYTHMIA_LATENCY_BUDGET, AlarmMonitor, alarm_inputs
from vitalsim.physiology import PatientModel, news2
from vitalsim.protocol.alarm_channel import AlarmMessage
from vitalsim.scenarios import ScenarioError, load_scenario, scenario_names

REQUIRED = {"stable_adult", "sepsis", "hypoxia", "bradycardia", "af_rvr", "haemorrhage",
            "hypertensive_crisis", "fever"}

GOOD = """
title = "t"
description = "d"
[baseline]
hr = 70
spo2 = 97
rr = 14
temp = 36.8
sys = 120
dia = 80
"""


def test_the_required_scenarios_ship_with_a_clinical_sentence():
    assert REQUIRED <= set(scenario_names())
    for name in scenario_names():
        s = load_scenario(name)
        assert len(s.description) > 40, f"{name} needs a sentence of clinical context"


def test_an_unknown_name_lists_the_known_ones():
    with pytest.raises(ScenarioError, match="known scenarios: af_rvr, bradycardia"):
        load_scenario("sepssis")


@pytest.mark.parametrize(("text", "words"), [
    (GOOD.replace("hr = 70", "hr = 400"), "baseline.hr' is 400; expected a number in 20..250"),
    (GOOD.replace("hr = 70\n", ""), "missing field 'baseline.hr'"),
    (GOOD.replace('title = "t"\n', ""), "missing field 'title'"),
    ('rhythm = "torsades"\n' + GOOD, "field 'rhythm' is 'torsades'"),
    (GOOD + '[[events]]\nat = 10\nkind = "ramp"\nparameter = "hr"\nto = 120\n',
     "events[0]: missing field 'over'"),
    (GOOD + '[[events]]\nat = 10\nkind = "teleport"\n', "field 'kind' is 'teleport'"),
    (GOOD + '[[events]]\nat = 10\nkind = "fault"\nfault = "battery"\nduration = 5\n',
     "field 'fault' is 'battery'"),
    (GOOD + '[[events]]\nat = -1\nkind = "step"\nparameter = "hr"\nto = 90\n',
     "field 'at' is -1"),
    ("title = ", "not valid TOML"),
])
def test_bad_files_name_the_file_and_the_field(tmp_path, text, words):
    path = tmp_path / "ward7.toml"
    path.write_text(text)
    with pytest.raises(ScenarioError) as info:
        load_scenario(path)
    assert str(path) in str(info.value)
    assert words in str(info.value)


# -- each scenario's description, checked at the times it states ------------------------------

SEED = 1001  # ward seed 1, bed 1: what a learner's first bed shows


@dataclass
class Run:
    numerics: list
    raised: list[tuple[int, AlarmMessage]]

    def at(self, minute: float):
        return self.numerics[round(minute * 60)]

    def mean(self, param: str, m0: float, m1: float) -> float:
        values = [getattr(n, param) for n in self.numerics[round(m0 * 60):round(m1 * 60)]]
        return sum(values) / len(values)

    def first(self, condition: str) -> tuple[int, AlarmMessage] | None:
        return next(((t, e) for t, e in self.raised if e.condition == condition), None)

    def news2(self, minute: float) -> int:
        n = self.at(minute)
        return news2(rr=n.rr, spo2=n.spo2, temp=n.temp, systolic=n.nibp_sys, hr=n.hr).total


def story(name: str, minutes: float = 60) -> Run:
    model, monitor = PatientModel(name, seed=SEED), AlarmMonitor(1001, 1)
    numerics, raised = [], []
    for t in range(round(minutes * 60) + 1):
        n = model.numerics(float(t))
        numerics.append(n)
        raised += [(t, e) for e in monitor.update(alarm_inputs(n), n.t, flags=int(n.flags))
                   if e.state == "raised"]
    return Run(numerics, raised)


def test_stable_adult_stays_quiet_but_for_the_probe():
    run = story("stable_adult")
    assert all(55 <= n.hr <= 90 for n in run.numerics)
    assert run.at(7.5).spo2 is None and run.at(6.5).spo2 is not None  # probe off at 7:00
    assert run.raised == [], "a stable patient raises no alarms"


def test_sepsis_moves_news2_from_low_to_high():
    run = story("sepsis")
    assert run.news2(0) <= 4, "starts low"
    assert run.news2(60) >= 7, "high within the hour"
    assert run.at(60).temp > run.at(0).temp + 0.8 and run.at(60).nibp_sys < 95
    assert run.mean("hr", 55, 60) > run.mean("hr", 0, 5) + 20
    assert run.mean("rr", 55, 60) > run.mean("rr", 0, 5) + 5


def test_hypoxia_desaturates_into_the_low_80s_within_minutes_and_breathing_quickens():
    run = story("hypoxia", 20)
    assert 80 <= run.mean("spo2", 8, 12) <= 86 and run.at(0).spo2 >= 94
    assert run.mean("rr", 8, 12) > run.mean("rr", 0, 1) + 8
    assert run.mean("hr", 8, 12) > run.mean("hr", 0, 1) + 8
    t, alarm = run.first("SpO2 LOW")
    assert t < 5 * 60 and alarm.priority == "medium"


def test_af_rvr_is_irregular_fast_and_named():
    run = story("af_rvr", 15)
    assert run.at(0).rhythm == "sinus" and run.at(1).rhythm == "af"
    assert 130 <= run.mean("hr", 5, 15) <= 160
    assert run.at(15).nibp_sys < run.at(0).nibp_sys - 10
    assert run.first("AFIB")[1].priority == "medium", "AF is yellow, not red"
    assert run.first("EXTREME TACHY") is None


def test_haemorrhage_compensates_then_decompensates():
    run = story("haemorrhage", 35)
    early, comp = run.at(0), run.at(15)
    # compensation: HR up, diastolic up, pulse pressure narrower, systolic held
    assert comp.hr > early.hr + 10 and comp.nibp_dia > early.nibp_dia
    assert comp.nibp_sys - comp.nibp_dia < early.nibp_sys - early.nibp_dia - 10
    assert comp.nibp_sys > 105
    late = run.at(30)
    assert late.nibp_sys < 90 and run.mean("hr", 29, 31) > 120
    assert run.first("HR HIGH") is not None and run.first("NIBP SYS LOW") is not None


def test_bradycardia_slides_from_the_mid_40s_into_the_30s():
    run = story("bradycardia", 15)
    assert 42 <= run.mean("hr", 0, 1) <= 50 and 30 <= run.mean("hr", 10, 15) < 40
    t, alarm = run.first("HR LOW")
    assert t <= 10 and alarm.priority == "medium"
    t, alarm = run.first("EXTREME BRADY")
    assert t < 8 * 60 and alarm.priority == "high"


def test_hypertensive_crisis_starts_under_its_limits_and_climbs_past_200():
    run = story("hypertensive_crisis", 15)
    first = run.at(0)
    assert first.nibp_sys < 160 and first.nibp_dia < 90, "admitted under the alarm limits"
    assert run.at(15).nibp_sys > 200
    rise = run.mean("hr", 13, 15) - run.mean("hr", 0, 1)
    assert 4 <= rise <= 20, f"a modest HR rise: {rise:.1f}"
    assert run.first("NIBP SYS HIGH")[0] > 0


def test_fever_rigors_fool_hr_and_spo2_and_the_alarms_say_artefact():
    run = story("fever", 26)
    assert run.at(25).temp >= 39.0
    assert run.mean("hr", 24, 26) > run.mean("hr", 0, 1) + 12
    rigor = run.at(4.5)  # artefact 4:00-4:40
    assert rigor.hr > run.mean("hr", 3, 4) + 25 and rigor.spo2 < run.mean("spo2", 3, 4) - 6
    raised = [e for t, e in run.raised if 240 <= t < 285]
    assert raised and all(e.artefact for e in raised), raised
    assert run.at(15.25).rr is None and run.at(15.25).hr is not None  # lead off 15:00-15:30


def test_vt_degenerates_to_vf_then_asystole_with_red_alarms_in_budget():
    run = story("vt_to_vf", 21)
    assert run.at(2).rhythm == "sinus" and 3 <= run.at(2.95).pvc_per_min <= 16
    assert run.at(4).rhythm == "vt" and 170 <= run.mean("hr", 3.5, 4.5) <= 195
    assert run.at(4.9).abp_sys < run.at(2).abp_sys - 25
    vf = run.at(6)
    assert vf.rhythm == "vf" and vf.spo2 is None and vf.abp_sys < 25
    assert vf.nibp_time == 300 and vf.nibp_sys is None, "the cuff finds no pulse to measure"
    for condition, onset in (("VT", 180), ("VF", 300), ("ASYSTOLE", 1200)):
        t, alarm = run.first(condition)
        assert alarm.priority == "high" and alarm.parameter is None
        assert t - onset <= ARRHYTHMIA_LATENCY_BUDGET[condition] / 2, \
            "the device's share of the latency budget leaves room for the network"
    assert run.first("APNOEA") is not None, "breathing stops after the arrest"


def test_heart_block_progresses_from_mobitz_ii_to_complete_block():
    run = story("heart_block", 15)
    assert run.at(1).rhythm == "sinus" and run.at(5).rhythm == "block2"
    assert 40 <= run.mean("hr", 4, 9) <= 48
    assert run.at(12).rhythm == "block3" and 30 <= run.mean("hr", 11, 15) <= 38
    assert run.at(15).nibp_sys < run.at(5).nibp_sys - 15
    assert run.first("EXTREME BRADY")[1].priority == "high"


def test_svt_is_regular_fast_and_ends_at_minute_25():
    run = story("svt", 30)
    assert run.at(5).rhythm == "svt" and 178 <= run.mean("hr", 3, 20) <= 195
    assert run.at(26).rhythm == "sinus" and run.mean("hr", 27, 30) < 100
    assert run.first("EXTREME TACHY")[1].priority == "high"


def test_flutter_conducts_two_to_one_at_about_150():
    run = story("flutter", 10)
    assert run.at(1).rhythm == "sinus" and run.at(3).rhythm == "flutter"
    assert 144 <= run.mean("hr", 3, 10) <= 156


def test_opioid_apnoea_slows_breathing_raises_etco2_and_pauses():
    run = story("opioid_apnoea", 45)
    assert run.at(0).rr >= 12 and run.mean("rr", 19, 21) <= 8
    assert run.at(0).etco2 <= 40 and run.mean("etco2", 19, 21) >= 52
    apnoeas = [t for t, e in run.raised if e.condition == "APNOEA"]
    assert len(apnoeas) == 2 and 25 * 60 < apnoeas[0] < 26 * 60 and 40 * 60 < apnoeas[1] < 41 * 60
    assert run.mean("spo2", 40, 45) < run.at(0).spo2 - 2


def test_vt_to_vf_leaves_no_limit_alarm_that_contradicts_the_live_value():
    """In asystole HR reads 0: an HR HIGH raised in VT ("HR 0 > 120") must have cleared. Every
    limit alarm still open at a moment is out of its limit then, or its parameter is not
    measured; replayed on virtual time."""
    from course.replay import replay_bed

    replay = replay_bed("vt_to_vf", seed=1001, duration=1500.0)
    limits = {lim.condition_for(side): lim for lim in replay.limits for side in ("low", "high")}
    open_alarms: dict[str, tuple[str, str, str]] = {}
    checked = 0
    events = replay.alarms.groupby("t")
    for t, values in replay.numerics.iterrows():
        if t in events.groups:
            for ev in events.get_group(t).itertuples():
                if ev.state == "raised" and isinstance(ev.parameter, str):
                    side = "low" if ev.value < ev.limit else "high"
                    open_alarms[ev.condition] = (ev.parameter, ev.condition, side)
                elif ev.state == "cleared":
                    open_alarms.pop(ev.condition, None)
        for parameter, condition, side in open_alarms.values():
            value = values[parameter]
            if value is None or value != value:  # not measured: may keep its state
                continue
            lim = limits[condition]
            # still past the limit it was raised on (within the hysteresis that delays a clear)
            still = value > lim.high - lim.hysteresis if side == "high" \
                else value < lim.low + lim.hysteresis
            assert still, f"t={t}: {condition} still open with {parameter} {value}"
            checked += 1
    assert checked > 100
    hr_high = replay.alarms[replay.alarms["condition"] == "HR HIGH"]
    assert list(hr_high["state"]) == ["raised", "cleared"], hr_high
    assert hr_high["t"].iloc[1] == 1200.0 and hr_high["value"].iloc[1] == 0.0
    assert "HR LOW" in set(replay.alarms["condition"]), "HR 0 is below the low limit"
