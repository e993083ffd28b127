"""Each rhythm as a beat detector, a clinician and an oximeter would see it: the rate and the
regularity of the QRS complexes, their width, the P waves, the pulse that follows (or does not),
and the capnogram, the arterial line and the respiration that go with them."""

import numpy as np
import pytest
from scipy.signal import find_peaks

from vitalsim.alarms import AlarmMonitor, alarm_inputs
from vitalsim.flags import Flags
from vitalsim.physiology import PatientModel
from vitalsim.physiology.waves import BLOCK3_ATRIAL_RATE, P_WAVE

ECG_RATE, PLETH_RATE = 250, 125


def run(scenario: str, until: float, seed: int = 7) -> tuple[PatientModel, list]:
    model = PatientModel(scenario, seed=seed)
    return model, [model.numerics(float(t)) for t in range(int(until) + 1)]


def ecg(model: PatientModel, t0: float, t1: float) -> np.ndarray:
    return model.waveform("ecg", int(t0 * ECG_RATE), int((t1 - t0) * ECG_RATE)).astype(float)


def detected_hr(signal: np.ndarray) -> tuple[float, float]:
    """Mean rate and RMSSD/mean-RR irregularity from a plain peak detector: R waves are the
    peaks above half the tallest, at least 250 ms apart. (neurokit2's adaptive detector, which
    tests/test_physiology.py uses for sinus rhythm, takes the P waves that march through the
    long gaps of complete heart block for beats, as simple monitors can.)"""
    baseline = np.convolve(signal, np.ones(150) / 150, "same")
    x = signal - baseline
    peaks, _ = find_peaks(x, height=0.5 * np.quantile(x, 0.999), distance=0.25 * ECG_RATE)
    rr = np.diff(peaks) / ECG_RATE
    return 60 / rr.mean(), float(np.sqrt(np.mean(np.diff(rr) ** 2)) / rr.mean())


def qrs_width(signal: np.ndarray, beats: np.ndarray, t0: float) -> float:
    """Median width (s) of the QRS at half its height above the baseline."""
    widths = []
    for b in beats:
        i = int(round((b - t0) * ECG_RATE))
        if i < 40 or i + 40 > len(signal):
            continue
        seg = signal[i - 40:i + 40] - np.median(signal[i - 40:i + 40])
        peak = seg[35:45].max()
        widths.append(np.sum(seg[20:60] > peak / 2) / ECG_RATE)
    return float(np.median(widths))


# (scenario, window start, window end, expected rhythm, the most irregularity allowed)
REGULAR = [
    ("svt", 300, 330, "svt", 0.03),
    ("flutter", 300, 330, "flutter", 0.03),
    ("vt_to_vf", 200, 230, "vt", 0.04),
    ("heart_block", 900, 960, "block3", 0.04),
]


@pytest.mark.parametrize(("scenario", "t0", "t1", "rhythm", "most"), REGULAR)
def test_a_beat_detector_finds_each_regular_rhythm_at_its_numeric_rate(scenario, t0, t1,
                                                                     rhythm, most):
    model, numerics = run(scenario, t1)
    assert numerics[t0].rhythm == rhythm
    hr, irregularity = detected_hr(ecg(model, t0, t1))
    numeric = np.mean([n.hr for n in numerics[t0:t1]])
    assert abs(hr - numeric) <= 4, f"{rhythm}: detector {hr:.1f} vs numeric {numeric:.1f}"
    assert irregularity < most, f"{rhythm}: irregularity {irregularity:.3f}"


def test_ventricular_beats_are_wide_and_sinus_beats_narrow():
    model, _ = run("vt_to_vf", 55)
    sinus = qrs_width(ecg(model, 20, 50), model.waves.beat_times(20, 50), 20)
    model, _ = run("vt_to_vf", 240)
    vt = qrs_width(ecg(model, 200, 230), model.waves.beat_times(200, 230), 200)
    assert sinus < 0.05 and vt > 0.07, f"QRS at half height: sinus {sinus}, VT {vt} s"


