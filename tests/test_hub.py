"""The hub's outbox rules, without a station or a network: a fake socket whose writes complete
only when the test says so stands for a dashboard that reads slowly."""

import asyncio
import json
import logging

from server.hub import Hub
from tests.helpers import wait_until


class SlowSocket:
    """A dashboard's socket: each write waits until the test lets one through."""

    def __init__(self) -> None:
        self.written: list[dict] = []
        self.allowed = 0
        self._more = asyncio.Event()

    def let_through(self, writes: int) -> None:
        self.allowed += writes
        self._more.set()

    async def _write(self, message: str) -> None:
        while self.allowed == 0:
            self._more.clear()
            await self._more.wait()
        self.allowed -= 1
        self.written.append(json.loads(message))

    def write_message(self, message: str) -> asyncio.Future:
        return asyncio.ensure_future(self._write(message))

    def close(self, code: int | None = None, reason: str | None = None) -> None:
        pass


def vitals(socket: SlowSocket) -> list[dict[int, float]]:
    """Each vitals message the dashboard got, as {bed: reading}."""
    return [{b["bed"]: b["hr"] for b in m["beds"]} for m in socket.written
            if m["type"] == "vitals"]


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, timeout=20))


def test_a_slow_dashboard_is_owed_each_changed_bed_once_with_its_newest_value():
    async def main():
        readings = {bed: 60.0 for bed in range(1, 101)}  # a ward of 100 beds
        encodings = []

        def bed_encoded(bed: int) -> str:
            encodings.append(bed)
            return json.dumps({"bed": bed, "hr": readings[bed]})

        hub = Hub(lambda: {"beds": []}, bed_encoded=bed_encoded)
        slow, quick = SlowSocket(), SlowSocket()
        slow_client, quick_client = hub.add(slow), hub.add(quick)
        quick.let_through(1000)
        slow.let_through(1)  # the snapshot; then the slow dashboard is stuck
        await wait_until(lambda: len(slow.written) == 1, what="the snapshot")
        for tick, beds in enumerate(([3, 7], [7, 9], [11])):  # three ticks while it is stuck
            for bed in beds:
                readings[bed] = 100.0 + tick
            hub.push_vitals(beds)
            await wait_until(lambda t=tick: len(vitals(quick)) == t + 1, what="the quick one")
        assert vitals(quick) == [{3: 100.0, 7: 100.0}, {7: 101.0, 9: 101.0}, {11: 102.0}]
        assert slow_client.coalescing and slow_client.behind and vitals(slow) == [], \
            "it fell behind: what it is owed waits while its write is stuck"
        slow.let_through(1000)  # it reads again: what it is owed follows, with no tick
        await wait_until(lambda: len(vitals(slow)) == 2, what="the slow dashboard's vitals")
        # the first change's message was already being written when it got stuck; the next
        # two folded into one: every bed that changed since, each with its newest value, and
        # none of the 96 beds that did not change
        assert vitals(slow) == [{3: 100.0, 7: 100.0}, {7: 101.0, 9: 101.0, 11: 102.0}]
        assert slow_client.superseded == 1
        assert set(encodings) == {3, 7, 9, 11}, "only changed beds, never the whole ward"
        assert quick_client.superseded == 0 and quick_client.sent_at_once == 3
        await hub.close()
    run(main())


def test_a_new_subscription_is_owed_all_of_its_beds_and_only_them():
    async def main():
        hub = Hub(lambda: {"beds": []},
                  bed_encoded=lambda bed: json.dumps({"bed": bed, "hr": 70.0}))
        socket = SlowSocket()
        client = hub.add(socket)
        socket.let_through(1000)
        hub.subscribe_vitals(client, frozenset({2, 4, 99}), known=range(1, 11))
        await wait_until(lambda: vitals(socket), what="the subscribed beds")
        assert vitals(socket) == [{2: 70.0, 4: 70.0}]  # bed 99 has not been heard yet
        hub.push_vitals([1, 2, 3])
        await wait_until(lambda: len(vitals(socket)) == 2, what="the next delta")
        assert vitals(socket)[1] == {2: 70.0}, "only the subscribed bed that changed"
        await hub.close()
    run(main())


class FailingSocket(SlowSocket):
    """A dashboard whose every write fails: what a bug in encoding or sending looks like."""

    def __init__(self) -> None:
        super().__init__()
        self.closed_with: tuple[int | None, str | None] | None = None

    def write_message(self, message: str) -> asyncio.Future:
        future = asyncio.get_running_loop().create_future()
        future.set_exception(RuntimeError("the write failed"))
        return future

    def close(self, code: int | None = None, reason: str | None = None) -> None:
        self.closed_with = (code, reason)


