"""Dashboard sessions and Origin: the token URL, the HttpOnly cookie, 401 and 403 before
anything is read or upgraded, roles, and the ack recording the logged-in operator.

The attacks of issue 16 against the dashboard: reading every patient without logging in, a page
from another origin opening the WebSocket with the operator's cookie (cross-site WebSocket
hijacking), a viewer acknowledging, and an ack under a made-up name. Each is refused, counted in
``/api/stats`` -> ``sessions.refused``, and changes no alarm. A Chromium test of the same is in
``tests/test_browser_sessions.py``."""

import json
import time

import pytest
from tornado.httpclient import AsyncHTTPClient, HTTPClientError, HTTPRequest
from tornado.websocket import websocket_connect

from server.sessions import (
    COOKIE,
    Operator,
    Sessions,
    UserFileError,
    load_users,
    origin_allowed,
    save_users,
)
from tests.helpers import run, wait_until
from tests.station_client import alarm, alarm_connection, running, station

NURSE = Operator("amy", "nurse", "a" * 48)
VIEWER = Operator("bob", "viewer", "b" * 48)


def with_sessions(**kw):
    return station(operators=[NURSE, VIEWER], **kw)


async def fetch(url: str, **kw):
    """The response whatever its status."""
    try:
        return await AsyncHTTPClient().fetch(HTTPRequest(url, follow_redirects=False, **kw))
    except HTTPClientError as exc:
        return exc.response


def test_sessions_log_in_by_token_and_nothing_else_and_end_after_max_age():
    s = Sessions([NURSE, VIEWER], max_sessions=2, max_age=100.0)
    assert s.login("x" * 48, 0.0) is None and s.by_token("") is None
    first = s.login(NURSE.token, 0.0)
    assert s.operator(first, 99.0) == NURSE and s.operator("forged", 0.0) is None
    assert s.operator(first, 100.0) is None and s.operator(first, 0.0) is None  # ended, gone
    first = s.login(NURSE.token, 0.0)
    s.login(VIEWER.token, 0.0)
    s.login(VIEWER.token, 0.0)
    assert s.operator(first, 0.0) is None  # the oldest session went: memory is bounded


def test_origin_is_the_stations_own_or_an_allowed_one():
    assert origin_allowed("http://127.0.0.1:8080", "127.0.0.1:8080", ())
    assert not origin_allowed("http://127.0.0.1:9999", "127.0.0.1:8080", ())
    assert not origin_allowed("http://evil.example", "127.0.0.1:8080", ())
    assert not origin_allowed("null", "127.0.0.1:8080", ())
    assert origin_allowed("http://hub:8000", "127.0.0.1:8080", ("http://hub:8000",))


def test_a_user_file_round_trips_and_a_bad_one_is_refused_naming_why(tmp_path):
    path = tmp_path / "users.json"
    save_users([NURSE, VIEWER], path)
    assert load_users(path) == [NURSE, VIEWER] and path.stat().st_mode & 0o777 == 0o600
    assert "a" * 48 not in repr(NURSE)
    path.write_text(json.dumps({"format": "vitalsim-users", "version": 1, "users": [
        {"name": "x", "role": "chief of medicine", "token": "c" * 48}]}))
    with pytest.raises(UserFileError, match="role 'chief of medicine' is not one of"):
        load_users(path)


def test_api_and_websocket_without_a_session_are_refused_before_anything_is_read():
    async def main():
        async with running(with_sessions()) as st:
            resp = await fetch(st.url + "api/beds")
            assert resp.code == 401 and "token URL" in json.loads(resp.body)["error"]
            assert (await fetch(st.url + "healthz")).code == 200  # says nothing about patients
            page = await fetch(st.url)
            assert page.code == 401 and b"token URL" in page.body
            with pytest.raises(HTTPClientError) as err:
                await websocket_connect(st.url.replace("http", "ws") + "ws")
            assert err.value.code == 401
            assert not st.hub.clients  # never upgraded, never added
            bad = await fetch(st.url + "api/beds", headers={"Authorization": "Bearer nope"})
            assert bad.code == 401
            assert st.stats()["sessions"]["refused"] == {"no_session": 3, "bad_token": 1}
    run(main())


