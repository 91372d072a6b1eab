"""The daily job: new inbox files -> event log -> features -> online store -> scores snapshot.

``refresh`` runs, in order and each step only as far as needed (so a re-run, or the run after a
killed one, completes the day and doubles nothing):

1. ingest every complete inbox file whose content was never ingested
   (:func:`.ingest.ingest_inbox`: a file still being written waits, one that cannot be read is
   set aside, a symbolic link or a special file is refused unread; the others go on);
2. reload the customers table when a file is given (new signups, churns);
3. build the feature tables incrementally (with DuckDB, or Spark: ``engine``) and
   ``feast apply``;
4. materialize the online store up to ``now``;
5. score every active customer (signed up at or before ``now``, not churned by then);
6. hand the scores to each of the context's sinks: the repo's snapshot
   ``DIR/data/scores/date=YYYY-MM-DD/scores.parquet`` (and a PostgreSQL ``churn_scores`` table
   when one is configured);
7. check freshness (:func:`usage_features.serving.freshness.freshness`): the latest event
   within ``max_lag`` of ``now``, everything ingested built, the online store on ``now``'s day.

The summary's ``alarms`` are what needs someone: the freshness warnings, and the inbox's files
set aside or refused and rows rejected (conflicting re-deliveries among them).

Two refreshes of one repo never run at once: the second raises ``RefreshBusyError``.
"""

from __future__ import annotations

import contextlib
import fcntl
import gc
import io
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from usage_features.adapters.duckdb_connection import daily_memory_limit_bytes
from usage_features.config import RepoPaths
from usage_features.service_layer.bootstrap import Context
from usage_features.service_layer.build import build
from usage_features.service_layer.ingest import ingest_inbox
from usage_features.service_layer.load_customers import load_customers
from usage_features.service_layer.materialize import materialize
from usage_features.service_layer.score import score_active


class RefreshBusyError(RuntimeError):
    """Another refresh holds the repo."""


@dataclass
class RefreshSummary:
    now: datetime
    files_ingested: list[str] = field(default_factory=list)
    #: Inbox files not taken, name -> why: still being written (taken on a later run, not an
    #: alarm), set aside (cannot be read; an alarm), refused (not a regular file; an alarm).
    files_waiting: dict[str, str] = field(default_factory=dict)
    files_set_aside: dict[str, str] = field(default_factory=dict)
    files_refused: dict[str, str] = field(default_factory=dict)
    events_accepted: int = 0
    events_rejected: int = 0
    rejected_by_reason: dict[str, int] = field(default_factory=dict)
    quarantine_files: list[str] = field(default_factory=list)
    feature_rows_changed: bool = False
    active_customers: int = 0
    scored: int = 0
    #: Where the scores' features were read (``online``, or ``historical`` with a reason).
    features_from: str | None = None
    not_scored: dict[str, int] = field(default_factory=dict)
    #: Rows delivered to each sink, by the sink's name (the snapshot folder first).
    delivered: dict[str, int] = field(default_factory=dict)
    latest_event: datetime | None = None
    alarms: list[str] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)

    @property
    def status(self) -> str:
        """``done``, or ``done with alarms`` (the run finished; something needs someone)."""
        return "done with alarms" if self.alarms else "done"

    def to_dict(self) -> dict:
        out = {"status": self.status, **asdict(self)}
        for key in ("now", "latest_event"):
            out[key] = out[key].isoformat() if out[key] else None
        return out


def refresh(context: Context, inbox: Path | None = None, now: datetime | None = None,
            customers: Path | None = None, progress: Callable[[str], None] | None = None,
            settle_seconds: float = 0.0, engine: str = "duckdb",
            spark_master: str | None = None) -> RefreshSummary:
    """Run the day's refresh of the context's repo to ``now`` (default the current time):
    ``inbox`` default ``DIR/inbox``, ``customers`` a customers file to load first,
    ``settle_seconds`` how long ago (by the wall clock) an inbox file must have been last
    modified to be taken; ``engine`` (``duckdb`` or ``spark``, with ``spark_master``) builds
    the feature tables, as ``build --engine``."""
    say = progress or (lambda _: None)
    paths = context.paths
    now = now or datetime.now(UTC)
    summary = RefreshSummary(now=now)
    with _exclusive(paths), _cyclic_gc_paused(), _timer(summary) as timed:
        with timed("load model"):  # first: a missing or refused model changes nothing
            say("loading the model")
            context.model  # noqa: B018 (loads and checks it)
        with timed("ingest"):
            say("ingesting new inbox files")
            arrived = ingest_inbox(paths, inbox, now, settle_seconds)
            summary.files_ingested = arrived.files
            summary.files_waiting = arrived.waiting
            summary.files_set_aside = arrived.set_aside
            summary.files_refused = arrived.refused
            summary.events_accepted, summary.events_rejected = arrived.accepted, arrived.rejected
            summary.rejected_by_reason = arrived.rejected_by_reason
            summary.quarantine_files = arrived.quarantine_files
            summary.alarms += arrived.alarms
        if customers is not None:
            with timed("load-customers"):
                say("loading the customers table")
                load_customers(customers, paths)
        with timed("build"):
            say(f"building feature tables with {engine}")
            built = build(paths, context.config, engine, spark_master,
                          memory_limit=daily_memory_limit_bytes())
            summary.feature_rows_changed = built.changed
            # a damaged stored file was repaired: served from the repair, and an alarm
            summary.alarms += [f"repaired: {line}" for line in built.repaired]
        with timed("materialize"):
            say("materializing the online store")
            with contextlib.redirect_stdout(io.StringIO()):  # Feast prints its progress
                materialize(paths.repo, now, context.config)
        with timed("score"):
            say("scoring active customers")
            answer = score_active(context.scorer, paths.customers, now)
            scored = [s for s in answer.scores if s.churn_probability is not None]
            summary.active_customers, summary.scored = len(answer.scores), len(scored)
            summary.features_from = answer.features_from
            for s in answer.scores:
                if s.churn_probability is None:
                    key = f"{s.status}: {s.error}" if s.error else s.status
                    summary.not_scored[key] = summary.not_scored.get(key, 0) + 1
        with timed("deliver"):
            for sink in context.sinks:
                summary.delivered[sink.name] = sink.write(scored, now.date())
        record = context.scorer.freshness(now)  # read afresh: after today's steps
        summary.latest_event = record.latest_event_at
        summary.alarms += record.warnings()
    return summary


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
def _cyclic_gc_paused() -> Iterator[None]:
    """Python's cyclic garbage collector paused for the day's steps, as it was after them.

    They allocate millions of small objects that form no cycles (the online store's rows, the
    scores and their reasons, the rows written to SQLite), and the collector's passes over
    them, each longer as they pile up, cost 3.5-4 s of a 62 s refresh at 10^8 events (the
    peak memory the same with or without it). Reference counting still frees each object.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


@contextmanager
def _timer(summary: RefreshSummary):
    @contextmanager
    def timed(step: str):
        start = time.perf_counter()
        yield
        summary.seconds[step] = round(time.perf_counter() - start, 3)

    yield timed
