"""uvicorn's HTTP protocol with a deadline for each request's headers.

uvicorn closes an idle keep-alive connection ``timeout_keep_alive`` seconds after a response,
but only then: a connection that never sends a request, or sends its headers a byte at a time,
stays open for good. :func:`header_deadline_protocol` closes a connection whose request line and
headers have not all arrived ``header_timeout`` seconds after it opened or after its previous
response. (The body has its own deadline, in :class:`~usage_features.http.limits.RequestGuard`.)

This is the one file that relies on uvicorn's protocol internals: the ``httptools`` protocol's
callbacks ``connection_made``, ``on_headers_complete``, ``on_response_complete`` and
``connection_lost`` and its ``loop``, ``transport`` and ``cycle`` attributes. The tests in
``tests/e2e/test_http_service.py`` hold an idle and a slow-header connection against a real
server; should a uvicorn release change these, they fail.
"""

from __future__ import annotations

import asyncio

from usage_features.extras import extra_imports
from usage_features.http.deadlines import Deadlines


def header_deadline_protocol(header_timeout: float) -> type[asyncio.Protocol]:
    """uvicorn's httptools protocol, closing connections whose headers are late."""
    with extra_imports("serve", "the HTTP service"):
        # deferred: httptools (uvicorn[standard]) only for a server; the app runs without it
        from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

    deadlines = Deadlines()  # one sweep for every connection of the server, not a timer each

    class HeaderDeadlineProtocol(HttpToolsProtocol):
        def connection_made(self, transport) -> None:
            super().connection_made(transport)
            deadlines.set(self, header_timeout, self._headers_late, self.loop)

        def on_headers_complete(self) -> None:
            deadlines.clear(self)
            super().on_headers_complete()

        def on_response_complete(self) -> None:
            super().on_response_complete()
            # armed again for the next request, unless a pipelined one has already started
            if not self.transport.is_closing() and (self.cycle is None
                                                    or self.cycle.response_complete):
                deadlines.set(self, header_timeout, self._headers_late, self.loop)

        def connection_lost(self, exc) -> None:
            deadlines.clear(self)
            super().connection_lost(exc)

        def _headers_late(self) -> None:
            if not self.transport.is_closing():
                self.transport.close()

    return HeaderDeadlineProtocol


__all__ = ["header_deadline_protocol"]
