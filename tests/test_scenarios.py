"""Scenario files: every shipped one loads, and a bad one gets an error naming file and field."""

import pytest

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
