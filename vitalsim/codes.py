"""The one code table: each numeric the monitors send, as the hospital's systems name it.

HL7 v2 (IHE PCD-01 and PCD-04) names a measurement by its IEEE 11073-10101 (MDC) code and unit
code; FHIR R4 names it by LOINC with a UCUM unit. Every export (server.hl7_messages,
server.fhir) reads this table and nothing else, so a new numeric (an ETCO2, an arterial line)
is one row here.

Where each code comes from (checked for this course):

- MDC codes are IEEE 11073-10101 nomenclature, written as ``partition * 65536 + term``: the
  physiological partition is 2 (base 131072), units 4 (base 262144), events 3 (base 196608).
  Each code below was checked against that arithmetic on the term codes of IEEE 11073-10101
  (e.g. MDC_PULS_OXIM_SAT_O2 is term 19384, 131072 + 19384 = 150456), against the HL7 FHIR R4
  DeviceMetric type value set (http://hl7.org/fhir/R4/valueset-devicemetric-type.html, which
  lists the 11073-10101 codes), and against the IHE PCD Technical Framework Vol. 2's PCD-01
  and PCD-04 examples (OBX-3 ``150021^MDC_PRESS_BLD_NONINV_SYS^MDC``, unit
  ``266016^MDC_DIM_MMHG^MDC``; ``196616^MDC_EVT_ALARM^MDC``, ``68481^MDC_ATTR_EVENT_PHASE^MDC``).
- LOINC codes and UCUM units are those the FHIR R4 Vital Signs profile requires
  (http://hl7.org/fhir/R4/observation-vitalsigns.html, table "Vital Signs"): heart rate
  8867-4 /min, oxygen saturation 2708-6 with 59408-5 (by pulse oximetry) %, respiratory rate
  9279-1 /min, body temperature 8310-5 Cel, blood pressure panel 85354-9 with systolic 8480-6
  and diastolic 8462-4 mm[Hg]; mean blood pressure 8478-0 is from LOINC (https://loinc.org/8478-0).
"""

from __future__ import annotations

from dataclasses import dataclass

MDC_SYSTEM = "urn:iso:std:iso:11073:10101"  # FHIR's system URI for the 11073-10101 codes
LOINC_SYSTEM = "http://loinc.org"
UCUM_SYSTEM = "http://unitsofmeasure.org"


@dataclass(frozen=True)
class Code:
    """One numeric channel: its field in :class:`vitalsim.protocol.NumericsMessage`, the label
    its alarms carry (``"HR HIGH"``), its MDC code and unit, its LOINC codes and UCUM unit."""

    field: str
    label: str
    mdc: int
    mdc_name: str
    mdc_unit: int
    mdc_unit_name: str
    loinc: tuple[str, ...]  # the first is the FHIR Vital Signs profile's code
    loinc_display: tuple[str, ...]  # each LOINC code's own display (LOINC's long common name)
    ucum: str
    containment: str  # OBX-4 in PCD-01: MDS.VMD.channel.metric in this monitor's layout
    panel: str | None = None  # a component of this LOINC panel (NIBP) rather than its own
    fhir_profile: str = "vitalsigns"  # the FHIR R4 vital signs profile it meets

    def __post_init__(self) -> None:
        if len(self.loinc_display) != len(self.loinc):
            raise ValueError(f"{self.field}: {len(self.loinc)} LOINC codes {self.loinc} but "
                             f"{len(self.loinc_display)} displays; give each code its own")

    @property
    def display(self) -> str:
        """The first LOINC code's display: the text a FHIR Observation's code carries."""
        return self.loinc_display[0]