class ClosableSlowSocket(SlowSocket):
    def __init__(self) -> None:
        super().__init__()
        self.closed_with: tuple[int | None, str | None] | None = None

    def close(self, code: int | None = None, reason: str | None = None) -> None:
        self.closed_with = (code, reason)


def alarm_ids(socket: SlowSocket) -> list[str]:
    return [m["alarm"]["alarm_id"] for m in socket.written if m["type"] == "alarm"]


def test_a_slow_dashboard_gets_every_alarm_in_order_and_one_too_far_behind_is_closed():
    async def main():
        # stall_after=0: a full queue with no write finished "just now" is too far behind
        hub = Hub(lambda: {"beds": []}, bed_encoded=lambda bed: "{}", max_alarm_queue=10,
                  stall_after=0.0)
        slow, lagging = ClosableSlowSocket(), ClosableSlowSocket()
        hub.add(slow)
        hub.add(lagging)
        slow.let_through(1)
        lagging.let_through(1)
        await wait_until(lambda: slow.written and lagging.written, what="the snapshots")
        for n in range(10):  # while both are stuck: exactly a full queue
            hub.push_alarm({"type": "alarm", "alarm": {"alarm_id": f"a{n}"}})
        slow.let_through(1000)
        await wait_until(lambda: len(alarm_ids(slow)) == 10, what="the slow one's alarms")
        assert alarm_ids(slow) == [f"a{n}" for n in range(10)], "none dropped, none reordered"
        # the lagging one's sender holds a0 (its write is stuck), so its queue is 9 long:
        # one more fills it, and the next is one too many
        hub.push_alarm({"type": "alarm", "alarm": {"alarm_id": "a10"}})
        assert lagging.closed_with is None
        hub.push_alarm({"type": "alarm", "alarm": {"alarm_id": "a11"}})
        assert lagging.closed_with == (4000, "too far behind on alarms; reconnect to resync")
        await wait_until(lambda: alarm_ids(slow)[-2:] == ["a10", "a11"], what="the last two")
        assert slow.closed_with is None and list(hub.clients) == [slow]
        await hub.close()
    run(main())


def test_a_dashboard_whose_send_fails_is_closed_with_a_reason_and_the_others_carry_on(caplog):
    async def main():
        hub = Hub(lambda: {"beds": []}, bed_encoded=lambda bed: "{}")
        broken, healthy = FailingSocket(), SlowSocket()
        hub.add(broken)
        hub.add(healthy)
        healthy.let_through(1000)
        await wait_until(lambda: broken.closed_with is not None, what="the broken one closed")
        code, reason = broken.closed_with
        assert code == 1011 and "reconnect" in reason
        assert broken not in hub.clients
        hub.push_alarm({"type": "alarm", "alarm": {"alarm_id": "x"}})
        await wait_until(lambda: alarm_ids(healthy) == ["x"], what="the healthy one's alarm")
        await hub.close()

    with caplog.at_level(logging.ERROR, logger="server.hub"):
        run(main())
    assert any(r.levelno == logging.ERROR and "closing a dashboard" in r.getMessage()
               for r in caplog.records)


def test_an_alarm_that_cannot_be_encoded_closes_every_dashboard_rather_than_skip_it():
    async def main():
        hub = Hub(lambda: {"beds": []}, bed_encoded=lambda bed: "{}")
        sockets = [ClosableSlowSocket(), ClosableSlowSocket()]
        for s in sockets:
            hub.add(s)
            s.let_through(1000)
        hub.push_alarm({"type": "alarm", "alarm": {"alarm_id": "x", "value": float("nan")}})
        assert [s.closed_with[0] if s.closed_with else None for s in sockets] == [1011, 1011]
        assert hub.clients == {}
    run(main())


