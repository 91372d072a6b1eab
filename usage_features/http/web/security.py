"""Sign-in sessions, CSRF tokens and the security headers of the web pages.

- **Sessions live on the server.** Signing in with the token creates a session: a random id
  (32 bytes) sent as an ``HttpOnly; SameSite=Strict`` cookie (``Secure`` over HTTPS), and a
  CSRF token of its own. The cookie is only a key into :class:`Sessions`: signing out deletes
  the session, so the old cookie replayed is refused. A session ends after
  :data:`IDLE_TIMEOUT` without a request and :data:`MAX_AGE` after sign-in; they are held in
  memory (a restart signs everyone out) and at most :data:`MAX_SESSIONS` at once (the oldest
  goes first).
- **CSRF.** Every form that changes something (sign-out) carries the session's CSRF token and
  is refused without it; the sign-in form carries one bound to a short-lived cookie of its own
  (double submit), so another site cannot sign a browser in. A POST whose ``Origin`` is
  another site's is refused too.
- **Guessing** the token is bounded: after :data:`MAX_FAILURES` failed sign-ins within
  :data:`FAILURE_WINDOW` seconds, sign-in answers 429 until the window has passed.
- **Headers** (:class:`SecurityHeaders`, on every response, the API's included): a
  Content-Security-Policy allowing only the server's own scripts, styles and images (the pages
  have no inline script or style), no framing, no MIME sniffing, no referrer to other sites.
"""

from __future__ import annotations

import hmac
import secrets
import threading
import time
from collections import OrderedDict, deque
from dataclasses import dataclass

SESSION_COOKIE = "uf_session"
SIGN_IN_COOKIE = "uf_sign_in"
IDLE_TIMEOUT = 8 * 3600.0
MAX_AGE = 24 * 3600.0
MAX_SESSIONS = 10_000
MAX_FAILURES = 10
FAILURE_WINDOW = 60.0

CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "font-src 'self'; connect-src 'self'; form-action 'self'; base-uri 'none'; "
    "frame-ancestors 'none'")
SECURITY_HEADERS = [
    (b"content-security-policy", CONTENT_SECURITY_POLICY.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"same-origin"),
    (b"cross-origin-opener-policy", b"same-origin"),
]


def new_secret() -> str:
    return secrets.token_urlsafe(32)


def same(given: str | None, expected: str) -> bool:
    """``given`` equals ``expected``, compared in constant time (as UTF-8 bytes)."""
    if not given:
        return False
    return hmac.compare_digest(given.encode("utf-8", "surrogatepass"),
                               expected.encode("utf-8", "surrogatepass"))


@dataclass
class Session:
    csrf: str
    started: float
    seen: float


class Sessions:
    """The signed-in sessions of this process, by cookie value."""

    def __init__(self, idle: float = IDLE_TIMEOUT, max_age: float = MAX_AGE,
                 capacity: int = MAX_SESSIONS, clock=time.monotonic) -> None:
        self.idle, self.max_age, self.capacity, self.clock = idle, max_age, capacity, clock
        self._sessions: OrderedDict[str, Session] = OrderedDict()
        self._lock = threading.Lock()

    def start(self) -> tuple[str, Session]:
        """A new session: its cookie value and its record."""
        now = self.clock()
        key, session = new_secret(), Session(new_secret(), now, now)
        with self._lock:
            self._sessions[key] = session
            while len(self._sessions) > self.capacity:
                self._sessions.popitem(last=False)
        return key, session

    def get(self, key: str | None) -> Session | None:
        """The live session of a cookie value (None: none, ended or expired)."""
        if not key:
            return None
        now = self.clock()
        with self._lock:
            session = self._sessions.get(key)
            if session is None:
                return None
            if now - session.seen > self.idle or now - session.started > self.max_age:
                del self._sessions[key]
                return None
            session.seen = now
            return session

    def end(self, key: str | None) -> None:
        with self._lock:
            self._sessions.pop(key or "", None)

    def __len__(self) -> int:
        return len(self._sessions)


class FailedSignIns:
    """Failed sign-ins of the last :data:`FAILURE_WINDOW` seconds, process-wide."""

    def __init__(self, limit: int = MAX_FAILURES, window: float = FAILURE_WINDOW,
                 clock=time.monotonic) -> None:
        self.limit, self.window, self.clock = limit, window, clock
        self._times: deque[float] = deque()
        self._lock = threading.Lock()

    def _prune(self, now: float) -> None:
        while self._times and now - self._times[0] > self.window:
            self._times.popleft()

    def blocked(self) -> bool:
        with self._lock:
            self._prune(self.clock())
            return len(self._times) >= self.limit

    def add(self) -> None:
        with self._lock:
            now = self.clock()
            self._prune(now)
            self._times.append(now)


class SecurityHeaders:
    """Pure ASGI middleware adding :data:`SECURITY_HEADERS` to every HTTP response (a header
    the response already sets is left as it is)."""

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_headers(message) -> None:
            if message["type"] == "http.response.start":
                present = {name.lower() for name, _ in message.get("headers", [])}
                message["headers"] = [*message.get("headers", []),
                                      *(h for h in SECURITY_HEADERS if h[0] not in present)]
            await send(message)

        await self.app(scope, receive, with_headers)


__all__ = ["CONTENT_SECURITY_POLICY", "SESSION_COOKIE", "SIGN_IN_COOKIE", "FailedSignIns",
           "SecurityHeaders", "Session", "Sessions", "same"]
