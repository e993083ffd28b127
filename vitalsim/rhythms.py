"""The cardiac rhythms the course's monitors label, and their one-byte codes on the wire.

One table, shared by the physiology (which beats in these rhythms), the alarms (which raise the
red-tier arrhythmia alarms), the telemetry codec and the scapy layer (which carry the code). The
order is the wire's: a rhythm's code is its index here plus one; code 0 means "no rhythm
analysed" (leads off: the monitor cannot see the ECG, so it names no rhythm).
"""

from __future__ import annotations

#: every rhythm name a monitor may send, in code order (code = index + 1)
RHYTHM_NAMES = (
    "sinus", "sinus_brady", "sinus_tachy", "af", "flutter", "svt", "block2", "block3",
    "vt", "vf", "asystole",
)
#: name -> wire code, and back (0: not analysed)
RHYTHM_CODE = {name: i + 1 for i, name in enumerate(RHYTHM_NAMES)}
RHYTHM_OF_CODE = {code: name for name, code in RHYTHM_CODE.items()}
#: what a monitor's rhythm label reads, per rhythm
RHYTHM_LABELS = {
    "sinus": "Sinus rhythm", "sinus_brady": "Sinus brady", "sinus_tachy": "Sinus tachy",
    "af": "Atrial fib", "flutter": "Atrial flutter", "svt": "SVT",
    "block2": "2nd deg block", "block3": "3rd deg block", "vt": "V-tach", "vf": "V-fib",
    "asystole": "Asystole",
}
#: rhythms with no cardiac output: no pulse at the finger or in the artery
PULSELESS = frozenset({"vf", "asystole"})
