"""The ``usage-features`` command line. Thin: each command calls one operation and prints it.

This module holds the app and what every command shares; the commands live in ``data``,
``model``, ``serving`` and ``demo`` beside it.
"""

from __future__ import annotations

import os
import sys
from datetime import UTC, datetime
from enum import Enum
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.text import Text
from typer.core import TyperGroup

from usage_features.adapters.feast.typechecks import skip_feast_typechecks
from usage_features.config import default_repo
from usage_features.extras import MissingExtraError, require


class Commands(TyperGroup):
    """The app's commands. A file one of them cannot read (damaged, truncated) or write (no
    space left) ends it with one line naming the file and the next step, exit status 2
    (:mod:`usage_features.adapters.stored_files`), never a library's traceback."""

    def invoke(self, ctx: typer.Context):
        try:
            return super().invoke(ctx)
        except (typer.Exit, typer.Abort):
            raise
        except Exception as exc:
            # deferred: the adapters load pyarrow (~0.3 s); only a failed command pays it
            from usage_features.adapters.stored_files import file_error

            found = file_error(exc)
            if found is None:
                raise
            # literally: a file's words are neither markup nor emoji codes
            console.print(Text.assemble(("error:", "red"), " ", str(found)))
            raise typer.Exit(code=2) from None


app = typer.Typer(
    help="Point-in-time-correct SaaS usage features on Feast, and the churn model on top.",
    cls=Commands,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
# emoji=False: a file's ":x:" stays ":x:". Markup is for the project's own tags only: text that
# comes from a file, a path or an exception goes through ``plain``.
console = Console(stderr=True, soft_wrap=True, emoji=False)
out = Console(emoji=False)


def plain(text: object) -> str:
    """``text`` printed literally by the consoles: its ``[`` not read as markup, its control
    characters (a terminal's escape sequences) shown as escapes."""
    shown = "".join(c if c.isprintable() or c in "\t\n" else
                    c.encode("unicode_escape", "backslashreplace").decode("ascii")
                    for c in str(text))
    return escape(shown)


def set_up_process() -> None:
    """The console script's process settings, made before any command imports what they
    affect (the daily benchmark's phases make them too)."""
    # scikit-learn's OpenMP threads spin while they wait; beside DuckDB's threads on a small
    # machine that spinning starves everyone (the train end-to-end test: 140 s spinning, 30 s
    # passive). Set before libgomp loads (the commands import scikit-learn lazily); a value the
    # user set wins.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    # Feast's import without typeguard's instrumentation: 1.5 s instead of 5 (see the module)
    skip_feast_typechecks()


def main() -> None:
    """The ``usage-features`` console script: the process's settings, then the app."""
    set_up_process()
    try:
        app(prog_name="usage-features")
    except MissingExtraError as exc:  # an optional dependency a command needs is not installed
        console.print(f"[red]error:[/red] {plain(exc)}")
        sys.exit(2)


RepoOption = Annotated[
    Path,
    typer.Option("--repo", help="The feature repo; all data lives under DIR/data/.",
                 default_factory=default_repo, show_default="feature_repo"),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print one JSON object.")]
ConfigOption = Annotated[str, typer.Option(
    "--config", help="The repo's Feast config file, e.g. feature_store.redis.yaml.")]


class Engine(str, Enum):
    duckdb = "duckdb"
    spark = "spark"


EngineOption = Annotated[Engine, typer.Option(
    help="duckdb: in process. spark: PySpark (the package's spark extra and Java 17+), "
         "configured by the repo's feature_store.spark.yaml or spark-submit.")]
SparkMasterOption = Annotated[str | None, typer.Option(
    metavar="URL", envvar="USAGE_FEATURES_SPARK_MASTER",
    help="With --engine spark: the cluster to run on (spark://host:7077, yarn, k8s://...), "
         "instead of the spark.master of feature_store.spark.yaml. Executors read and write "
         "the repo's data/ at the same path: it must be shared storage.")]

MaxLagOption = Annotated[float | None, typer.Option(
    "--max-lag-hours", help="Warn when the latest ingested event is older than this at the "
                            "scoring time (default $USAGE_FEATURES_MAX_LAG_HOURS or 36).")]


def bootstrap_or_fail(repo: Path, config: str = "feature_store.yaml",
                      model_path: Path | None = None, max_lag_hours: float | None = None,
                      sink: str | None = None):
    """The use cases' context for the command's options (a bad option: exit status 2)."""
    # deferred: the service layer loads scikit-learn, pandas, DuckDB (~1 s); --help must not wait
    from usage_features.service_layer.bootstrap import bootstrap

    try:
        return bootstrap(repo, config, model_path, max_lag_hours, sink)
    except ValueError as exc:
        raise fail(str(exc)) from None


def progress_bar(total: int | None, label: str) -> Progress:
    return Progress(
        TextColumn(label), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
        console=console, transient=True, disable=not console.is_terminal,
    )


def utc(moment: datetime) -> datetime:
    """A time given on the command line: UTC unless it names an offset."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


def fail(message: str) -> typer.Exit:
    """Print ``message`` as the command's error (plain text: a path or an extra's name in
    brackets is not markup) and return the exit (status 2) to raise."""
    console.print(f"[red]error:[/red] {plain(message)}")
    return typer.Exit(code=2)


def require_extra(extra: str, command: str) -> None:
    """Stop ``command`` with an error naming the extra, before any work, when it is missing."""
    try:
        require(extra, command)
    except MissingExtraError as exc:
        raise fail(str(exc)) from None


# Register the commands (each module adds its own to ``app``).
from usage_features.cli import daily, data, demo, model, serving, verify, vocabulary  # noqa: E402,F401
