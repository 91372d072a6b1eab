"""``usage-features verify``: is every stored file what was written, and does the online store
hold what the offline tables say? With ``repair``, rebuild what can be rebuilt.

Checked, each finding one :class:`Problem` (one line naming the file and the fix):

- **event log**: each file against the size and SHA-256 its ingest recorded (its manifest); a
  damaged manifest. The log is the source of truth: a damaged file is not repaired, its
  problem names the input files to ingest again. (Files ingested before manifests existed are
  counted in a note; ``repair`` records their checksums as they are.)
- **event index**: the id index ingest finds stored ids with: its catalogue's SHA-256, each
  block's CRC-32, and the log files it names (:mod:`usage_features.adapters.event_index`);
  repaired by rebuilding it from the log;
- **build state**: it carries its own SHA-256;
- **feature tables**: every file the build recorded (month files, row sidecars, the profile and
  daily tables) against its size and SHA-256, and no month file the build did not write
  (:func:`~usage_features.features.build.check_tables`); repaired by a build, which recomputes
  them from the event log;
- **online store**: a sample of customers, their online features against the historical
  path's at the time the store was materialized to (the monitor's skew check,
  :func:`~usage_features.monitoring.report.skew`); repaired by materializing from the start to
  that same time;
- **model**: the model file's SHA-256 against its metadata (repaired by retraining only).
"""

from __future__ import annotations

import contextlib
import fcntl
import io
from dataclasses import asdict, dataclass, field

import numpy as np
import pandas as pd

from usage_features.adapters.checksums import DamagedFileError
from usage_features.adapters.duckdb_connection import connect, parquet_list
from usage_features.adapters.event_index import EventIdIndex
from usage_features.adapters.event_log import EventLog
from usage_features.adapters.files import file_lock
from usage_features.features.build import NoEventsError, check_tables
from usage_features.features.retrieval import historical_features, served_feature_names
from usage_features.features.state import load_state
from usage_features.monitoring.report import DEFAULT_SKEW_SAMPLE, skew
from usage_features.service_layer.bootstrap import Context
from usage_features.service_layer.build import build
from usage_features.service_layer.materialize import materialize
from usage_features.serving.freshness import materialized_through
from usage_features.training.persistence import ModelFileError, check_model_file

#: The fix of a table or state problem.
REBUILD = ("run `usage-features build` (it rebuilds it from the event log) or "
           "`usage-features verify --repair`")
#: The fix of an online-store problem.
REMATERIALIZE = "run `usage-features verify --repair` (it materializes again from the start)"


@dataclass
class Problem:
    #: ``event log``, ``event index``, ``build state``, ``feature tables``, ``online store``
    #: or ``model``.
    part: str
    #: One line: the file (or store), what is wrong, the fix.
    message: str
    #: Whether ``verify --repair`` can repair it (the event log and the model: no).
    repairable: bool
    repaired: bool = False


@dataclass
class VerifyReport:
    problems: list[Problem] = field(default_factory=list)
    #: What was not checked, and why (not problems).
    notes: list[str] = field(default_factory=list)

    @property
    def remaining(self) -> list[Problem]:
        return [p for p in self.problems if not p.repaired]

    @property
    def clean(self) -> bool:
        return not self.remaining

    def to_dict(self) -> dict:
        return {"clean": self.clean, "problems": [asdict(p) for p in self.problems],
                "notes": self.notes}


def verify(context: Context, repair: bool = False, sample: int = DEFAULT_SKEW_SAMPLE
           ) -> VerifyReport:
    """Check the context's repo (see the module docstring); ``repair`` what can be repaired,
    each problem then marked ``repaired`` once a second check finds it gone."""
    report = VerifyReport()
    log = EventLog(context.paths)
    if repair:
        _record_unrecorded(log, report)
    _event_log(log, report)
    _event_index(log, report, repair)
    stored = _tables(context, report)
    if repair and stored:
        _rebuild(context, report, stored)
    online = _online(context, sample, report) if not _tables_unsound(report) else []
    if repair and online:
        _rematerialize(context, sample, online)
    _model(context, report)
    return report


def _event_log(log: EventLog, report: VerifyReport) -> None:
    damaged, unrecorded = log.problems()
    if unrecorded:
        report.notes.append(f"{unrecorded} event-log file(s) ingested before checksums were "
                            "recorded: not checked (`usage-features verify --repair` records "
                            "their checksums as they are now)")
    report.problems += [Problem("event log", str(exc), repairable=False) for exc in damaged]


def _event_index(log: EventLog, report: VerifyReport, repair: bool) -> None:
    """The id index, checked with no ingest under way; ``repair``: rebuilt when damaged."""
    index = EventIdIndex(log.root)
    with connect() as con:
        with file_lock(log.paths.lock, fcntl.LOCK_SH, create=False), log.snapshot() as files:
            if not files:
                return
            found, lacking = index.problems(con, files)
        problems = [Problem("event index", line, repairable=True) for line in found]
        if repair and problems:
            with log.write_lock():
                index.rebuild(con, log.files(), "verify --repair")
                again, lacking = index.problems(con, log.files())
            for problem in problems:
                problem.repaired = not again
    if lacking:
        report.notes.append(f"the event index lacks {lacking} log file(s) (ingested before the "
                            "index existed, or by an ingest stopped after its commit): the next "
                            "ingest indexes them")
    report.problems += problems


