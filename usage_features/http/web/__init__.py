"""The web application served beside the scoring API, from the same process (docs/web.md).

:func:`include_pages` puts the pages in front of the API app: requests for a page's path
(:func:`is_page`) go to the pages (their own sign-in and sessions, the same body limits),
everything else to the API as before (its bearer token, its limits). Every response, the
API's too, gets the security headers.
"""

from __future__ import annotations

from usage_features.extras import extra_imports

with extra_imports("serve", "the web pages"):
    import jinja2  # noqa: F401 - fails here, naming the extra, rather than at the first page
    from fastapi import FastAPI

from usage_features.http.limits import Limits, RequestGuard
from usage_features.http.web.pages import pages_app
from usage_features.http.web.security import SecurityHeaders, Sessions
from usage_features.service_layer.bootstrap import Context
from usage_features.service_layer.pages.data import PageData

#: The pages' paths; ``/customers/<id>`` and ``/static/<file>`` below their prefixes.
PAGE_PATHS = frozenset({"/", "/sign-in", "/sign-out", "/worklist.csv", "/model/page",
                        "/monitor", "/retention"})
PAGE_PREFIXES = ("/customers/", "/static/")


def is_page(path: str) -> bool:
    return path in PAGE_PATHS or path.startswith(PAGE_PREFIXES)


class PageRoutes:
    """Pure ASGI: a page's path to ``pages``, anything else to ``app`` (the API)."""

    def __init__(self, app, pages) -> None:
        self.app = app
        self.pages = pages

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "http" and is_page(scope["path"]):
            await self.pages(scope, receive, send)
        else:
            await self.app(scope, receive, send)


def include_pages(app: FastAPI, context: Context, token: str, limits: Limits,
                  sessions: Sessions | None = None) -> FastAPI:
    """Serve the pages of ``context``'s repo in ``app`` behind a sign-in with ``token``."""
    pages = pages_app(PageData(context), token, sessions)
    app.state.pages = pages
    app.add_middleware(PageRoutes, pages=RequestGuard(pages, token=None, limits=limits))
    app.add_middleware(SecurityHeaders)
    return app


__all__ = ["PAGE_PATHS", "PAGE_PREFIXES", "PageRoutes", "include_pages", "is_page"]
