"""What the scoring service refuses before a handler runs: its limits and its token check.

:class:`RequestGuard` is a pure ASGI middleware (no ``BaseHTTPMiddleware``: no extra task or
response copy on the fast path) in front of the whole FastAPI app. Per request, in order:

1. outside :data:`OPEN_PATHS`, with a token configured, the ``Authorization: Bearer`` header
   is compared with the token in constant time (as bytes: any header, ASCII or not, is a 401
   when wrong, never a 500), before one byte of the body is read;
2. a declared ``Content-Length`` above ``max_body_bytes`` is a 413, unread;
3. the body is read, counting bytes as they arrive (a chunked body has no length to check
   first), a 413 as soon as it passes the limit, a 408 when it has not all arrived within
   ``body_timeout`` seconds of the first read (a slow sender holds a connection that long at
   most; checked by a sweep every 0.1 s, :class:`~usage_features.http.deadlines.Deadlines`,
   not a timer per request, which would cost the hot path about 10 microseconds);
4. the handler gets the body in one piece.

Every refusal closes the connection (an unread body is not read to find the next request).
Limits come from the environment (:func:`limits_from_env`); an empty token is refused.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass

from usage_features.http.deadlines import Deadlines

TOKEN_VARIABLE = "USAGE_FEATURES_API_TOKEN"
MAX_BODY_VARIABLE = "USAGE_FEATURES_MAX_BODY_BYTES"
BODY_TIMEOUT_VARIABLE = "USAGE_FEATURES_BODY_TIMEOUT"
KEEP_ALIVE_VARIABLE = "USAGE_FEATURES_KEEP_ALIVE_TIMEOUT"
HEADER_TIMEOUT_VARIABLE = "USAGE_FEATURES_HEADER_TIMEOUT"

#: Paths served without a token: the load balancer's health check and the API docs.
OPEN_PATHS = frozenset({"/health", "/docs", "/docs/oauth2-redirect", "/openapi.json", "/redoc"})


class ServiceConfigError(ValueError):
    """The service's settings are unusable; it refuses to start."""


@dataclass(frozen=True)
class Limits:
    """How much and how long the service waits for a client.

    ``max_body_bytes``: largest request body (a full batch of 1,000 ids is about 40 KB).
    ``body_timeout``: seconds for a request body to arrive, from the first read.
    ``keep_alive_timeout``: seconds an idle keep-alive connection stays open between requests.
    ``header_timeout``: seconds for a request's headers to arrive on a new or idle connection.
    """

    max_body_bytes: int = 1024 * 1024
    body_timeout: float = 10.0
    keep_alive_timeout: float = 5.0
    header_timeout: float = 10.0


def limits_from_env(environ: Mapping[str, str] | None = None) -> Limits:
    """:class:`Limits` with each value from its variable where set (positive numbers)."""
    environ = os.environ if environ is None else environ
    defaults = Limits()

    def read(variable: str, default, kind):
        text = environ.get(variable)
        if text is None or not text.strip():
            return default
        try:
            value = kind(text)
        except ValueError:
            value = None
        if value is None or not value > 0:
            raise ServiceConfigError(f"{variable}={text!r} is not a positive "
                                     f"{'integer' if kind is int else 'number'}")
        return value

    return Limits(read(MAX_BODY_VARIABLE, defaults.max_body_bytes, int),
                  read(BODY_TIMEOUT_VARIABLE, defaults.body_timeout, float),
                  read(KEEP_ALIVE_VARIABLE, defaults.keep_alive_timeout, float),
                  read(HEADER_TIMEOUT_VARIABLE, defaults.header_timeout, float))


def api_token(token: str | None = None,
              environ: Mapping[str, str] | None = None) -> bytes | None:
    """The bearer token to require (``token``, else the environment's); None for no auth.

    A token that is set but blank would silently turn auth off (or could never be sent):
    refused, as is one with surrounding whitespace (HTTP strips it from a header).
    """
    environ = os.environ if environ is None else environ
    source = "the token" if token is not None else TOKEN_VARIABLE
    if token is None:
        token = environ.get(TOKEN_VARIABLE)
        if token is None:
            return None
    if not token.strip():
        raise ServiceConfigError(
            f"{source} is set but empty: set it to the bearer token clients must send, or "
            "unset it to serve without authentication")
    if token != token.strip():
        raise ServiceConfigError(f"{source} has leading or trailing whitespace, which no "
                                 "client can send in a header; remove it")
    return token.encode("utf-8")