def test_encoding_is_strict_an_object_json_has_no_type_for_is_never_sent_as_its_str(caplog):
    """A Decimal (or any object) in a message is a bug: the hub refuses to ``str()`` it onto the
    wire. An alarm closes every dashboard, a bed summary the dashboards it is owed to, a
    snapshot its new dashboard, each with 1011 and logged at ERROR; none is left silent."""
    from decimal import Decimal

    from server.hub import encode, encode_part

    for bad in (encode, encode_part):
        try:
            bad({"value": Decimal("1.5")})
        except ValueError as exc:
            assert "Decimal is not JSON" in str(exc)
        else:
            raise AssertionError(f"{bad.__name__} encoded a Decimal")

    async def main():
        hub = Hub(lambda: {"beds": []},
                  bed_encoded=lambda bed: encode_part({"bed": bed, "hr": Decimal("72")}))
        alarmed = [ClosableSlowSocket(), ClosableSlowSocket()]
        for s in alarmed:
            hub.add(s)
            s.let_through(1000)
        hub.push_alarm({"type": "alarm", "alarm": {"alarm_id": "x", "raised_at": Decimal(1)}})
        assert [s.closed_with[0] if s.closed_with else None for s in alarmed] == [1011, 1011]

        owed = ClosableSlowSocket()
        hub.add(owed)
        owed.let_through(1000)
        hub.push_vitals([1])
        await wait_until(lambda: owed.closed_with is not None, what="the dashboard closed")
        assert owed.closed_with[0] == 1011 and "reconnect" in owed.closed_with[1]
        assert not vitals(owed), "no vitals message with a str() in it"

        broken_snapshot = Hub(lambda: {"beds": [{"bed": 1, "hr": Decimal("72")}]},
                              bed_encoded=lambda bed: "{}")
        newcomer = ClosableSlowSocket()
        broken_snapshot.add(newcomer)
        assert newcomer.closed_with is not None and newcomer.closed_with[0] == 1011
        assert hub.clients == {} and broken_snapshot.clients == {}

    with caplog.at_level(logging.ERROR, logger="server.hub"):
        run(main())
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert any("cannot be encoded" in m for m in errors), errors
    assert sum("closing a dashboard" in m for m in errors) >= 2, errors


# -- the push policy: at once while a dashboard keeps up, coalesced once it does not ----------
# The hub has no timer of its own: the station calls hub.tick() at push_hz. Here the test is
# the tick, and the budget's clock is a number the test moves, so that "before the next tick"
# and "a second later" mean exactly that.

class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def hr_hub(clock: Clock, **kw) -> tuple[Hub, dict[int, float]]:
    readings: dict[int, float] = {}
    hub = Hub(lambda: {"beds": []}, clock=clock,
              bed_encoded=lambda bed: json.dumps({"bed": bed, "hr": readings.get(bed, 60.0)}),
              **kw)
    return hub, readings


async def reading_dashboard(hub: Hub) -> tuple[SlowSocket, object]:
    """A dashboard that reads everything it is sent, once it has its snapshot."""
    socket = SlowSocket()
    client = hub.add(socket)
    socket.let_through(1000)
    await wait_until(lambda: socket.written, what="the snapshot")
    return socket, client


def test_a_change_reaches_an_idle_dashboard_at_once_without_waiting_for_a_tick():
    async def main():
        hub, readings = hr_hub(Clock())
        socket, client = await reading_dashboard(hub)
        for n, bed in enumerate((4, 5, 6)):
            readings[bed] = 80.0 + n
            hub.push_vitals([bed])  # no hub.tick() anywhere in this test
            await wait_until(lambda n=n: len(vitals(socket)) == n + 1, what=f"change {n}")
        assert vitals(socket) == [{4: 80.0}, {5: 81.0}, {6: 82.0}]
        assert client.sent_at_once == 3 and client.sent_coalesced == 0
        assert not client.coalescing and client.superseded == 0
        await hub.close()
    run(main())


def test_a_dashboard_past_its_budget_coalesces_until_a_tick_finds_its_budget_refilled():
    async def main():
        clock = Clock()
        hub, readings = hr_hub(clock, push_budget=10.0, push_burst=2)
        socket, client = await reading_dashboard(hub)
        for bed in (1, 2):  # the burst: both at once
            hub.push_vitals([bed])
            await wait_until(lambda b=bed: len(vitals(socket)) == b, what=f"bed {bed} at once")
        hub.push_vitals([3])  # no budget left at this instant: from here on, coalesced
        await wait_until(lambda: client.coalescing, what="the switch to coalescing")
        readings[3] = 99.0
        hub.push_vitals([3, 4])
        hub.push_replaceable("wave:1", {"type": "wave", "bed": 1, "n": 1})
        hub.push_replaceable("wave:1", {"type": "wave", "bed": 1, "n": 2})
        hub.push_alarm({"type": "alarm", "alarm": {"alarm_id": "a1"}})
        await wait_until(lambda: alarm_ids(socket) == ["a1"],
                         what="the alarm, which never waits for a tick")
        assert len(vitals(socket)) == 2 and client.owed == {3, 4}, "updates wait for the tick"
        hub.tick()  # the same instant: the budget has not refilled
        await wait_until(lambda: len(vitals(socket)) == 3, what="the tick's vitals")
        assert vitals(socket)[2] == {3: 99.0, 4: 60.0}, "each owed bed once, newest value"
        waves = [m for m in socket.written if m["type"] == "wave"]
        assert [w["n"] for w in waves] == [2] and client.superseded == 2  # wave 1, vitals
        assert client.coalescing and client.sent_coalesced == 2
        clock.now += 1.0  # a second later: the budget has refilled
        hub.tick()
        assert not client.coalescing, "back to sending at once"
        hub.push_vitals([7])
        await wait_until(lambda: len(vitals(socket)) == 4, what="bed 7, at once again")
        assert client.sent_at_once == 3 and client.sent_coalesced == 2
        await hub.close()
    run(main())