def test_second_degree_block_drops_every_third_p_wave():
    model, numerics = run("heart_block", 300)
    beats = model.waves.beat_times(180, 300)
    rr = np.diff(beats)
    pause = rr > 1.5 * rr.min()
    assert 1.8 < np.median(rr[pause]) / np.median(rr[~pause]) < 2.2, \
        "the pause of a dropped beat is two P-P intervals"
    assert 0.45 < pause.mean() < 0.55, "3:2 block: every other interval is a pause"
    hr, _ = detected_hr(ecg(model, 180, 300))
    assert abs(hr - np.mean([n.hr for n in numerics[180:300]])) <= 4


def test_complete_block_has_p_waves_marching_through_at_their_own_rate():
    model, _ = run("heart_block", 1000)
    beats = model.waves.beat_times(900, 1000)
    period = 60 / BLOCK3_ATRIAL_RATE
    # the P wave before each QRS: PR intervals scatter, where in sinus rhythm they are fixed
    pr = np.asarray([(b % period) - period / 2 for b in beats]) % period
    assert pr.std() > 0.15, f"PR intervals vary by {pr.std():.2f} s: AV dissociation"
    signal = ecg(model, 900, 1000)
    p_times = np.arange(np.ceil(900 / period - 0.5), np.floor(1000 / period - 0.5)) * period \
        + period / 2
    far = [p for p in p_times if np.min(np.abs(beats - p)) > 0.25]  # clear of the QRS-T
    bumps = [signal[int((p - 900) * ECG_RATE)] - np.median(signal) for p in far]
    assert np.median(bumps) > P_WAVE[1] / 2, "the dissociated P waves show on the ECG"


def test_vf_and_asystole_have_no_beats_no_pulse_and_say_so_in_the_numerics():
    model, numerics = run("vt_to_vf", 1330)
    for t0, rhythm in ((400, "vf"), (1300, "asystole")):
        n = numerics[t0]
        assert n.rhythm == rhythm and n.spo2 is None and n.abp_sys <= 20, n
        assert len(model.waves.beat_times(t0, t0 + 20)) == 0
        pleth = model.waveform("pleth", t0 * PLETH_RATE, 20 * PLETH_RATE).astype(float)
        assert pleth.std() < 20, "no pulse at the finger"
        abp = model.waveform("abp", t0 * PLETH_RATE, 20 * PLETH_RATE) / 10
        assert abp.max() - abp.min() < 3, "a flat arterial trace"
    vf, asystole = ecg(model, 400, 420), ecg(model, 1300, 1320)
    assert vf.std() > 150, "VF is coarse chaotic activity"
    assert np.ptp(asystole) < 400, "asystole is a (nearly) flat line"
    assert numerics[400].hr is None and numerics[1300].hr == 0.0


def test_pvcs_are_counted_per_minute_and_followed_by_a_compensatory_pause():
    model, numerics = run("vt_to_vf", 179)
    count = numerics[179].pvc_per_min
    assert 3 <= count <= 16, f"{count} PVCs in the last minute at a rate of 8"
    beats = model.waves._beats
    kinds = model.waves._kinds
    pvcs = [i for i, k in enumerate(kinds) if k == 4 and 0 < i < len(beats) - 1
            and 60 < beats[i] < 175]
    assert pvcs, "PVCs were generated"
    normal = np.median(np.diff(model.waves.beat_times(20, 55)))
    for i in pvcs:
        around = beats[i + 1] - beats[i - 1]
        assert abs(around - 2 * normal) < 0.25 * normal, "a fully compensatory pause"
        assert model.waves._amps[i] < 0.5, "a PVC gives a weak pulse or none"


def test_af_shortest_intervals_give_a_pulse_deficit():
    model, _ = run("af_rvr", 200)
    beats = model.waves.beat_times(60, 180)
    pleth = model.waveform("pleth", 60 * PLETH_RATE, 125 * PLETH_RATE).astype(float)
    amps, intervals = [], []
    for prev, b in zip(beats[:-1], beats[1:], strict=True):
        i = int((b + 0.25 - 60) * PLETH_RATE)
        if i + 8 < len(pleth):
            amps.append(pleth[i - 5:i + 8].max() - 300)
            intervals.append(b - prev)
    amps, intervals = np.asarray(amps), np.asarray(intervals)
    short = amps[intervals <= np.quantile(intervals, 0.15)]
    long_ = amps[intervals >= np.quantile(intervals, 0.85)]
    assert np.median(short) < 0.35 * np.median(long_), \
        f"pulse after short intervals {np.median(short):.0f}, after long {np.median(long_):.0f}"


