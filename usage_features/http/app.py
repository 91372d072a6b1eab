"""The scoring HTTP service: ``POST /score``, ``GET /health``, ``GET /model`` (FastAPI).

A past ``as_of`` is answered from historical features (the answer's ``features_from`` says
so), by the same use case as ``usage-features score`` (:mod:`usage_features.service_layer.score`);
without ``as_of``, an online store that does not hold now's features answers as of its own time
(each score's ``as_of``, ``fresh`` false, and the response's ``note`` say so).

Bearer-token auth is on when ``USAGE_FEATURES_API_TOKEN`` is set (``/health`` stays open for
load balancers; an empty token is refused at start). Batches are bounded by ``MAX_BATCH``.
The OpenAPI schema at ``/openapi.json`` (no Swagger UI: it loads from a CDN); the web pages
(:mod:`usage_features.http.web`) are put in front by :func:`prepare`. The token check, body
size and time limits run before any handler, in
:class:`~usage_features.http.limits.RequestGuard`; validation errors name the reason and the
location, never the input.

Concurrent requests are micro-batched: scoring one customer costs about as much fixed overhead
as scoring fifty, so requests that arrive within ``BATCH_WAIT`` of each other are scored in one
call, on the event loop, instead of in competing worker threads.
"""

from __future__ import annotations

import asyncio
import gc
from dataclasses import replace
from datetime import datetime
from typing import Annotated

from usage_features.extras import extra_imports

with extra_imports("serve", "the HTTP service"):
    import uvicorn
    from fastapi import Depends, FastAPI, HTTPException, Request, status
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import JSONResponse
    from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
    from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from usage_features.adapters.stored_files import StoredFileError
from usage_features.features.store import OnlineStoreNotMaterialized
from usage_features.http.connections import header_deadline_protocol
from usage_features.http.limits import (
    TOKEN_VARIABLE,
    Limits,
    RequestGuard,
    api_token,
    limits_from_env,
    token_matches,
)
from usage_features.http.web import include_pages
from usage_features.service_layer.bootstrap import Context
from usage_features.service_layer.score import ScoreAnswer
from usage_features.service_layer.score import score as score_at
from usage_features.serving.scorer import ChurnScorer

MAX_BATCH = 1000
BATCH_WAIT = 0.002  # seconds a request waits for others to share its scoring call


class MicroBatcher:
    """Coalesce concurrent ``score`` calls without a time into one call of the score use case
    (one time for the whole batch: now, or the online store's own time)."""

    def __init__(self, scorer: ChurnScorer, wait: float = BATCH_WAIT) -> None:
        self.scorer = scorer
        self.wait = wait
        self.pending: list[tuple[list[str], asyncio.Future]] = []
        self.flush: asyncio.Task | None = None

    async def score(self, customer_ids: list[str], as_of: datetime | None) -> ScoreAnswer:
        if as_of is not None:  # an explicit time is scored on its own, by the one policy
            return score_at(self.scorer, customer_ids, as_of)
        future = asyncio.get_running_loop().create_future()
        self.pending.append((customer_ids, future))
        if self.flush is None:
            self.flush = asyncio.create_task(self._flush())
        return await future

    async def _flush(self) -> None:
        await asyncio.sleep(self.wait)
        batch, self.pending, self.flush = self.pending, [], None
        try:
            answer = score_at(self.scorer, [c for ids, _ in batch for c in ids])
        except Exception as exc:  # every waiting request gets the error
            for _, future in batch:
                future.set_exception(exc)
            return
        start = 0
        for ids, future in batch:
            future.set_result(replace(answer, scores=answer.scores[start:start + len(ids)]))
            start += len(ids)


class ScoreRequest(BaseModel):
    # a lone surrogate (JSON "\ud800") is refused by the length check itself: 422, which only
    # the handler below (no echo of the input) can encode
    customer_ids: Annotated[list[Annotated[str, Field(min_length=1, max_length=256)]],
                            Field(min_length=1, max_length=MAX_BATCH)]
    as_of: AwareDatetime | None = Field(
        default=None, description="Score as of this time (with a UTC offset); default now, "
                                  "or the online store's own time when it does not hold "
                                  "now's features (the response's note says so)")


class CustomerScore(BaseModel):
    """A :class:`~usage_features.domain.scores.Score`, as JSON (docs/scoring.md)."""

    customer_id: str
    as_of: datetime
    status: str = Field(
        description="active (scored), churned, incomplete or unknown (no probability)")
    model_version: str
    model_config = ConfigDict(extra="allow")  # a configured horizon beyond the defaults

    churn_probability: float | None = Field(description="Only for an active customer")
    churn_probability_60d: float | None = Field(
        default=None, description="Churn within 60 days (each horizon of the `horizons:` "
                                  "setting has its field; never below a shorter one's)")
    churn_probability_90d: float | None = Field(default=None,
                                                description="Churn within 90 days")
    expected_days_to_churn: float | None = Field(
        default=None, description="The median of the time-to-churn curve, in days; null "
                                  "where the curve stays above one half or contradicts a "
                                  "probability beside it")
    risk_band: str | None = None
    reasons: list[str] = []
    features_from: str = Field(description="online, or historical for a time the online "
                                           "store does not hold (a past as_of)")
    latest_event_at: datetime | None = Field(description="The latest ingested event")
    fresh: bool = Field(description="No freshness warning applies (see GET /health)")
    churned_at: datetime | None = None
    error: str | None = None


