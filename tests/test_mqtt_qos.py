"""MQTT's QoS levels through a reset connection, against a real mosquitto (course/mqtt_qos.py).

What must hold whatever the timing: QoS 0 and QoS 2 never repeat a message; QoS 1 with a persistent
session loses none (the broker keeps them while the subscriber is away); a clean session loses
the message in flight when its connection is reset (the broker forgets it with the session).
"""

from __future__ import annotations

import pytest

from course.mqtt_broker import Mosquitto
from course.mqtt_qos import COLUMNS, measure
from tests.helpers import run
from tests.requirements import require_mosquitto


@pytest.fixture
def broker():
    require_mosquitto()
    with Mosquitto() as b:
        yield b


def test_what_each_qos_loses_and_repeats_through_resets(broker):
    async def main():
        return [await measure(broker.port, qos, persistent=persistent, messages=80,
                              resets_at=(20, 40, 60))
                for qos, persistent in ((0, False), (1, False), (1, True), (2, True))]
    rows = run(main())
    print(COLUMNS, *(r.row() for r in rows), sep="\n")
    q0, q1_clean, q1_persistent, q2_persistent = rows
    assert all(r.resets == 3 for r in rows)
    assert q0.duplicated == 0
    assert q2_persistent.duplicated == 0
    assert q1_persistent.lost == 0
    assert q1_clean.lost > 0