def test_breathing_takes_a_third_of_each_breath_to_breathe_in():
    model, _ = run("stable_adult", 130)
    resp = model.waveform("resp", 60 * 25, 60 * 25).astype(float)
    rising = np.mean(np.diff(resp) > 0)
    assert 0.28 < rising < 0.40, f"the chest fills for {rising:.2f} of the time (I:E 1:2)"


def test_the_capnogram_agrees_with_etco2_and_awrr_and_stops_in_apnoea():
    model, numerics = run("opioid_apnoea", 1560)
    co2 = model.waveform("co2", 200 * 25, 60 * 25) / 10
    assert abs(co2.max() - np.mean([n.etco2 for n in numerics[200:260]])) <= 3
    upstrokes = np.sum((co2[:-1] < 15) & (co2[1:] >= 15))
    assert abs(upstrokes - np.mean([n.awrr for n in numerics[200:260]])) <= 2
    apnoea = model.waveform("co2", 1505 * 25, 20 * 25) / 10
    assert apnoea.max() < 1, "no breath, no CO2"
    assert numerics[1520].etco2 == 0 and numerics[1520].since_breath >= 20


def test_apnoea_raises_the_red_alarm_about_twenty_seconds_after_the_last_breath():
    model = PatientModel("opioid_apnoea", seed=7)
    monitor = AlarmMonitor(1, 1)
    raised = {}
    for t in range(1560):
        n = model.numerics(float(t))
        for ev in monitor.update(alarm_inputs(n), n.t, flags=int(n.flags)):
            raised.setdefault(ev.condition, (t, ev))
    t, ev = raised["APNOEA"]
    assert ev.priority == "high" and ev.parameter is None
    last = model.waves.last_breath(1500.0)  # the breath before the pause began
    assert 1500 - 15 <= last <= 1500
    assert 20 <= t - last <= 22, f"APNOEA at {t}, the last breath began at {last}"


def test_the_arterial_line_wave_peaks_and_troughs_at_the_invasive_numerics():
    model, numerics = run("vt_to_vf", 60)
    abp = model.waveform("abp", 30 * PLETH_RATE, 20 * PLETH_RATE) / 10
    n = numerics[40]
    assert abs(abp.max() - n.abp_sys) <= 8 and abs(abp.min() - n.abp_dia) <= 6, \
        (abp.max(), abp.min(), n.abp_sys, n.abp_dia)
    assert n.abp_dia < n.abp_map < n.abp_sys


def test_lead_off_leaves_the_heart_rate_to_the_pleth_and_blanks_rr_and_rhythm():
    model, numerics = run("fever", 920)
    n = numerics[910]  # leads off 900-930
    assert n.flags & Flags.LEAD_OFF and n.flags & Flags.HR_FROM_PLETH
    assert n.hr is not None and n.rr is None and n.rhythm is None and n.pvc_per_min is None
    assert numerics[899].rr is not None and not numerics[899].flags & Flags.HR_FROM_PLETH


def test_motion_artefact_fools_hr_and_spo2_and_its_alarms_say_so():
    model = PatientModel("fever", seed=7)
    monitor = AlarmMonitor(1, 1)
    events, clean, fooled = [], [], []
    for t in range(300):
        n = model.numerics(float(t))
        (fooled if n.flags & Flags.ARTIFACT else clean).append(n)
        events += monitor.update(alarm_inputs(n), n.t, flags=int(n.flags))
    assert np.mean([n.hr for n in fooled]) > np.mean([n.hr for n in clean[-40:]]) + 25
    assert np.mean([n.spo2 for n in fooled]) < np.mean([n.spo2 for n in clean[-40:]]) - 6
    raised = {e.condition: e for e in events if e.state == "raised"}
    assert raised["HR HIGH"].artefact and raised["SpO2 LOW"].artefact
    assert raised["HR HIGH"].parameter == "hr" and raised["SpO2 LOW"].priority == "medium"
