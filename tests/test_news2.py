"""NEWS2 against the Royal College of Physicians' 2017 chart, band edges included."""

import pytest

from vitalsim.physiology import news2

NORMAL = {"rr": 16, "spo2": 97, "temp": 37.0, "systolic": 120, "hr": 70}


@pytest.mark.parametrize(("param", "value", "score"), [
    # respiration rate: <=8 3 | 9-11 1 | 12-20 0 | 21-24 2 | >=25 3
    ("rr", 8, 3), ("rr", 9, 1), ("rr", 11, 1), ("rr", 12, 0), ("rr", 20, 0), ("rr", 21, 2),
    ("rr", 24, 2), ("rr", 25, 3),
    # SpO2 scale 1: <=91 3 | 92-93 2 | 94-95 1 | >=96 0
    ("spo2", 91, 3), ("spo2", 92, 2), ("spo2", 93, 2), ("spo2", 94, 1), ("spo2", 95, 1),
    ("spo2", 96, 0),
    # systolic: <=90 3 | 91-100 2 | 101-110 1 | 111-219 0 | >=220 3
    ("systolic", 90, 3), ("systolic", 91, 2), ("systolic", 100, 2), ("systolic", 101, 1),
    ("systolic", 110, 1), ("systolic", 111, 0), ("systolic", 219, 0), ("systolic", 220, 3),
    # pulse: <=40 3 | 41-50 1 | 51-90 0 | 91-110 1 | 111-130 2 | >=131 3
    ("hr", 40, 3), ("hr", 41, 1), ("hr", 50, 1), ("hr", 51, 0), ("hr", 90, 0), ("hr", 91, 1),
    ("hr", 110, 1), ("hr", 111, 2), ("hr", 130, 2), ("hr", 131, 3),
    # temperature: <=35.0 3 | 35.1-36.0 1 | 36.1-38.0 0 | 38.1-39.0 1 | >=39.1 2
    ("temp", 35.0, 3), ("temp", 35.1, 1), ("temp", 36.0, 1), ("temp", 36.1, 0),
    ("temp", 38.0, 0), ("temp", 38.1, 1), ("temp", 39.0, 1), ("temp", 39.1, 2),
])
def test_each_parameter_band_edge(param, value, score):
    result = news2(**{**NORMAL, param: value})
    key = {"hr": "pulse"}.get(param, param)
    assert result.scores[key] == score
    assert result.total == score


@pytest.mark.parametrize(("spo2", "on_oxygen", "score"), [
    (83, False, 3), (84, False, 2), (85, False, 2), (86, False, 1), (87, False, 1),
    (88, False, 0), (92, False, 0), (93, False, 0), (97, False, 0),
    (93, True, 1), (94, True, 1), (95, True, 2), (96, True, 2), (97, True, 3),
])
def test_spo2_scale_2_for_hypercapnic_patients(spo2, on_oxygen, score):
    result = news2(**{**NORMAL, "spo2": spo2}, on_oxygen=on_oxygen, spo2_scale=2)
    assert result.scores["spo2"] == score


@pytest.mark.parametrize(("obs", "total", "band"), [
    (NORMAL, 0, "low"),
    ({**NORMAL, "hr": 95, "temp": 38.5}, 2, "low"),
    ({**NORMAL, "rr": 25}, 3, "low-medium"),  # a single 3 makes it low-medium
    ({**NORMAL, "rr": 22, "hr": 115, "temp": 38.4}, 5, "medium"),
    ({**NORMAL, "rr": 22, "hr": 115, "temp": 39.2}, 6, "medium"),
    ({**NORMAL, "rr": 26, "spo2": 93, "hr": 118, "systolic": 95}, 9, "high"),
])
def test_totals_and_clinical_risk_bands(obs, total, band):
    result = news2(**obs)
    assert (result.total, result.band) == (total, band)


def test_oxygen_and_consciousness_score():
    assert news2(**NORMAL, on_oxygen=True).scores["air_or_oxygen"] == 2
    result = news2(**NORMAL, consciousness="C")
    assert (result.total, result.band, result.any_single_3) == (3, "low-medium", True)


def test_missing_values_are_flagged_not_hidden():
    result = news2(**{**NORMAL, "spo2": None})
    assert result.missing == ("spo2",) and not result.complete


def test_bad_arguments_name_what_was_wrong():
    with pytest.raises(ValueError, match="consciousness"):
        news2(**NORMAL, consciousness="X")
    with pytest.raises(ValueError, match="spo2_scale"):
        news2(**NORMAL, spo2_scale=3)


@pytest.mark.parametrize("param", ["rr", "spo2", "temp", "systolic", "hr"])
def test_nan_is_refused_and_the_message_says_to_pass_none(param):
    # a NaN temperature would otherwise fail every band's comparison and score 2
    with pytest.raises(ValueError, match=f"{param} is NaN; pass None"):
        news2(**{**NORMAL, param: float("nan")})
