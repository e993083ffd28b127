"""The patient model: clinically sensible trajectories, waveforms that agree with the numerics
(checked by an independent beat detector), and exact reproducibility from the seed."""

import numpy as np
import pytest

from course.stretch import simulate
from vitalsim.flags import Flags
from vitalsim.physiology import WAVE_RATES, PatientModel


def at(scenario: str, times, seed: int = 11):
    model = PatientModel(scenario, seed=seed)
    return {t: model.numerics(float(t)) for t in times}


# (scenario, time in s, parameter, low, high): what the clinical sentence implies
EXPECTATIONS = [
    ("stable_adult", 1800, "hr", 55, 90), ("stable_adult", 1800, "spo2", 94, 100),
    ("sepsis", 0, "temp", 37.8, 38.6), ("sepsis", 3000, "temp", 38.9, 39.8),
    ("sepsis", 3000, "hr", 115, 160), ("sepsis", 3000, "nibp_sys", 75, 98),
    ("sepsis", 3000, "rr", 25, 40),
    ("hypoxia", 0, "spo2", 93, 99), ("hypoxia", 400, "spo2", 78, 88),
    ("hypoxia", 400, "rr", 24, 40),
    ("bradycardia", 600, "hr", 25, 42),
    ("af_rvr", 300, "hr", 120, 175),
    ("haemorrhage", 0, "nibp_sys", 112, 136), ("haemorrhage", 1800, "nibp_sys", 70, 96),
    ("haemorrhage", 1800, "hr", 110, 150),
    ("hypertensive_crisis", 900, "nibp_sys", 195, 235),
    ("fever", 1500, "temp", 39.0, 40.0), ("fever", 1500, "hr", 98, 125),
]


@pytest.mark.parametrize(("scenario", "t", "param", "low", "high"), EXPECTATIONS)
def test_values_follow_the_clinical_story(scenario, t, param, low, high):
    for seed in (1, 2, 3):
        value = getattr(at(scenario, [0, t], seed)[t], param)
        assert low <= value <= high, f"{scenario} seed {seed}: {param}={value} at t={t}"


def test_af_starts_on_cue_and_stable_adult_stays_in_sinus():
    af = at("af_rvr", [0, 10, 30, 600])
    assert [af[t].rhythm for t in (0, 10, 30, 600)] == ["sinus", "sinus", "af", "af"]
    assert {n.rhythm for n in at("stable_adult", range(0, 600, 60)).values()} == {"sinus"}


def test_nibp_is_intermittent_like_a_real_cuff():
    model = PatientModel("haemorrhage", seed=4, nibp_interval=300)
    readings = [model.numerics(float(t)) for t in range(0, 650)]
    times = sorted({n.nibp_time for n in readings})
    assert times == [0.0, 300.0, 600.0]
    model.request_nibp(650.0)  # a nurse presses the NIBP button
    assert model.numerics(651.0).nibp_time == 650.0


def test_sensor_faults_show_as_flags_and_in_the_waveforms():
    model = PatientModel("stable_adult", seed=2)  # probe off from 420 s to 480 s
    n = model.numerics(450.0)
    assert n.flags & Flags.PROBE_OFF and n.spo2 is None and n.hr is not None
    pleth = model.waveform("pleth", 450 * 125, 250)
    assert np.all(pleth == 0)
    ecg = model.waveform("ecg", 450 * 250, 500)
    assert ecg.std() > 100, "the ECG carries on while the SpO2 probe is off"
    fever = PatientModel("fever", seed=2)  # rigors: artefact from 240 s to 280 s
    clean = fever.waveform("ecg", 200 * 250, 2500)
    noisy = fever.waveform("ecg", 250 * 250, 2500)
    assert fever.numerics(250.0).flags & Flags.ARTIFACT
    # motion artefact is slow and large: it shows in the signal's moving average
    def wander(x):
        return np.convolve(x.astype(float), np.ones(50) / 50, "valid").std()
    assert wander(noisy) > 3 * wander(clean)


def detected_hr(ecg: np.ndarray) -> tuple[float, float]:
    """Mean HR and the RMSSD/mean-RR irregularity from neurokit2's R-peak detector."""
    nk = pytest.importorskip("neurokit2")
    _, info = nk.ecg_peaks(ecg.astype(float), sampling_rate=250)
    peaks = np.asarray(info["ECG_R_Peaks"])
    rr = np.diff(peaks) / 250
    return 60 / rr.mean(), np.sqrt(np.mean(np.diff(rr) ** 2)) / rr.mean()


@pytest.mark.parametrize("scenario", ["stable_adult", "bradycardia", "hypertensive_crisis"])
def test_an_independent_beat_detector_finds_the_numeric_heart_rate(scenario):
    model = PatientModel(scenario, seed=5)
    numerics = [model.numerics(float(t)) for t in range(0, 31)]
    ecg = model.waveform("ecg", 0, 30 * 250)
    hr, irregularity = detected_hr(ecg[250:])
    mean_numeric = np.mean([n.hr for n in numerics[1:]])
    assert abs(hr - mean_numeric) <= 3, f"detector {hr:.1f} vs numeric {mean_numeric:.1f}"
    assert irregularity < 0.08


def test_af_is_irregularly_irregular_to_the_detector():
    model = PatientModel("af_rvr", seed=5)
    for t in range(0, 91):
        model.numerics(float(t))
    _, irregularity = detected_hr(model.waveform("ecg", 0, 90 * 250)[40 * 250:])
    assert irregularity > 0.15


def test_same_seed_same_patient_bit_for_bit_whatever_the_chunking():
    a = simulate("sepsis", seed=42, duration=120)
    b = PatientModel("sepsis", seed=42)
    nb = [b.numerics(float(t)) for t in range(120)]
    assert [n.hr for n in a.numerics] == [n.hr for n in nb]
    chunks = np.concatenate([b.waveform("ecg", i, 63) for i in range(0, 120 * 250, 63)])
    assert np.array_equal(a.waves["ecg"], chunks[: len(a.waves["ecg"])])
    c = simulate("sepsis", seed=43, duration=120)
    assert not np.array_equal(a.waves["ecg"], c.waves["ecg"])
    assert [n.hr for n in a.numerics] != [n.hr for n in c.numerics]


def test_dataframes_are_time_indexed_for_the_labs():
    stretch = simulate("fever", seed=1, duration=60, start=100)
    df = stretch.to_dataframe()
    assert df.index.name == "t" and df.index[0] == 100 and len(df) == 60
    waves = stretch.waves_dataframe("pleth")
    assert len(waves) == 60 * WAVE_RATES["pleth"] and waves.index[0] == 100.0


def test_time_only_goes_forward():
    model = PatientModel("stable_adult", seed=1)
    model.numerics(10.0)
    with pytest.raises(ValueError, match="time goes forward"):
        model.numerics(5.0)


def test_the_respiration_trace_breathes_at_the_numeric_rate():
    model = PatientModel("hypoxia", seed=3)  # RR climbs from 16 towards 30
    numerics = [model.numerics(float(t)) for t in range(0, 301)]
    resp = model.waveform("resp", 240 * 25, 60 * 25).astype(float)
    upward = np.sum((resp[:-1] < 0) & (resp[1:] >= 0))  # one upward zero crossing a breath
    expected = np.mean([n.rr for n in numerics[240:300]])
    assert abs(upward - expected) <= 2, f"{upward} breaths in a minute, numeric RR {expected}"