class ScoreResponse(BaseModel):
    scores: list[CustomerScore]
    note: str | None = Field(default=None, description=(
        "Why the answer is not now from the online store, when it is not: a past as_of "
        "(historical features), or no as_of and an online store that does not hold now's "
        "features (answered as of its own time)"))


def create_app(scorer: ChurnScorer, token: str | None = None,
               limits: Limits | None = None) -> FastAPI:
    """The service around one loaded scorer; ``token`` and ``limits`` default to the
    environment's (:data:`TOKEN_VARIABLE`, :func:`limits_from_env`)."""
    secret = api_token(token)
    # No Swagger UI or ReDoc: FastAPI's load their scripts from a CDN with an inline script,
    # which the pages' Content-Security-Policy refuses; the schema stays at /openapi.json.
    app = FastAPI(title="usage-features churn scoring", version="1",
                  description="Churn risk from usage features served by Feast (churn_model_v1)",
                  docs_url=None, redoc_url=None)
    app.add_middleware(RequestGuard, token=secret, limits=limits or limits_from_env())
    app.add_exception_handler(RequestValidationError, validation_error)
    bearer = HTTPBearer(auto_error=False)

    # async, like every handler here: a plain def would be run in a worker thread per request.
    # RequestGuard has checked the token before the body was read; this declares the scheme
    # in the OpenAPI docs and checks again, should the app ever be mounted without the guard.
    def token_ok(credentials: HTTPAuthorizationCredentials | None) -> bool:
        if secret is None:
            return True
        try:
            given = b"Bearer " + credentials.credentials.encode("latin-1")
        except (AttributeError, UnicodeEncodeError):  # no header, or not a token we could hold
            return False
        return token_matches(given, secret)

    async def authorised(
            credentials: HTTPAuthorizationCredentials | None = Depends(bearer)) -> None:
        if not token_ok(credentials):
            raise HTTPException(status.HTTP_401_UNAUTHORIZED, "missing or wrong bearer token",
                                headers={"WWW-Authenticate": "Bearer"})

    @app.get("/health")
    async def health(
            credentials: HTTPAuthorizationCredentials | None = Depends(bearer)) -> dict:
        try:
            fresh = scorer.freshness().to_dict()  # the data behind an answer now
        except StoredFileError as exc:  # e.g. a damaged build state: answers would be refused
            raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, str(exc)) from None
        answer = {"status": "ok", "model_version": scorer.model.metadata.model_version,
                  "fresh": not fresh["warnings"]}
        if token_ok(credentials):  # open to probes; the data's times only with the token
            answer["freshness"] = fresh
        return answer

    @app.get("/model", dependencies=[Depends(authorised)])
    async def model() -> dict:
        meta = scorer.model.metadata
        return {"model_version": meta.model_version, "feature_service": meta.feature_service,
                "features": meta.features, "horizon_days": meta.horizon_days,
                "train_window": meta.train_window, "metrics": meta.metrics,
                "versions": meta.versions, "risk_bands": scorer.bands,
                "event_vocabulary": meta.event_vocabulary.to_dict(),
                "vocabulary_sha256": meta.event_vocabulary.sha256}

    batcher = MicroBatcher(scorer)

    @app.post("/score", response_model=ScoreResponse, dependencies=[Depends(authorised)])
    async def score(request: ScoreRequest) -> JSONResponse:
        try:
            answer = await batcher.score(request.customer_ids, request.as_of)
        except (OnlineStoreNotMaterialized, StoredFileError) as exc:  # a table dropped, a
            # file damaged while serving: the one line that names it and what to do
            raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, str(exc)) from None
        # ScoreResponse's shape, serialised directly: validating our own output again would
        # cost more than the scoring (the OpenAPI schema still comes from response_model)
        body = {"scores": [s.to_dict() for s in answer.scores]}
        if answer.note is not None:
            body["note"] = answer.note
        return JSONResponse(body)

    return app


async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
    """422 with each error's reason and location, never the input (FastAPI echoes it)."""
    return JSONResponse(status_code=422, content={"detail": [
        {"loc": [part if isinstance(part, int) else str(part)[:64] for part in error["loc"]],
         "msg": str(error["msg"])[:200], "type": error["type"]}
        for error in exc.errors()]})


def prepare(context: Context, page_token: str | None = None) -> tuple[FastAPI, Limits]:
    """The service's app and limits, settings checked first (a clear error, nothing started);
    with ``page_token``, the web pages too, behind a sign-in with it (docs/web.md)."""
    api_token()
    limits = limits_from_env()
    app = create_app(context.scorer, limits=limits)
    if page_token is not None:
        include_pages(app, context, page_token, limits)
    return app, limits


def run(app: FastAPI, limits: Limits, host: str = "127.0.0.1", port: int = 8000) -> None:
    """Serve ``app`` with uvicorn: idle keep-alive and late headers close the connection."""
    # The model, registry and store objects live as long as the process: moved out of the
    # garbage collector's sight, full collections no longer pause requests (measured: p99
    # 141 ms -> 28 ms under 50 concurrent clients).
    gc.collect()
    gc.freeze()
    uvicorn.run(app, host=host, port=port, log_level="warning",
                timeout_keep_alive=limits.keep_alive_timeout,
                http=header_deadline_protocol(limits.header_timeout))


__all__ = ["MAX_BATCH", "TOKEN_VARIABLE", "create_app", "prepare", "run"]