def token_matches(authorization: bytes | None, token: bytes) -> bool:
    """Whether an ``Authorization`` header value carries ``token``, compared in constant time."""
    if authorization is None:
        return False
    scheme, _, credentials = authorization.partition(b" ")
    return scheme.lower() == b"bearer" and hmac.compare_digest(credentials.strip(), token)


class RequestGuard:
    """Token check and body limits ahead of ``app``; see the module docstring."""

    def __init__(self, app, token: bytes | None, limits: Limits,
                 open_paths: frozenset[str] = OPEN_PATHS) -> None:
        self.app = app
        self.token = token
        self.limits = limits
        self.open_paths = open_paths
        self.deadlines = Deadlines()  # one sweep for all bodies being read, not a timer each

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        authorization = length = None
        has_body = False
        for name, value in scope["headers"]:
            if name == b"authorization":
                authorization = value
            elif name == b"content-length":
                length, has_body = value, True
            elif name == b"transfer-encoding":
                has_body = True
        if (self.token is not None and scope["path"] not in self.open_paths
                and not token_matches(authorization, self.token)):
            await refuse(send, 401, "missing or wrong bearer token",
                         [(b"www-authenticate", b"Bearer")])
            return
        if not has_body:
            await self.app(scope, receive, send)
            return
        if length is not None:
            if not length.isdigit():
                await refuse(send, 400, "invalid Content-Length")
                return
            if int(length) > self.limits.max_body_bytes:
                await refuse(send, 413, self._too_large())
                return
        try:
            body = await self._read_body(receive)
        except _BodyTooLarge:
            await refuse(send, 413, self._too_large())
            return
        except TimeoutError:
            await refuse(send, 408, f"the request body did not arrive within "
                                    f"{self.limits.body_timeout:g} s")
            return
        if body is None:  # the client went away
            return
        await self.app(scope, _replay(body, receive), send)

    def _too_large(self) -> str:
        return f"request body larger than {self.limits.max_body_bytes:,} bytes"

    async def _read_body(self, receive) -> bytes | None:
        task, loop = asyncio.current_task(), asyncio.get_running_loop()
        missed = []

        def expire() -> None:
            missed.append(True)
            task.cancel()

        self.deadlines.set(task, self.limits.body_timeout, expire, loop)
        chunks, size, limit = [], 0, self.limits.max_body_bytes
        try:
            while True:
                message = await receive()
                if message["type"] != "http.request":
                    return None
                chunk = message.get("body", b"")
                size += len(chunk)
                if size > limit:
                    raise _BodyTooLarge
                chunks.append(chunk)
                if not message.get("more_body", False):
                    return chunks[0] if len(chunks) == 1 else b"".join(chunks)
        except asyncio.CancelledError:
            if missed and task.uncancel() == 0:
                raise TimeoutError from None
            raise
        finally:
            self.deadlines.clear(task)


class _BodyTooLarge(Exception):
    pass


def _replay(body: bytes, receive):
    """A ``receive`` that gives ``body`` whole, then whatever the connection says next."""
    pending = [{"type": "http.request", "body": body, "more_body": False}]

    async def replay():
        if pending:
            return pending.pop()
        return await receive()

    return replay


async def refuse(send, status: int, detail: str, headers: list | None = None) -> None:
    """A JSON ``{"detail": ...}`` error response that closes the connection."""
    body = json.dumps({"detail": detail}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode()),
                            (b"connection", b"close"), *(headers or [])]})
    await send({"type": "http.response.body", "body": body})


__all__ = ["OPEN_PATHS", "Limits", "RequestGuard", "ServiceConfigError", "api_token",
           "limits_from_env", "token_matches"]
