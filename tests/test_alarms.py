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


def test_a_high_alarm_clears_when_the_value_falls_below_the_low_limit():
    # HR 189 in VT, then 0 in asystole: 0 is not above 120, so HR HIGH must clear, and the low
    # side is HR LOW's business (a clear that needed the value inside both limits never came)
    m = AlarmMonitor(1001, 1, [Limit("hr", 50, 120, "medium", delay=0.0, hysteresis=3.0)])
    events = feed(m, [189, 189, 0, 0])
    assert [(t, e.state, e.condition, e.value) for t, e in events] == [
        (0, "raised", "HR HIGH", 189), (2, "cleared", "HR HIGH", 0), (3, "raised", "HR LOW", 0)]


def test_an_unmeasured_value_keeps_an_alarm_as_it_was():
    m = AlarmMonitor(1001, 1, [Limit("hr", 50, 120, "medium", delay=0.0, hysteresis=3.0)])
    assert [(t, e.state) for t, e in feed(m, [189, None, None])] == [(0, "raised")]


def test_severe_arterial_hypotension_is_high_priority():
    from vitalsim.alarms import default_limits

    m = AlarmMonitor(1001, 1, default_limits())
    events = [e for t in range(12) for e in m.update({"abp_sys": 18.0, "abp_dia": 14.0,
                                                      "abp_map": 15.0}, float(t))]
    raised = {e.condition: e.priority for e in events if e.state == "raised"}
    assert raised["ABP SYS EXTREME LOW"] == "high" and raised["ABP MAP EXTREME LOW"] == "high"
    assert raised["ABP SYS LOW"] == "medium", "the yellow tier stays beside the red one"
    # 70/45 (55): the yellow tier only
    m = AlarmMonitor(1001, 1, default_limits())
    events = [e for t in range(12) for e in m.update({"abp_sys": 70.0, "abp_dia": 45.0,
                                                      "abp_map": 55.0}, float(t))]
    assert {e.priority for e in events} == {"medium"}, events
