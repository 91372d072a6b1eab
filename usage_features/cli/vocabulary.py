"""The command that proposes a repo's event vocabulary from an export: vocabulary."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from usage_features.cli import JsonOption, RepoOption, app, console, fail, out
from usage_features.cli.data import MapOption, _mapping


@app.command()
def vocabulary(
    paths: Annotated[list[Path], typer.Argument(help="Parquet, CSV or JSON Lines exports.")],
    repo: RepoOption,
    column_map: MapOption = None,
    write: Annotated[bool, typer.Option(
        "--write", help="Put the block in DIR/usage_features.yaml as events.types, and the "
                        "--map flags as events.columns (the file's other settings are kept, "
                        "its comments are not).")] = False,
    as_json: JsonOption = False,
) -> None:
    """Propose the events.types block of usage_features.yaml from the event names of an export.

    Each distinct name (trimmed, lower-cased) with its count, most frequent first. Roles are not
    guessed: the ones the repo's file already declares are kept; add the others yourself.
    Names that cannot make a feature name are left out, with a warning. Exit status 2 when a
    file cannot be read or has no event_type column.
    """
    # deferred: the ingestion layer loads DuckDB and pyarrow (~0.3 s); --help must not wait
    from usage_features.domain.vocabulary import VocabularyError
    from usage_features.ingestion.readers import InputError
    from usage_features.ingestion.settings import (
        SettingsError,
        read_settings_file,
        settings_path,
    )
    from usage_features.ingestion.vocabulary_proposal import (
        count_event_names,
        merge_types,
        propose,
        render_block,
        write_settings_file,
    )
    from usage_features.schema import EVENT_COLUMNS

    mapping = _mapping(repo, column_map, "event_columns", EVENT_COLUMNS)
    path = settings_path(repo)
    try:
        counts, unnamed = count_event_names(paths, mapping)
        proposal = propose(counts, len(paths), unnamed)
        merged = merge_types(read_settings_file(path), proposal, path)
    except (InputError, SettingsError) as exc:
        raise fail(str(exc)) from None
    for left in proposal.left_out:
        console.print(f"[yellow]warning:[/yellow] {escape(repr(left.name))} ({left.count:,} "
                      f"events) left out: {escape(left.reason)}")
    if unnamed:
        console.print(f"[yellow]note:[/yellow] {unnamed:,} row(s) without an event name "
                      "(missing, empty or not a record) were not counted")
    if merged.not_seen:
        console.print(f"[yellow]note:[/yellow] declared in {escape(str(path))} but not seen "
                      f"in the export: {escape(', '.join(merged.not_seen))}"
                      + (" (dropped by --write)" if write else ""))
    if not proposal.names:
        raise fail("no event name to propose"
                   + (" (every name was left out, see above)" if proposal.left_out else ""))
    if write:
        existed = path.is_file()
        if column_map:  # stored beside the types, so that ingest needs no flags either
            events = merged.settings.get("events") or {}
            merged.settings["events"] = {"columns": mapping,
                                         **{k: v for k, v in events.items() if k != "columns"}}
        try:
            write_settings_file(path, merged.settings)
        except (OSError, VocabularyError) as exc:
            raise fail(f"{path} not written: {exc}") from None
        console.print(f"wrote {len(proposal.names)} event type(s) to {escape(str(path))}"
                      + ("; its other settings were kept, its comments and layout were not"
                         if existed else ""))
    if as_json:
        out.print_json(json.dumps({
            "types": [{"name": n, "count": c, "role": merged.roles.get(n)}
                      for n, c in proposal.names],
            "files": proposal.files, "events": proposal.events, "unnamed": proposal.unnamed,
            "left_out": [vars(x) for x in proposal.left_out],
            "not_seen": list(merged.not_seen), "written": str(path) if write else None}))
    else:
        typer.echo(render_block(proposal, merged.roles), nl=False)
