"""The web pages: sign-in, worklist, customer, model, monitor, retention (FastAPI + Jinja2).

Each page handler checks the session, calls its use case
(:mod:`usage_features.service_layer.pages`) and renders the result; nothing else. Handlers
that read data are plain functions, which FastAPI runs in worker threads: a page being built
never holds up the event loop that answers ``POST /score``. Templates autoescape everything
they print (``autoescape=True`` for every template, SVG included).
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import parse_qs, quote, unquote_to_bytes, urlencode

from fastapi import Depends, FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from jinja2 import Environment, FileSystemLoader, StrictUndefined

from usage_features.features.store import DamagedFileError, OnlineStoreNotMaterialized
from usage_features.http.web import views
from usage_features.http.web.security import (
    SESSION_COOKIE,
    SIGN_IN_COOKIE,
    FailedSignIns,
    Session,
    Sessions,
    new_secret,
    same,
)
from usage_features.service_layer.pages.customer import customer_view
from usage_features.service_layer.pages.data import PageData
from usage_features.service_layer.pages.model import model_view
from usage_features.service_layer.pages.monitor import monitor_view
from usage_features.service_layer.pages.retention import retention_view
from usage_features.service_layer.pages.worklist import (
    WorklistQuery,
    worklist,
    worklist_rows,
)

HERE = Path(__file__).resolve().parent
TEMPLATES = HERE / "templates"
STATIC = HERE / "static"
#: Longest customer id a page looks up (the API's limit).
MAX_ID_LENGTH = 256
FEAST_UI = "http://127.0.0.1:8888/"
#: What a missing value is shown as (an en dash).
NONE = "\u2013"


class SignInRequired(Exception):
    """No live session: the browser is sent to the sign-in page, then back to ``target``."""

    def __init__(self, target: str) -> None:
        self.target = target


def customer_url(customer_id: str) -> str:
    """The customer's page: the id URL-encoded whole (``/``, ``%``, spaces, markup)."""
    return "/customers/" + quote(customer_id, safe="")


def id_from_raw_path(scope, decoded: str) -> str:
    """The customer id as the client encoded it: the request's raw path after
    ``/customers/``, percent-decoded once (the decoded path cannot tell an encoded ``%2F`` in
    an id from a ``/``, and some clients decode twice); ``decoded`` without a raw path."""
    raw = scope.get("raw_path")
    prefix = b"/customers/"
    if not raw or not raw.startswith(prefix):
        return decoded
    return unquote_to_bytes(raw[len(prefix):]).decode("utf-8", "replace")


def safe_target(target: str | None) -> str:
    """Where to go after signing in: a path on this site only (never ``//host`` or a URL)."""
    if (not target or not target.startswith("/") or target.startswith("//")
            or "\\" in target or any(ord(c) < 32 for c in target)):
        return "/"
    return target


def environment() -> Environment:
    env = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=True,
                      undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)

    def percent(value, digits: int = 1) -> str:
        return NONE if value is None else f"{value:.{digits}%}"

    def change(value) -> str:
        if value is None or value != value:
            return "new"
        points = value * 100
        return "±0.0 pts" if abs(points) < 0.05 else f"{points:+.1f} pts"

    def number(value, digits: int = 0) -> str:
        if value is None or (isinstance(value, float) and not math.isfinite(value)):
            return NONE
        return f"{value:,.{digits}f}"

    def when(value) -> str:
        if value is None:
            return NONE
        if isinstance(value, str):
            try:
                value = datetime.fromisoformat(value)
            except ValueError:
                return value
        return f"{value.astimezone(UTC):%Y-%m-%d %H:%M} UTC"

    env.filters.update(percent=percent, change=change, number=number, when=when)
    env.globals.update(customer_url=customer_url, zip=zip)
    return env


