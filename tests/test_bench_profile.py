"""The benchmark says what is left for a target it missed: the profile of the point that
decided it, summarised from py-spy's collapsed stacks (bench/profile_summary.py)."""

from bench.profile_summary import where_the_time_went

STACKS = """\
<module> (<string>:1);run (asyncio/runners.py:190);_run_once (asyncio/base_events.py:1922);\
TelemetryIngest.read_from (server/ingest.py:79);TelemetryIngest.datagram_received \
(server/ingest.py:95);decode (vitalsim/protocol/telemetry.py:240) 30
<module> (<string>:1);run (asyncio/runners.py:190);_run_once (asyncio/base_events.py:1922);\
TelemetryIngest.read_from (server/ingest.py:79);TelemetryIngest.datagram_received \
(server/ingest.py:95);ReceiverStats.observe (vitalsim/protocol/stats.py:124) 20
<module> (<string>:1);run (asyncio/runners.py:190);_run_once (asyncio/base_events.py:1922);\
Station._flush (server/station.py:300);Station.bed_encoded (server/station.py:640) 40
<module> (<string>:1);run (asyncio/runners.py:190);_run_once (asyncio/base_events.py:1922);\
EpollSelector.select (selectors.py:468) 10
"""


def test_the_summary_names_the_courses_own_functions_by_their_share_of_the_samples(tmp_path):
    path = tmp_path / "point.txt"
    path.write_text(STACKS)
    text = where_the_time_went(path, top=4)
    assert text == ("TelemetryIngest.datagram_received 50%, TelemetryIngest.read_from 50%, "
                    "Station._flush 40%, Station.bed_encoded 40%, idle 10% (100 samples)")
    assert "run " not in text and "<module>" not in text, "not the library's frames"


def test_an_empty_profile_says_so_rather_than_divide_by_nothing(tmp_path):
    path = tmp_path / "empty.txt"
    path.write_text("")
    assert where_the_time_went(path) == "no samples"
