"""The station's FHIR R4 Bundle of a bed's vitals, validated by fhir.resources (a library that
knows FHIR's structure; the station's code builds plain JSON without it). fhir.resources 8 has
R5, R4B and STU3 models; R4B (4.3) is R4 (4.0.1) with the same Bundle and Observation, so it is
the one that checks an R4 document."""

import json
import math

import pytest
from fhir.resources.R4B.bundle import Bundle
from hypothesis import given, settings
from hypothesis import strategies as st
from tornado.httpclient import AsyncHTTPClient, HTTPClientError

from server.fhir import bed_bundle
from tests.helpers import run
from vitalsim import codes
from vitalsim.protocol import NumericsMessage

READING = NumericsMessage(1003, 3, 42, 1795000000.25, 0, 72.0, 94.0, 18.0, 37.2,
                          120.0, 80.0, 93.3, 310.0)  # nibp_time: simulated seconds


def validated(bundle: dict):
    """The Bundle as fhir.resources reads it: raises if it is not valid FHIR."""
    return Bundle.model_validate(bundle)


def test_the_bundle_is_valid_fhir_with_loinc_ucum_device_and_time():
    bundle = validated(bed_bundle(READING, patient="Stable adult"))
    observations = {o.resource.code.coding[0].code: o.resource for o in bundle.entry}
    assert set(observations) == {"8867-4", "2708-6", "9279-1", "8310-5", "85354-9"}
    hr = observations["8867-4"]
    assert hr.status == "final"
    assert hr.category[0].coding[0].code == "vital-signs"
    assert "http://hl7.org/fhir/StructureDefinition/heartrate" in hr.meta.profile
    assert (hr.valueQuantity.value, hr.valueQuantity.code, hr.valueQuantity.system) == \
        (72, "/min", "http://unitsofmeasure.org")
    assert [(c.system, c.code) for c in hr.code.coding][1] == \
        ("urn:iso:std:iso:11073:10101", "147842")
    assert hr.device.reference == "Device/1003"
    assert hr.effectiveDateTime.isoformat().startswith("2026-11-18T")
    assert observations["2708-6"].valueQuantity.code == "%"
    assert [c.code for c in observations["2708-6"].code.coding[:2]] == ["2708-6", "59408-5"]
    assert observations["8310-5"].valueQuantity.code == "Cel"
    bp = observations["85354-9"]
    assert [(c.code.coding[0].code, float(c.valueQuantity.value), c.valueQuantity.code)
            for c in bp.component] == [("8480-6", 120, "mm[Hg]"), ("8462-4", 80, "mm[Hg]"),
                                       ("8478-0", 93.3, "mm[Hg]")]
    # the reading's time, not nibp_time (simulated seconds, which would be 1970)
    assert bp.effectiveDateTime.timestamp() == pytest.approx(1795000000.25)


def test_a_value_not_available_has_no_observation():
    probe_off = NumericsMessage(1001, 1, 1, 1795000000.0, 0, 70.0, None, 16.0, 37.0)
    bundle = validated(bed_bundle(probe_off))
    assert [e.resource.code.coding[0].code for e in bundle.entry] == \
        ["8867-4", "9279-1", "8310-5"]


@pytest.mark.parametrize("field, breaks", [
    ("code", lambda r: r.pop("code")),  # required by Observation
    ("effectiveDateTime", lambda r: r.update(effectiveDateTime="yesterday")),
    ("valueQuantity", lambda r: r["valueQuantity"].update(value="seventy")),
    ("colour", lambda r: r.update(colour="red")),  # no such element
])
def test_a_bundle_that_breaks_fhir_is_refused_by_the_validator(field, breaks):
    """The validation can fail. (fhir.resources checks structure and types, not value sets:
    the vital-signs status and category are asserted by the test above.)"""
    broken = bed_bundle(READING)
    breaks(broken["entry"][0]["resource"])
    with pytest.raises(ValueError, match=field):
        validated(broken)


finite = st.floats(0, 300, allow_nan=False).map(lambda v: round(v, 2))


@given(st.tuples(*[st.one_of(st.none(), finite)] * 7))
@settings(max_examples=60, deadline=None)
def test_every_reading_gives_a_valid_bundle(values):
    reading = NumericsMessage(1002, 2, 5, 1795000000.0, 0, *values, 120.0)
    bundle = validated(bed_bundle(reading))
    shown = {e.resource.code.coding[0].code for e in bundle.entry}
    for code in codes.CODES:
        if code.panel is None:
            assert (code.loinc[0] in shown) == (getattr(reading, code.field) is not None)
    json.dumps(bed_bundle(reading), allow_nan=False)


def test_the_station_serves_it_and_names_a_bad_bed():
    from server import System

    async def main():
        async with System.ephemeral(beds=2, waves=False) as system:
            await system.wait_ready()
            client = AsyncHTTPClient()
            response = await client.fetch(system.url + "api/beds/2/fhir")
            assert response.headers["Content-Type"].startswith("application/fhir+json")
            bundle = validated(json.loads(response.body))
            latest = system.station.beds.beds[2].latest
            hr = next(e.resource for e in bundle.entry
                      if e.resource.code.coding[0].code == "8867-4")
            assert hr.device.reference == "Device/1002"
            assert math.isfinite(float(hr.valueQuantity.value))
            assert hr.effectiveDateTime.timestamp() >= latest.sent_at - 5
            with pytest.raises(HTTPClientError) as err:
                await client.fetch(system.url + "api/beds/9/fhir")
            assert err.value.code == 404
            assert "no bed 9" in json.loads(err.value.response.body)["error"]

    run(main())


def test_each_loinc_code_carries_its_own_display():
    """LOINC 2708-6 is oxygen saturation in arterial blood, however measured; 59408-5 is the
    same by pulse oximetry. Each coding names its own code, never another's."""
    reading = NumericsMessage(1002, 2, 5, 1795000000.0, 0, 72.0, 94.0, 18.0, 37.2, 121.0,
                              79.0, 93.0, 120.0)
    displays = {}
    for entry in validated(bed_bundle(reading)).entry:
        codings = [entry.resource.code.coding]
        codings += [c.code.coding for c in entry.resource.component or []]
        for coding in (c for group in codings for c in group):
            if coding.system == codes.LOINC_SYSTEM:
                assert displays.setdefault(coding.code, coding.display) == coding.display
    assert displays["2708-6"] == "Oxygen saturation in Arterial blood"
    assert displays["59408-5"] == "Oxygen saturation in Arterial blood by Pulse oximetry"
    assert displays["8867-4"] == "Heart rate"
    # no two codes share a display
    assert len(set(displays.values())) == len(displays)


def test_a_code_needs_a_display_for_each_loinc_code():
    with pytest.raises(ValueError, match="2 LOINC codes"):
        codes.Code("spo2", "SpO2", 150456, "MDC_PULS_OXIM_SAT_O2", 262688, "MDC_DIM_PERCENT",
                   ("2708-6", "59408-5"), ("Oxygen saturation in Arterial blood",), "%",
                   "1.2.1.1")
