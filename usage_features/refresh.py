"""The daily job: new inbox files -> event log -> features -> online store -> scores snapshot.

``refresh`` runs, in order and each step only as far as needed (so a re-run, or the run after a
killed one, completes the day and doubles nothing):

1. ingest every inbox file whose content was never ingested (``ingestion.inbox``);
2. reload the customers table when a file is given (new signups, churns);
3. build the feature tables incrementally and ``feast apply``;
4. materialize the online store up to ``now``;
5. score every active customer (signed up at or before ``now``, not churned by then);
6. write ``DIR/data/scores/date=YYYY-MM-DD/scores.parquet`` (and upsert the same rows into a
   PostgreSQL ``churn_scores`` table with a ``sink``);
7. check freshness (:func:`usage_features.serving.freshness.freshness`): the latest event
   within ``max_lag`` of ``now``, everything ingested built, the online store on ``now``'s day.

Two refreshes of one repo never run at once: the second raises ``RefreshBusyError``.
"""

from __future__ import annotations

import contextlib
import fcntl
import io
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from usage_features.config import RepoPaths
from usage_features.features.store import DEFAULT_CONFIG


class RefreshBusyError(RuntimeError):
    """Another refresh holds the repo."""


@dataclass(frozen=True)
class RefreshConfig:
    repo: Path
    inbox: Path | None = None  # default DIR/inbox
    now: datetime | None = None  # default the current time
    customers: Path | None = None  # a new customers table to load first
    sink: str | None = None  # postgresql://... conninfo
    config: str = DEFAULT_CONFIG
    model_path: Path | None = None
    max_lag: timedelta | None = None  # default: serving.freshness.max_event_lag()


@dataclass
class RefreshSummary:
    now: datetime
    files_ingested: list[str] = field(default_factory=list)
    events_accepted: int = 0
    events_rejected: int = 0
    feature_rows_changed: bool = False
    active_customers: int = 0
    scored: int = 0
    not_scored: dict[str, int] = field(default_factory=dict)
    snapshot: str | None = None
    sink_rows: int | None = None
    latest_event: datetime | None = None
    alarms: list[str] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict:
        out = asdict(self)
        for key in ("now", "latest_event"):
            out[key] = out[key].isoformat() if out[key] else None
        return out


def refresh(config: RefreshConfig, progress: Callable[[str], None] | None = None
            ) -> RefreshSummary:
    """Run the day's refresh of ``config.repo`` (see the module's docstring)."""
    say = progress or (lambda _: None)
    paths = RepoPaths(config.repo)
    now = config.now or datetime.now(UTC)
    summary = RefreshSummary(now=now)
    with _exclusive(paths), _timer(summary) as timed:
        with timed("load model"):  # first: a missing or refused model changes nothing
            say("loading the model")
            from usage_features.training.persistence import load_model

            model = load_model(config.model_path or paths.model, repo=paths.repo)
        with timed("ingest"):
            say("ingesting new inbox files")
            _ingest_inbox(paths, config, now, summary)
        if config.customers is not None:
            with timed("load-customers"):
                say("loading the customers table")
                from usage_features.ingestion.customers import load_customers

                load_customers(config.customers, paths)
        with timed("build"):
            say("building feature tables")
            from usage_features.features.build import build_features
            from usage_features.features.store import apply_definitions

            summary.feature_rows_changed = build_features(paths).changed
            apply_definitions(paths.repo, config.config)
        with timed("materialize"):
            say("materializing the online store")
            from usage_features.serving.materialize import materialize

            with contextlib.redirect_stdout(io.StringIO()):  # Feast prints its progress
                materialize(paths.repo, now, config.config)
        with timed("score"):
            from usage_features.features.store import open_store
            from usage_features.serving.scorer import ChurnScorer

            scorer = ChurnScorer(open_store(paths.repo, config.config), model, repo=paths.repo,
                                 config=config.config, max_lag=config.max_lag)
            say("scoring active customers")
            frame = _score_active(scorer, paths, now, summary)
        with timed("deliver"):
            from usage_features.serving.snapshots import write_snapshot

            summary.snapshot = str(write_snapshot(paths.scores, frame, now.date()))
            if config.sink:
                from usage_features.adapters.postgres_scores import PostgresScoreSink

                summary.sink_rows = PostgresScoreSink(config.sink).write(frame, now.date())
        from usage_features.serving.freshness import freshness

        record = freshness(paths.repo, now, config.config, max_lag=config.max_lag)
        summary.latest_event = record.latest_event_at
        summary.alarms += record.warnings()
    return summary


def _ingest_inbox(paths: RepoPaths, config: RefreshConfig, now: datetime,
                  summary: RefreshSummary) -> None:
    from usage_features.ingestion import ingest_files
    from usage_features.ingestion.inbox import Inbox

    inbox = Inbox(config.inbox or paths.repo / "inbox", paths.data / "inbox.json")
    for item in inbox.pending():
        result = ingest_files([item.path], paths, now=now)
        inbox.record(item, now, {k: getattr(result, k)
                                 for k in ("read", "accepted", "rejected", "duplicates")})
        summary.files_ingested.append(item.path.name)
        summary.events_accepted += result.accepted
        summary.events_rejected += result.rejected


def _score_active(scorer, paths: RepoPaths, now: datetime, summary: RefreshSummary):
    from usage_features.serving.snapshots import scores_frame
    from usage_features.serving.status import active_customers

    customers = active_customers(paths.customers, now)
    scores = scorer.score(customers, now)
    summary.active_customers = len(customers)
    for score in scores:
        if score.churn_probability is None:
            key = f"{score.status}: {score.error}" if score.error else score.status
            summary.not_scored[key] = summary.not_scored.get(key, 0) + 1
    frame = scores_frame(scores, now)
    summary.scored = len(frame)
    return frame


@contextmanager
def _exclusive(paths: RepoPaths) -> Iterator[None]:
    paths.data.mkdir(parents=True, exist_ok=True)
    with open(paths.data / ".refresh.lock", "a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise RefreshBusyError(
                f"another refresh of {paths.repo} is running; this one did nothing "
                "(run it again when that one ends)") from None
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


@contextmanager
def _timer(summary: RefreshSummary):
    @contextmanager
    def timed(step: str):
        start = time.perf_counter()
        yield
        summary.seconds[step] = round(time.perf_counter() - start, 3)

    yield timed
