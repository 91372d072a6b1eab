"""The service's guard, as a plain ASGI app: token before body, body size and time limits."""

from __future__ import annotations

import asyncio
import json

import pytest

from usage_features.http.deadlines import Deadlines
from usage_features.http.limits import (
    Limits,
    RequestGuard,
    ServiceConfigError,
    api_token,
    limits_from_env,
    token_matches,
)

TOKEN = b"s3cret-token"


class Inner:
    """The app behind the guard: records the body it was given, answers 200."""

    def __init__(self) -> None:
        self.bodies: list[bytes] = []

    async def __call__(self, scope, receive, send) -> None:
        body, more = b"", True
        while more:
            message = await receive()
            body += message.get("body", b"")
            more = message.get("more_body", False)
        self.bodies.append(body)
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})


class Client:
    """One request through the guard; counts how often the body was read."""

    def __init__(self, chunks: list[bytes] | None = None, stall: bool = False) -> None:
        self.chunks = list(chunks or [])
        self.stall = stall
        self.reads = 0
        self.sent: list[dict] = []

    async def receive(self) -> dict:
        self.reads += 1
        if self.stall and not self.chunks:
            await asyncio.Event().wait()  # a client that stops sending
        chunk = self.chunks.pop(0) if self.chunks else b""
        return {"type": "http.request", "body": chunk,
                "more_body": bool(self.chunks) or self.stall}

    async def send(self, message: dict) -> None:
        self.sent.append(message)

    @property
    def status(self) -> int:
        return self.sent[0]["status"]

    @property
    def detail(self) -> str:
        return json.loads(self.sent[1]["body"])["detail"]

    def header(self, name: bytes) -> bytes | None:
        return dict(self.sent[0]["headers"]).get(name)


def request(guard: RequestGuard, client: Client, headers: dict[bytes, bytes],
            path: str = "/score") -> Client:
    scope = {"type": "http", "method": "POST", "path": path,
             "headers": list(headers.items())}
    asyncio.run(guard(scope, client.receive, client.send))
    return client


def guarded(limits: Limits | None = None):
    inner = Inner()
    limits = limits or Limits(max_body_bytes=100, body_timeout=0.2)
    return RequestGuard(inner, TOKEN, limits), inner


AUTH = {b"authorization": b"Bearer " + TOKEN}


class TestTheTokenIsCheckedBeforeTheBody:
    @pytest.mark.parametrize("authorization", [None, b"Bearer wrong", b"Basic czNjcmV0",
                                               b"Bearer " + "tökén".encode(), b"Bearer \xff\xfe",
                                               b"Bearer", TOKEN])
    def test_a_missing_or_wrong_token_is_401_and_the_body_is_never_read(self, authorization):
        guard, inner = guarded()
        headers = {b"content-length": b"50000000"}
        if authorization is not None:
            headers[b"authorization"] = authorization
        client = request(guard, Client([b"x" * 10]), headers)
        assert client.status == 401 and client.reads == 0 and inner.bodies == []
        assert client.header(b"www-authenticate") == b"Bearer"
        assert client.header(b"connection") == b"close"

    def test_the_right_token_in_any_case_of_the_scheme_passes(self):
        guard, inner = guarded()
        client = request(guard, Client([b'{"a": 1}']),
                         {b"authorization": b"bearer " + TOKEN, b"content-length": b"8"})
        assert client.status == 200 and inner.bodies == [b'{"a": 1}']

    def test_the_health_check_needs_no_token(self):
        guard, _ = guarded()
        client = request(guard, Client(), {}, path="/health")
        assert client.status == 200

    def test_a_non_ascii_token_configured_matches_the_same_utf8_bytes(self):
        token = api_token("tökén", environ={})
        assert token_matches(b"Bearer " + "tökén".encode(), token)
        assert not token_matches(b"Bearer " + "tökén".encode("latin-1"), token)


class TestTheBodyIsBounded:
    def test_a_declared_length_over_the_limit_is_413_unread(self):
        guard, inner = guarded()
        client = request(guard, Client([b"x" * 101]), {**AUTH, b"content-length": b"101"})
        assert client.status == 413 and client.reads == 0 and inner.bodies == []
        assert "larger than 100 bytes" in client.detail

    def test_a_chunked_body_is_cut_off_as_soon_as_it_passes_the_limit(self):
        guard, inner = guarded()
        client = request(guard, Client([b"x" * 40] * 10), {**AUTH, b"transfer-encoding":
                                                           b"chunked"})
        assert client.status == 413 and client.reads == 3 and inner.bodies == []

    def test_a_body_at_the_limit_reaches_the_app_whole(self):
        guard, inner = guarded()
        chunks = [b"a" * 30, b"b" * 30, b"c" * 40]
        client = request(guard, Client(chunks), {**AUTH, b"transfer-encoding": b"chunked"})
        assert client.status == 200 and inner.bodies == [b"".join(chunks)]

    def test_a_body_that_stops_arriving_is_408(self):
        guard, inner = guarded()
        client = request(guard, Client([b"x" * 10], stall=True),
                         {**AUTH, b"content-length": b"100"})
        assert client.status == 408 and inner.bodies == []
        assert "did not arrive within 0.2 s" in client.detail

    def test_a_malformed_length_is_400(self):
        guard, inner = guarded()
        client = request(guard, Client([b"x"]), {**AUTH, b"content-length": b"-1"})
        assert client.status == 400 and inner.bodies == []