#: every numeric the station knows, in the order a PCD-01 message lists them
CODES: tuple[Code, ...] = (
    Code("hr", "HR", 147842, "MDC_ECG_HEART_RATE", 264864, "MDC_DIM_BEAT_PER_MIN",
         ("8867-4",), ("Heart rate",), "/min", "1.1.1.1", fhir_profile="heartrate"),
    Code("spo2", "SpO2", 150456, "MDC_PULS_OXIM_SAT_O2", 262688, "MDC_DIM_PERCENT",
         ("2708-6", "59408-5"), ("Oxygen saturation in Arterial blood",
                                 "Oxygen saturation in Arterial blood by Pulse oximetry"), "%",
         "1.2.1.1", fhir_profile="oxygensat"),
    Code("rr", "RR", 151562, "MDC_RESP_RATE", 264928, "MDC_DIM_RESP_PER_MIN",
         ("9279-1",), ("Respiratory rate",), "/min", "1.3.1.1", fhir_profile="resprate"),
    Code("temp", "TEMP", 150344, "MDC_TEMP", 268192, "MDC_DIM_DEGC",
         ("8310-5",), ("Body temperature",), "Cel", "1.4.1.1", fhir_profile="bodytemp"),
    Code("nibp_sys", "NIBP SYS", 150021, "MDC_PRESS_BLD_NONINV_SYS", 266016, "MDC_DIM_MMHG",
         ("8480-6",), ("Systolic blood pressure",), "mm[Hg]", "1.5.1.1", panel="85354-9",
         fhir_profile="bp"),
    Code("nibp_dia", "NIBP DIA", 150022, "MDC_PRESS_BLD_NONINV_DIA", 266016, "MDC_DIM_MMHG",
         ("8462-4",), ("Diastolic blood pressure",), "mm[Hg]", "1.5.1.2", panel="85354-9",
         fhir_profile="bp"),
    Code("nibp_map", "NIBP MEAN", 150023, "MDC_PRESS_BLD_NONINV_MEAN", 266016, "MDC_DIM_MMHG",
         ("8478-0",), ("Mean blood pressure",), "mm[Hg]", "1.5.1.3", panel="85354-9",
         fhir_profile="bp"),
)

#: the NIBP group: MDC_PRESS_BLD_NONINV (150020), and the FHIR blood pressure panel
NIBP_GROUP = (150020, "MDC_PRESS_BLD_NONINV")
BP_PANEL = ("85354-9", "Blood pressure panel with all children optional")
#: the vital-signs category and profile every FHIR Observation carries
VITAL_SIGNS_PROFILE = "http://hl7.org/fhir/StructureDefinition/vitalsigns"

#: PCD-04 (alarm communication) event and attribute codes, IEEE 11073-10101 partition 3 and 1
MDC_EVT_ALARM = (196616, "MDC_EVT_ALARM")  # an alarm whose kind no code below names
MDC_EVT_HI = (196648, "MDC_EVT_HI")  # a numeric above its high limit
MDC_EVT_LO = (196670, "MDC_EVT_LO")  # ... below its low limit
MDC_ATTR_EVENT_PHASE = (68481, "MDC_ATTR_EVENT_PHASE")  # start | continue | end
MDC_ATTR_ALARM_STATE = (68482, "MDC_ATTR_ALARM_STATE")  # inactive | active | latched
MDC_ATTR_ALARM_INACTIVATION_STATE = (68483, "MDC_ATTR_ALARM_INACTIVATION_STATE")
MDC_ATTR_ALARM_PRIORITY = (68484, "MDC_ATTR_ALARM_PRIORITY")  # PN | PL | PM | PH
MDC_ATTR_ALERT_TYPE = (68485, "MDC_ATTR_ALERT_TYPE")  # SP physiological | ST technical

#: the course's alarm priorities as PCD-04's (OBX-5 of MDC_ATTR_ALARM_PRIORITY)
PRIORITY_CODES = {"high": "PH", "medium": "PM", "low": "PL"}

BY_FIELD = {c.field: c for c in CODES}
BY_MDC = {c.mdc: c for c in CODES}
BY_LABEL = {c.label.upper(): c for c in CODES}


def code_of(field: str) -> Code:
    """The row of a numeric field (``"spo2"``); KeyError names the fields there are."""
    try:
        return BY_FIELD[field]
    except KeyError:
        raise KeyError(f"no code for numeric {field!r}; known: {sorted(BY_FIELD)}") from None


def alarm_source(condition: str, parameter: str | None = None) -> tuple[Code | None, str]:
    """What an alarm is about, from its condition (``"SpO2 LOW"``) or, when the alarm names it,
    its ``parameter`` (``"spo2"``): the numeric's row (None for a technical alarm such as
    ``"TELEMETRY LOST"``) and ``"high"``, ``"low"`` or ``""``."""
    words = condition.upper().rsplit(" ", 1)
    side = words[1].lower() if len(words) == 2 and words[1] in ("HIGH", "LOW") else ""
    if parameter is not None and parameter in BY_FIELD:
        return BY_FIELD[parameter], side
    label = words[0] if side else condition.upper()
    return BY_LABEL.get(label), side


def alarm_event_code(condition: str, parameter: str | None = None) -> tuple[int, str]:
    """The PCD-04 event code of an alarm: MDC_EVT_HI/LO for a numeric past a limit,
    MDC_EVT_ALARM for anything else."""
    code, side = alarm_source(condition, parameter)
    if code is not None and side == "high":
        return MDC_EVT_HI
    if code is not None and side == "low":
        return MDC_EVT_LO
    return MDC_EVT_ALARM