def test_a_dashboard_that_falls_behind_coalesces_and_is_sent_at_once_again_once_caught_up():
    async def main():
        hub, readings = hr_hub(Clock())
        socket = SlowSocket()
        client = hub.add(socket)
        socket.let_through(2)  # the snapshot and one vitals message
        hub.push_vitals([1])
        await wait_until(lambda: len(vitals(socket)) == 1, what="bed 1, at once")
        readings[2] = 70.0
        hub.push_vitals([2])  # its write gets stuck: the dashboard stopped reading
        await wait_until(lambda: client.behind, what="the stuck write")
        for hr in (71.0, 72.0):  # changes that come while it is behind
            readings[2] = hr
            hub.push_vitals([2, 3])
        assert client.coalescing, "a change came while a write was under way"
        hub.tick()  # still behind: nothing more is queued behind the stuck write
        assert client.coalescing and client.owed == {2, 3}
        assert vitals(socket) == [{1: 60.0}], "bed 2's write is stuck; the owed beds wait"
        socket.let_through(1000)  # it reads again: caught up, with no tick anywhere below
        await wait_until(lambda: len(vitals(socket)) == 3, what="the owed beds")
        assert vitals(socket)[2] == {2: 72.0, 3: 60.0}, "each owed bed once, newest value"
        assert not client.coalescing and client.sent_coalesced == 1, \
            "one coalesced message, then back to sending at once (its budget has room)"
        hub.push_vitals([5])
        await wait_until(lambda: len(vitals(socket)) == 4, what="bed 5, at once again")
        await hub.close()
    run(main())


def test_a_dashboard_only_over_budget_gets_what_it_is_owed_once_the_budget_has_room():
    async def main():
        clock = Clock()
        hub, readings = hr_hub(clock, push_budget=10.0, push_burst=1)
        socket, client = await reading_dashboard(hub)
        hub.push_vitals([1])
        await wait_until(lambda: len(vitals(socket)) == 1, what="bed 1 at once")
        hub.push_vitals([2])
        await wait_until(lambda: client.regime == "over budget", what="the budget spent")
        hub.push_vitals([2, 3])
        clock.now += 0.2  # room for one more message (10 a second), and no tick at all
        await wait_until(lambda: len(vitals(socket)) == 2, what="the owed beds, paced")
        assert vitals(socket)[1] == {2: 60.0, 3: 60.0} and client.sent_coalesced == 1
        await hub.close()
    run(main())


def test_dashboards_owed_the_same_beds_share_one_vitals_message_until_the_beds_change():
    async def main():
        readings = {bed: 60.0 for bed in range(1, 5)}
        built = []

        def bed_encoded(bed: int) -> str:
            built.append(bed)
            return json.dumps({"bed": bed, "hr": readings[bed]})

        hub = Hub(lambda: {"beds": []}, bed_encoded=bed_encoded)
        sockets = [SlowSocket() for _ in range(3)]
        for s in sockets:
            hub.add(s)
            s.let_through(1000)
        hub.push_vitals([1, 2])
        await wait_until(lambda: all(len(vitals(s)) == 1 for s in sockets), what="three sends")
        assert built == [1, 2], "one message for the three dashboards, each bed looked up once"
        readings[2] = 90.0
        hub.push_vitals([1, 2])
        await wait_until(lambda: all(len(vitals(s)) == 2 for s in sockets), what="the change")
        assert all(vitals(s)[1] == {1: 60.0, 2: 90.0} for s in sockets), "never the old one"
        assert built == [1, 2, 1, 2]
        await hub.close()
    run(main())
