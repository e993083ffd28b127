"""course/recordings/hl7-mllp.pcap, read by Wireshark's own HL7 dissector (tshark) and by the
course's reader (scapy + the MLLP deframer): MSH and MSA segments, the reset, the re-send."""

from collections import Counter

from course.constants import RECORDED_HL7_PORT, RECORDINGS
from course.hl7_capture import mllp_exchange, tcp_events, tshark_hl7
from tests.requirements import require_tshark

PCAP = RECORDINGS / "hl7-mllp.pcap"


def test_tsharks_own_hl7_dissector_finds_msh_and_msa():
    require_tshark()
    rows = tshark_hl7(PCAP)
    assert rows, "tshark found no HL7 frame"
    kinds = Counter((r[1] == str(RECORDED_HL7_PORT), r[2], r[3]) for r in rows)
    # the station's messages and the engine's answers, as Wireshark names them
    assert kinds[(False, "ORU", "R01")] >= 1 and kinds[(False, "ORU", "R40")] >= 2
    assert kinds[(True, "ACK", "R01")] >= 1 and kinds[(True, "ORA", "R41")] >= 2
    for frame, port, _, _, segments in rows:
        names = [s.split("|", 1)[0] for s in segments.split(",") if s]
        assert names[0] == "MSH", (frame, names)
        if port == str(RECORDED_HL7_PORT):  # every answer carries its MSA
            assert "MSA" in names, (frame, names)
        else:
            assert "OBX" in names and "MSA" not in names, (frame, names)


def test_tshark_and_the_course_reader_see_the_same_messages():
    require_tshark()
    tshark = [(int(r[0]), f"{r[2]}^{r[3]}") for r in tshark_hl7(PCAP)]
    ours = mllp_exchange(PCAP)
    assert [(int(f), t) for f, t in zip(ours["frame"], ours["type"], strict=True)] == tshark


def test_the_capture_holds_one_reset_and_the_same_control_id_sent_again():
    packets = tcp_events(PCAP)
    resets = packets[packets["flags"].str.contains("R")]
    assert len(resets) == 1 and resets.iloc[0]["from"] == "engine"
    exchange = mllp_exchange(PCAP)
    sent = exchange[exchange["from"] == "station"]
    assert sent["connection"].nunique() == 2  # before and after the reset
    again = sent[sent.duplicated("control_id", keep=False)]
    assert again["connection"].nunique() == 2, again  # once on each connection
    answered = exchange[exchange["from"] == "engine"]
    resent_id = again["control_id"].iloc[0]
    assert list(answered[answered["answers"] == resent_id]["msa"]) == ["AA"]
    assert set(answered["answers"]) == set(sent["control_id"])
