"""``usage-features verify``: every stored file against its checksum, the online store against
the offline tables; ``--repair`` rebuilds what can be rebuilt."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from usage_features.cli import ConfigOption, RepoOption, app, bootstrap_or_fail, console, fail


@app.command()
def verify(
    repo: RepoOption,
    repair: Annotated[bool, typer.Option(
        "--repair", help="Rebuild damaged feature tables and build state from the event log "
                         "(a build) and a damaged online store (materialize from the start).")
    ] = False,
    sample: Annotated[int, typer.Option(
        min=1, help="Customers whose online features are compared with the offline tables'.")
    ] = 500,
    config: ConfigOption = "feature_store.yaml",
    as_json: Annotated[bool, typer.Option(
        "--json", help="Print the report as one JSON object.")] = False,
) -> None:
    """Check the event log, the feature tables and their sidecars, the build state, a sample of
    the online store and the model's hash; one line per problem.

    Exit status 0: nothing wrong (with --repair: nothing left wrong, each repair printed);
    1: problems found (left); 2: the check could not run.
    """
    # deferred: the service layer loads scikit-learn, pandas, DuckDB (~1 s); --help must not wait
    from usage_features.service_layer.verify import verify as run_verify

    context = bootstrap_or_fail(repo, config)
    with console.status("verify"):
        try:
            report = run_verify(context, repair=repair, sample=sample)
        except (FileNotFoundError, ValueError, OSError) as exc:
            raise fail(str(exc)) from None
    if as_json:
        print(json.dumps(report.to_dict()))
    else:
        # literally: a path or a message from a file is no markup
        for problem in report.problems:
            print(f"{'repaired' if problem.repaired else 'problem'}: [{problem.part}] "
                  f"{problem.message}")
        for note in report.notes:
            print(f"note: {note}")
        left = len(report.remaining)
        print(f"{context.paths.repo}: " + (f"{left} problem(s)" if left else "verified")
              + (f", {len(report.problems) - left} repaired" if repair else ""))
    if not report.clean:
        raise typer.Exit(code=1)
