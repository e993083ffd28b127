"""The bedside monitor's own alarm logic: limits, delays and hysteresis, on simulated time."""

from vitalsim.alarms import AlarmMonitor, Limit

HR = Limit("hr", 40, 130, "high", delay=5.0, hysteresis=3.0)


def feed(monitor, values, start=0.0):
    out = []
    for i, v in enumerate(values):
        out += [(start + i, e) for e in monitor.update({"hr": v}, start + i, stamp=1000.0 + i)]
    return out


def test_a_breach_must_last_the_alarm_delay_before_it_is_raised():
    events = feed(AlarmMonitor(1001, 1, [HR]), [120, 135, 136, 137, 138, 139, 140])
    assert [(t, e.state, e.condition) for t, e in events] == [(6, "raised", "HR HIGH")]
    assert events[0][1].timestamp == 1006.0, "stamped with the device's wall clock"
    assert (events[0][1].value, events[0][1].limit) == (140, 130)


def test_a_brief_spike_does_not_alarm():
    assert feed(AlarmMonitor(1001, 1, [HR]), [120, 140, 141, 120, 140, 141, 120]) == []


def test_clearing_needs_the_value_back_inside_by_the_hysteresis():
    m = AlarmMonitor(1001, 1, [Limit("hr", 40, 130, "high", delay=0.0, hysteresis=3.0)])
    events = feed(m, [135, 129, 128, 127, 135])
    assert [(t, e.state) for t, e in events] == [(0, "raised"), (3, "cleared"), (4, "raised")]
    raised, cleared, again = (e for _, e in events)
    assert cleared.alarm_id == raised.alarm_id + "c", "the clear names the alarm it ends"
    assert again.alarm_id != raised.alarm_id, "a new episode is a new alarm"


def test_a_low_limit_and_an_unmeasured_value():
    m = AlarmMonitor(1001, 1, [Limit("spo2", 90, None, "high", delay=2.0)])
    events = [e for t, v in enumerate([88, 88, None, 88, 88, 88])
              for e in m.update({"spo2": v}, float(t))]
    # the probe went off at t=2: the delay starts again from t=3
    assert [(e.state, e.condition, e.timestamp) for e in events] == [("raised", "SpO2 LOW", 5.0)]