def test_the_token_url_sets_an_httponly_samesite_cookie_that_opens_api_and_websocket():
    async def main():
        async with running(with_sessions()) as st:
            assert st.login_url() == st.url + "?token=" + NURSE.token
            resp = await fetch(st.login_url())
            assert resp.code == 302 and resp.headers["Location"] == "./"
            cookie = resp.headers["Set-Cookie"]
            assert "HttpOnly" in cookie and "SameSite=Strict" in cookie, cookie
            assert "Max-Age=43200" in cookie, cookie  # ends after a shift
            session = cookie.split(";")[0]
            assert session.startswith(COOKIE + "=") and NURSE.token not in cookie
            me = await fetch(st.url + "api/me", headers={"Cookie": session})
            assert json.loads(me.body) == {"sessions": True, "user": "amy", "role": "nurse",
                                           "may_act": True}
            assert (await fetch(st.url, headers={"Cookie": session})).code == 200
            bearer = await fetch(st.url + "api/beds",
                                 headers={"Authorization": f"Bearer {st.token('bob')}"})
            assert bearer.code == 200
            ws = await websocket_connect(HTTPRequest(st.url.replace("http", "ws") + "ws",
                                                     headers={"Cookie": session}))
            assert json.loads(await ws.read_message())["type"] == "snapshot"
            ws.close()
            assert (await fetch(st.url + "?token=" + "z" * 48)).code == 401
    run(main())


def test_a_page_from_another_origin_is_refused_even_with_the_operators_cookie():
    """Cross-site WebSocket hijacking: the browser sends the cookie with a WebSocket handshake
    from any page (other ports of 127.0.0.1 are the same *site*); only the Origin check stops
    it, before the upgrade. An allowed origin (a hub's) is let in."""
    async def main():
        async with running(with_sessions(allowed_origins=("http://hub.example:8000",))) as st:
            session = (await fetch(st.login_url())).headers["Set-Cookie"].split(";")[0]
            ws_url = st.url.replace("http", "ws") + "ws"
            for origin in ("http://evil.example", "http://127.0.0.1:1"):
                with pytest.raises(HTTPClientError) as err:
                    await websocket_connect(HTTPRequest(
                        ws_url, headers={"Cookie": session, "Origin": origin}))
                assert err.value.code == 403
                api = await fetch(st.url + "api/beds",
                                  headers={"Cookie": session, "Origin": origin})
                assert api.code == 403 and "may not use this station" in json.loads(
                    api.body)["error"]
            ws = await websocket_connect(HTTPRequest(ws_url, headers={
                "Cookie": session, "Origin": "http://hub.example:8000"}))
            ws.close()
            assert st.stats()["sessions"]["refused"] == {"origin": 4}
    run(main())


def test_a_viewer_may_look_and_a_nurses_ack_records_the_nurse_not_a_typed_name():
    async def main():
        async with running(with_sessions()) as st:
            r, w = await alarm_connection(st)
            from vitalsim.protocol.alarm_channel import encode_alarm_frame

            w.write(encode_alarm_frame(alarm(1, alarm_id="1001-5-1", timestamp=time.time())))
            await w.drain()
            await wait_until(lambda: st.board.get("1001-5-1") is not None, what="the alarm")
            ws_url = st.url.replace("http", "ws") + "ws"

            async def dashboard(op: Operator):
                session = (await fetch(st.url + "?token=" + op.token)).headers[
                    "Set-Cookie"].split(";")[0]
                ws = await websocket_connect(HTTPRequest(ws_url, headers={"Cookie": session}))
                await ws.read_message()  # the snapshot
                return ws

            viewer = await dashboard(VIEWER)
            viewer.write_message(json.dumps({"type": "ack", "alarm_id": "1001-5-1",
                                             "user": "Dr. House (chief of medicine)"}))
            reply = json.loads(await viewer.read_message())
            assert reply["type"] == "error" and "bob is a viewer" in reply["error"]
            assert st.board.get("1001-5-1").acked_by is None
            nurse = await dashboard(NURSE)
            nurse.write_message(json.dumps({"type": "ack", "alarm_id": "1001-5-1",
                                            "user": "<img src=x onerror=alert(1)>"}))
            await wait_until(lambda: st.board.get("1001-5-1").acked_by is not None,
                             what="the nurse's ack")
            assert st.board.get("1001-5-1").acked_by == "amy"
            assert st.stats()["sessions"]["refused"] == {"role": 1}
            viewer.close()
            nurse.close()
            w.close()
    run(main())


def test_the_course_link_to_the_dashboard_carries_the_login_token_behind_a_hub():
    """A lab shows ``dashboard_link(system.login_url())``: locally the token URL itself, under
    a hub the proxy's path with the same token, so the learner logs in either way."""
    from course.links import dashboard_link

    async def main():
        async with running(with_sessions()) as st:
            local = dashboard_link(st.login_url(), environ={})
            hub = dashboard_link(st.login_url(),
                                 environ={"JUPYTERHUB_SERVICE_PREFIX": "/user/amy/"})
            assert local.href == st.url + "?token=" + NURSE.token
            assert hub.href == f"/user/amy/proxy/{st.http_port}/?token={NURSE.token}"
    run(main())