class TestSettings:
    @pytest.mark.parametrize("value", ["", "   ", " token", "token\n"])
    def test_an_empty_or_padded_token_is_refused(self, value):
        with pytest.raises(ServiceConfigError, match="USAGE_FEATURES_API_TOKEN"):
            api_token(environ={"USAGE_FEATURES_API_TOKEN": value})

    def test_no_token_variable_means_no_auth(self):
        assert api_token(environ={}) is None

    def test_limits_come_from_the_environment(self):
        limits = limits_from_env({"USAGE_FEATURES_MAX_BODY_BYTES": "2048",
                                  "USAGE_FEATURES_BODY_TIMEOUT": "2.5",
                                  "USAGE_FEATURES_KEEP_ALIVE_TIMEOUT": "3",
                                  "USAGE_FEATURES_HEADER_TIMEOUT": "4"})
        assert limits == Limits(2048, 2.5, 3.0, 4.0)
        assert limits_from_env({}) == Limits()

    @pytest.mark.parametrize(("variable", "value"), [("USAGE_FEATURES_MAX_BODY_BYTES", "1e6"),
                                                 ("USAGE_FEATURES_MAX_BODY_BYTES", "0"),
                                                 ("USAGE_FEATURES_BODY_TIMEOUT", "-1"),
                                                 ("USAGE_FEATURES_HEADER_TIMEOUT", "nan")])
    def test_a_limit_that_is_not_a_positive_number_is_refused(self, variable, value):
        with pytest.raises(ServiceConfigError, match=variable):
            limits_from_env({variable: value})


class TestDeadlines:
    def run(self, scenario):
        return asyncio.run(scenario(Deadlines(tick=0.01)))

    def test_a_missed_deadline_calls_its_expiry_once(self):
        async def scenario(deadlines):
            fired = []
            deadlines.set("a", 0.0, lambda: fired.append("a"), asyncio.get_running_loop())
            await asyncio.sleep(0.05)
            return fired

        assert self.run(scenario) == ["a"]

    def test_a_cleared_deadline_never_fires_and_others_still_do(self):
        async def scenario(deadlines):
            fired, loop = [], asyncio.get_running_loop()
            deadlines.set("a", 0.0, lambda: fired.append("a"), loop)
            deadlines.set("b", 0.0, lambda: fired.append("b"), loop)
            deadlines.clear("a")
            await asyncio.sleep(0.05)
            deadlines.set("c", 0.0, lambda: fired.append("c"), loop)  # after the sweep stopped
            await asyncio.sleep(0.05)
            return fired

        assert self.run(scenario) == ["b", "c"]

    def test_a_deadline_not_yet_due_does_not_fire(self):
        async def scenario(deadlines):
            fired = []
            deadlines.set("a", 3600, lambda: fired.append("a"), asyncio.get_running_loop())
            await asyncio.sleep(0.05)
            deadlines.clear("a")
            return fired

        assert self.run(scenario) == []


def test_a_request_cancelled_from_outside_is_not_turned_into_a_408():
    guard, inner = guarded(Limits(max_body_bytes=100, body_timeout=3600))
    client = Client([b"x"], stall=True)
    scope = {"type": "http", "method": "POST", "path": "/score",
             "headers": [*AUTH.items(), (b"content-length", b"100")]}

    async def scenario():
        task = asyncio.create_task(guard(scope, client.receive, client.send))
        await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(scenario())
    assert client.sent == [] and inner.bodies == [] and guard.deadlines.due == {}


def test_the_server_runs_with_the_keep_alive_timeout_and_the_header_deadline(monkeypatch):
    import gc

    import uvicorn
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

    from usage_features.http import app as http

    calls = []
    monkeypatch.setattr(uvicorn, "run", lambda app, **options: calls.append(options))
    try:
        http.run(object(), Limits(keep_alive_timeout=3.0, header_timeout=4.0), port=1234)
    finally:
        gc.unfreeze()
    (options,) = calls
    assert options["timeout_keep_alive"] == 3.0 and options["port"] == 1234
    assert issubclass(options["http"], HttpToolsProtocol)