def _record_unrecorded(log: EventLog, report: VerifyReport) -> None:
    recorded = log.record_unrecorded()
    if recorded:
        report.notes.append(f"recorded the checksums of {recorded} event-log file(s) as they "
                            "are now")


def _tables(context: Context, report: VerifyReport) -> list[Problem]:
    """The build state and the tables' files; the problems found (also added to ``report``)."""
    paths = context.paths
    found: list[Problem] = []
    try:
        state = load_state(paths)
    except DamagedFileError as exc:
        found.append(Problem("build state", f"{exc.path}: {exc.problem}; {REBUILD}", True))
    else:
        if not state["event_files"]:
            if any(paths.customer_usage.glob("*.parquet")):
                found.append(Problem("build state", f"{paths.build_state}: missing, so the "
                                                    f"feature tables cannot be checked; "
                                                    f"{REBUILD}", True))
            else:
                report.notes.append("no feature tables built yet: not checked")
        else:
            found += [Problem("feature tables", f"{path}: {problem}; {REBUILD}", True)
                      for path, problem, _ in check_tables(paths, state).found]
    report.problems += found
    return found


def _tables_unsound(report: VerifyReport) -> bool:
    return any(p.part in ("build state", "feature tables") and not p.repaired
               for p in report.problems)


def _rebuild(context: Context, report: VerifyReport, found: list[Problem]) -> None:
    """A build repairs the tables and the state; each problem it leaves stays unrepaired."""
    try:
        with contextlib.redirect_stdout(io.StringIO()):  # Feast prints its progress
            build(context.paths, context.config)
    except (DamagedFileError, NoEventsError) as exc:
        report.notes.append(f"the build could not repair the feature tables: {exc}")
        return
    after = VerifyReport()
    _tables(context, after)
    still = {p.message for p in after.problems}
    for problem in found:
        problem.repaired = problem.message not in still
    report.problems += [p for p in after.problems if p.message not in
                        {q.message for q in found}]


def _online(context: Context, sample: int, report: VerifyReport) -> list[Problem]:
    """A sample of customers, online against historical at the store's materialize end."""
    paths, store = context.paths, context.store
    end = materialized_through(store)
    if end is None:
        report.notes.append("the online store was never materialized: not checked")
        return []
    pending = load_state(paths).get("unmaterialized_since", {}).get(context.config)
    if pending:
        report.notes.append(f"the feature tables changed since the last materialize (from "
                            f"{pending}): the online store was not compared with them (run "
                            "`usage-features materialize`)")
        return []
    ids = _customers(paths)
    if not ids:
        return []
    chosen = sorted(np.random.default_rng().choice(ids, min(sample, len(ids)), replace=False))
    names = served_feature_names(paths.repo)
    where = f"the online store of {context.config} (materialized to {end.isoformat()})"
    try:
        historical = historical_features(
            store, pd.DataFrame({"customer_id": chosen, "event_timestamp": end}))
    except DamagedFileError as exc:  # (found by retrieval, not by the tables' check)
        problem = Problem("feature tables", str(exc), True)
        report.problems.append(problem)
        return []
    try:
        result = skew(store, historical, names, end, end, len(chosen))
    except Exception as exc:  # an unreadable online row or table: materializing rewrites it
        problem = Problem("online store", f"{where}: cannot be read ({type(exc).__name__}: "
                                          f"{' '.join(str(exc).split())}); {REMATERIALIZE}", True)
        report.problems.append(problem)
        return [problem]
    if not result.get("mismatched_customers"):
        return []
    features = ", ".join(f"{name} ({n})" for name, n in result["features"].items())
    problem = Problem("online store", (
        f"{where}: {result['mismatched_customers']} of {result['compared_customers']} sampled "
        f"customers' features differ from the offline tables' at that time ({features}); "
        f"{REMATERIALIZE}"), True)
    report.problems.append(problem)
    return [problem]


def _customers(paths) -> list[str]:
    """Every customer the feature tables know (profile or usage rows)."""
    files = [*sorted(paths.customer_usage.glob("*.parquet")),
             *([paths.customer_profile] if paths.customer_profile.exists() else [])]
    if not files:
        return []
    with connect() as con:
        rows = con.execute(f"SELECT DISTINCT customer_id FROM read_parquet("
                           f"{parquet_list(files)}, union_by_name = true)").fetchall()
    return sorted(r[0] for r in rows if r[0] is not None)


def _rematerialize(context: Context, sample: int, found: list[Problem]) -> None:
    """Materialize from the start to the same end; repaired if a second sample agrees."""
    end = materialized_through(context.store)
    with contextlib.redirect_stdout(io.StringIO()):  # Feast prints its progress
        materialize(context.paths.repo, end, context.config, full=True)
    again = _online(context, sample, VerifyReport())
    for problem in found:
        problem.repaired = not again


def _model(context: Context, report: VerifyReport) -> None:
    path = context.model_path or context.paths.model
    if not path.exists():
        report.notes.append(f"no model at {path}: not checked")
        return
    try:
        check_model_file(path)
    except ModelFileError as exc:
        report.problems.append(Problem("model", str(exc), repairable=False))
