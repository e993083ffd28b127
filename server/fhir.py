"""A bed's latest vitals as a FHIR R4 Bundle of vital-signs Observations.

What ``GET /api/beds/{id}/fhir`` returns: the same reading the HL7 ``ORU^R01`` carries, as
a newer hospital system wants it. Each Observation follows the FHIR R4 Vital Signs profile
(http://hl7.org/fhir/R4/observation-vitalsigns.html): category ``vital-signs``, its LOINC code
(with the MDC code beside it, as a second coding), a UCUM unit, the device that measured it,
and when. Systolic, diastolic and mean blood pressure are components of one blood pressure
panel Observation (85354-9), as the profile requires. All codes come from
:mod:`vitalsim.codes`.
"""

from __future__ import annotations

import math
import uuid
from datetime import UTC, datetime

from vitalsim import codes
from vitalsim.protocol import NumericsMessage

CATEGORY = {"coding": [{
    "system": "http://terminology.hl7.org/CodeSystem/observation-category",
    "code": "vital-signs", "display": "Vital Signs"}], "text": "Vital Signs"}
DEVICE_SYSTEM = "urn:vitalsim:device"  # the ward's device ids, as in OBX-18


def fhir_time(t: float) -> str:
    """An epoch time as FHIR's dateTime (UTC, milliseconds)."""
    return datetime.fromtimestamp(t, UTC).isoformat(timespec="milliseconds").replace(
        "+00:00", "Z")


def _coding(code: codes.Code) -> list[dict]:
    return [{"system": codes.LOINC_SYSTEM, "code": loinc, "display": display}
            for loinc, display in zip(code.loinc, code.loinc_display, strict=True)] + [
        {"system": codes.MDC_SYSTEM, "code": str(code.mdc), "display": code.mdc_name}]


def _quantity(code: codes.Code, value: float) -> dict:
    return {"value": round(value, 2), "unit": code.ucum, "system": codes.UCUM_SYSTEM,
            "code": code.ucum}


def bed_bundle(reading: NumericsMessage, *, patient: str | None = None,
               bundle_time: float | None = None) -> dict:
    """The Bundle (type ``collection``) of one bed's reading: an Observation per numeric it
    has (none for a value not available), the blood pressure as one panel."""
    bed, device = reading.bed, reading.device_id
    subject = {"reference": f"Patient/bed{bed}", "display": patient or f"Bed {bed}"}
    device_ref = {"reference": f"Device/{device}",
                  "identifier": {"system": DEVICE_SYSTEM, "value": str(device)},
                  "display": f"bedside monitor {device}"}

    def observation(oid: str, code: dict, at: float, profile: str, **value: object) -> dict:
        return {"resourceType": "Observation", "id": oid,
                "meta": {"profile": [codes.VITAL_SIGNS_PROFILE,
                                     f"http://hl7.org/fhir/StructureDefinition/{profile}"]},
                "status": "final", "category": [CATEGORY], "code": code, "subject": subject,
                "effectiveDateTime": fhir_time(at), "device": device_ref, **value}

    resources = []
    components = []
    for code in codes.CODES:
        value = getattr(reading, code.field, None)
        if value is None or not math.isfinite(value):
            continue
        if code.panel is not None:
            components.append({"code": {"coding": _coding(code), "text": code.display},
                               "valueQuantity": _quantity(code, value)})
            continue
        resources.append(observation(
            f"bed{bed}-{code.field}-{reading.seq}",
            {"coding": _coding(code), "text": code.display}, reading.sent_at,
            code.fhir_profile, valueQuantity=_quantity(code, value)))
    if components:
        # the reading's send time, as for every Observation: the cuff's nibp_time is in
        # simulated seconds, not a time of day
        at = reading.sent_at
        resources.append(observation(
            f"bed{bed}-bp-{reading.seq}",
            {"coding": [{"system": codes.LOINC_SYSTEM, "code": codes.BP_PANEL[0],
                         "display": codes.BP_PANEL[1]},
                        {"system": codes.MDC_SYSTEM, "code": str(codes.NIBP_GROUP[0]),
                         "display": codes.NIBP_GROUP[1]}],
             "text": "Blood pressure (non-invasive)"}, at, "bp", component=components))
    return {"resourceType": "Bundle", "type": "collection",
            "timestamp": fhir_time(bundle_time if bundle_time is not None
                                   else reading.sent_at),
            "entry": [{"fullUrl": _full_url(r["id"]), "resource": r} for r in resources]}


def _full_url(oid: str) -> str:
    """A Bundle entry's absolute identity: a UUID named by the Observation's id, the same
    for the same reading every time it is asked for."""
    return f"urn:uuid:{uuid.uuid5(uuid.NAMESPACE_URL, 'vitalsim:Observation/' + oid)}"