def pages_app(data: PageData, token: str, sessions: Sessions | None = None) -> FastAPI:
    """The pages of one repo behind a sign-in with ``token``."""
    app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    env = environment()
    sessions = sessions if sessions is not None else Sessions()
    failures = FailedSignIns()
    app.state.sessions = sessions
    repo = str(data.context.repo)

    def render(request: Request, name: str, session: Session | None, status: int = 200,
               **context) -> HTMLResponse:
        html = env.get_template(name).render(
            csrf=session.csrf if session else None, path=request.url.path, repo=repo,
            **context)
        return HTMLResponse(html, status, headers={"cache-control": "no-store"})

    def set_cookie(request: Request, response: Response, name: str, value: str, path: str,
                   max_age: int | None = None) -> None:
        response.set_cookie(name, value, max_age=max_age, path=path, httponly=True,
                            samesite="strict", secure=request.url.scheme == "https")

    async def signed_in(request: Request) -> Session:
        session = sessions.get(request.cookies.get(SESSION_COOKIE))
        if session is None:
            target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
            raise SignInRequired(target)
        return session

    @app.exception_handler(SignInRequired)
    async def to_sign_in(request: Request, exc: SignInRequired) -> Response:
        return RedirectResponse("/sign-in?" + urlencode({"next": exc.target}), 303,
                                headers={"cache-control": "no-store"})

    @app.exception_handler(OnlineStoreNotMaterialized)
    async def not_materialized(request: Request, exc: OnlineStoreNotMaterialized) -> Response:
        session = sessions.get(request.cookies.get(SESSION_COOKIE))
        return render(request, "error.html", session, 503, title="No online features",
                      message=str(exc))

    @app.exception_handler(DamagedFileError)
    async def damaged(request: Request, exc: DamagedFileError) -> Response:
        session = sessions.get(request.cookies.get(SESSION_COOKIE))
        return render(request, "error.html", session, 503, title="A stored file is damaged",
                      message=str(exc))

    def foreign_origin(request: Request) -> bool:
        origin = request.headers.get("origin")
        return bool(origin) and origin != f"{request.url.scheme}://{request.url.netloc}"

    async def form(request: Request) -> dict[str, str]:
        body = (await request.body()).decode("utf-8", "replace")
        return {k: v[0] for k, v in parse_qs(body, keep_blank_values=True).items()}

    # -- sign-in and sign-out ---------------------------------------------------------------

    @app.get("/sign-in")
    async def sign_in_page(request: Request, next: str = "/") -> Response:
        target = safe_target(next)
        if sessions.get(request.cookies.get(SESSION_COOKIE)) is not None:
            return RedirectResponse(target, 303)
        nonce = new_secret()
        response = render(request, "sign_in.html", None, nonce=nonce, target=target,
                          error=None)
        set_cookie(request, response, SIGN_IN_COOKIE, nonce, "/sign-in", max_age=3600)
        return response

    @app.post("/sign-in")
    async def sign_in(request: Request) -> Response:
        fields = await form(request)
        target = safe_target(fields.get("next"))
        nonce = new_secret()

        def again(status: int, error: str) -> Response:
            response = render(request, "sign_in.html", None, status, nonce=nonce,
                              target=target, error=error)
            set_cookie(request, response, SIGN_IN_COOKIE, nonce, "/sign-in", max_age=3600)
            return response

        if foreign_origin(request):
            return again(403, "This form was sent from another site: refused.")
        if failures.blocked():
            return again(429, "Too many wrong tokens in the last minute: wait a minute, then "
                              "try again.")
        if not same(fields.get("csrf"), request.cookies.get(SIGN_IN_COOKIE) or ""):
            return again(400, "The sign-in form had expired: enter the token again.")
        if not same(fields.get("token", ""), token):
            failures.add()
            return again(401, "That is not the token. It is the API token "
                              "(USAGE_FEATURES_API_TOKEN), or the one `usage-features serve` "
                              "printed when it started.")
        key, _ = sessions.start()
        response = RedirectResponse(target, 303)
        set_cookie(request, response, SESSION_COOKIE, key, "/")
        response.delete_cookie(SIGN_IN_COOKIE, path="/sign-in")
        return response

    @app.post("/sign-out")
    async def sign_out(request: Request) -> Response:
        fields = await form(request)
        key = request.cookies.get(SESSION_COOKIE)
        session = sessions.get(key)
        if session is not None and (foreign_origin(request)
                                    or not same(fields.get("csrf"), session.csrf)):
            return render(request, "error.html", session, 403, title="Not signed out",
                          message="The sign-out form did not carry this session's token "
                                  "(a form from another page or site): use the Sign out "
                                  "button.")
        sessions.end(key)
        response = RedirectResponse("/sign-in", 303)
        response.delete_cookie(SESSION_COOKIE, path="/")
        return response

    # -- pages ------------------------------------------------------------------------------

    def query_of(request: Request) -> WorklistQuery:
        params = request.query_params
        try:
            page = max(1, int(params.get("page", "1")))
        except ValueError:
            page = 1
        return WorklistQuery(params.get("band") or None, params.get("plan") or None,
                             params.get("q") or None, page)

    def link(query: WorklistQuery, page: int | None = None, path: str = "/") -> str:
        params = {"band": query.band, "plan": query.plan, "q": query.search,
                  "page": page if page and page > 1 else None}
        encoded = urlencode({k: v for k, v in params.items() if v})
        return path + (f"?{encoded}" if encoded else "")

    @app.get("/", response_class=HTMLResponse)
    def worklist_page(request: Request, session: Session = Depends(signed_in)) -> Response:
        view = worklist(data, query_of(request))
        return render(request, "worklist.html", session, view=view,
                      page_link=lambda page: link(view.query, page),
                      csv_link=link(view.query, path="/worklist.csv"))

    @app.get("/worklist.csv")
    def worklist_download(request: Request, session: Session = Depends(signed_in)) -> Response:
        query = query_of(request)
        rows = worklist_rows(data, query)
        day = worklist(data, WorklistQuery(page_size=1)).snapshot_day
        name = f"worklist-{day or 'none'}.csv"
        return Response(views.worklist_csv(rows), media_type="text/csv; charset=utf-8",
                        headers={"content-disposition": f'attachment; filename="{name}"',
                                 "cache-control": "no-store"})

    @app.get("/customers/{customer_id:path}", response_class=HTMLResponse)
    def customer_page(request: Request, customer_id: str,
                      session: Session = Depends(signed_in)) -> Response:
        customer_id = id_from_raw_path(request.scope, customer_id)
        if not customer_id or len(customer_id) > MAX_ID_LENGTH:
            return render(request, "error.html", session, 404, title="No such customer",
                          message=f"A customer id has 1 to {MAX_ID_LENGTH} characters.")
        view = customer_view(data, customer_id)
        return render(request, "customer.html", session, view=view,
                      charts=views.customer_charts(view))

    @app.get("/model/page", response_class=HTMLResponse)
    def model_page(request: Request, session: Session = Depends(signed_in)) -> Response:
        view = model_view(data)
        return render(request, "model.html", session, view=view,
                      charts=views.model_charts(view), feast_ui=FEAST_UI)

    @app.get("/monitor", response_class=HTMLResponse)
    def monitor_page(request: Request, session: Session = Depends(signed_in)) -> Response:
        view = monitor_view(data)
        return render(request, "monitor.html", session, view=view,
                      charts=views.monitor_charts(view) if view.day else {})

    @app.get("/retention", response_class=HTMLResponse)
    def retention_page(request: Request, session: Session = Depends(signed_in)) -> Response:
        view = retention_view(data)
        return render(request, "retention.html", session, view=view,
                      charts=views.retention_charts(view))

    return app


__all__ = ["customer_url", "pages_app", "safe_target"]
