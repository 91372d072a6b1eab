"""Propose a repo's event vocabulary (``events.types``) from an export's event names.

The names are counted in DuckDB, a statement per file grouping the raw ``event_type`` values
(10^8 rows are never a Python loop); only the distinct values are normalised in Python, with
:func:`~usage_features.domain.vocabulary.normalise_event_name`, so they match as ingest will.
Names that cannot make a feature name (reserved, a leading digit, the feature stem of a more
frequent name, a built-in feature's name) are left out, so the proposed block is always a valid
vocabulary. Roles are never guessed: those already declared in the repo's file are kept, the
rest are the user's. ``--write`` rewrites the file with ``yaml.safe_dump``: its other settings
are kept, its comments and layout are not.
"""

from __future__ import annotations

import warnings
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
import yaml

from usage_features.adapters.duckdb_connection import connect
from usage_features.adapters.files import atomic_write
from usage_features.domain.vocabulary import (
    RESERVED_NAMES,
    Adoption,
    DeclaredType,
    EventVocabulary,
    VocabularyError,
    feature_stem,
    normalise_event_name,
    parse_vocabulary,
)
from usage_features.features.spec import feature_spec
from usage_features.ingestion import text_formats
from usage_features.ingestion.readers import Input, InputError, LinkDirectory, open_input
from usage_features.ingestion.settings import SettingsError

#: Rows read at a time from a CSV or JSON Lines input.
CHUNK_ROWS = 1_000_000
#: More distinct raw values than this in one file: not an event-type column.
MAX_DISTINCT = 10_000
#: The count comments start at this column at most (a longer entry pushes its own further).
COMMENT_COLUMN_MAX = 48
#: The comment that hands the roles to the user.
ROLES_HINT = ("# roles: add {role: core}, {role: lock_in} or {role: basic} to the types "
              "that play them")


@dataclass(frozen=True)
class LeftOut:
    name: str
    count: int
    reason: str


@dataclass(frozen=True)
class Proposal:
    """Valid names with their counts, most frequent first; the names left out; the totals
    (``unnamed``: rows without a name, or not a record)."""

    names: tuple[tuple[str, int], ...]
    left_out: tuple[LeftOut, ...]
    files: int
    unnamed: int = 0

    @property
    def events(self) -> int:
        return sum(n for _, n in self.names) + sum(x.count for x in self.left_out)


def count_event_names(paths: Sequence[Path], mapping: Mapping[str, str] | None = None
                      ) -> tuple[list[tuple[str, int]], int]:
    """``([(name, count)...] most frequent first, ties by name; rows without a name)``.

    Every file is opened (and its ``event_type`` column found) before any is read. Raises
    :class:`InputError` for an unreadable file or one without an ``event_type`` column."""
    raw: Counter[str | None] = Counter()
    with connect() as con, LinkDirectory() as links, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the export's other columns are no concern here
        sources = [open_input(con.cursor(), Path(p), links, required=("event_type",),
                              mapping=mapping or {}) for p in paths]
        for source in sources:
            raw.update(_raw_counts(source))
    counts: Counter[str] = Counter()
    for value, n in raw.items():
        counts[normalise_event_name(value) if value is not None else ""] += n
    unnamed = counts.pop("", 0)
    return sorted(counts.items(), key=lambda item: (-item[1], item[0])), unnamed


def _raw_counts(source: Input) -> Counter[str | None]:
    """The file's raw ``event_type`` values and their counts (a malformed row's as None):
    grouped by DuckDB straight from a Parquet file, by Arrow a text file's batch at a time."""
    counts: Counter[str | None] = Counter()
    try:
        if source.relation is not None:
            counts.update(dict(source.relation.aggregate(
                "CAST(raw_event_type AS VARCHAR) AS name, count(*) AS n", "name"
            ).limit(MAX_DISTINCT + 1).fetchall()))
        else:
            for batch in source.batches(CHUNK_ROWS):
                names = pc.if_else(batch.column("malformed"), pa.scalar(None, pa.string()),
                                   batch.column("raw_event_type"))
                counts.update({v["values"]: v["counts"]
                               for v in pc.value_counts(names).to_pylist()})
                if len(counts) > MAX_DISTINCT:
                    break
    except duckdb.Error as exc:
        raise InputError(f"{source.path}: cannot be read as Parquet: {exc}") from None
    except text_formats.MalformedFileError as exc:
        raise InputError(f"{source.path}: cannot be read: {exc}") from None
    if len(counts) > MAX_DISTINCT:
        raise InputError(f"{source.path}: more than {MAX_DISTINCT:,} distinct event names: is "
                         "the right column read as event_type? (--map SRC=event_type)")
    return counts


def propose(counts: Sequence[tuple[str, int]], files: int, unnamed: int = 0) -> Proposal:
    """Split counted names into those a vocabulary accepts and those it would refuse."""
    kept: list[tuple[str, int]] = []
    left_out: list[LeftOut] = []
    stems: dict[str, str] = {}
    for name, n in counts:
        stem = feature_stem(name)
        if stem in RESERVED_NAMES:
            reason = f"{stem!r} is a reserved name ({', '.join(RESERVED_NAMES)})"
        elif stem[0].isdigit():
            reason = f"a feature name cannot start with a digit ({stem}_count_30d)"
        elif stem in stems:
            reason = f"makes the same feature name as {stems[stem]!r} ({stem}_count_30d)"
        elif clash := _builtin_clash(name):
            reason = clash
        else:
            stems[stem] = name
            kept.append((name, n))
            continue
        left_out.append(LeftOut(name, n, reason))
    return Proposal(tuple(kept), tuple(left_out), files, unnamed)


def _builtin_clash(name: str) -> str | None:
    """Why ``name`` cannot be declared beside the built-in features (None: it can)."""
    try:
        for adoption in Adoption:
            feature_spec(EventVocabulary((DeclaredType(name),), adoption=adoption))
    except VocabularyError as exc:
        return str(exc)
    return None


def render_block(proposal: Proposal, roles: Mapping[str, str] | None = None) -> str:
    """The ``types:`` block (YAML), a count comment per name, left-out names commented out."""
    roles = roles or {}
    rows = [(_entry(name, {"role": roles[name]} if name in roles else {}), f"# {_events(n)}")
            for name, n in proposal.names]
    rows += [(_entry(x.name, {}, "  # "), f"# {_events(x.count)}; left out: {x.reason}")
             for x in proposal.left_out]
    width = min(COMMENT_COLUMN_MAX, max([28] + [len(b[-1]) + 2 for b, _ in rows]))
    lines = [_pad("types:", width) + f"# {len(proposal.names)} event names in "
             f"{proposal.files} file(s), {_events(proposal.events)}", "  " + ROLES_HINT]
    for body, comment in rows:
        lines += [*body[:-1], _pad(body[-1], width) + comment]
    return "\n".join(lines) + "\n"


def _pad(line: str, width: int) -> str:
    return line.ljust(width) if len(line) + 2 <= width else line + "  "


def _events(n: int) -> str:
    return f"{n:,} event{'' if n == 1 else 's'}"


def _entry(name: str, value: dict, prefix: str = "  ") -> list[str]:
    """``name: value`` as YAML lines under ``types:`` (quoted where YAML needs it)."""
    text = yaml.safe_dump({name: value}, default_flow_style=None, sort_keys=False,
                          allow_unicode=True, width=float("inf"))
    return [prefix + line for line in text.rstrip("\n").split("\n")]


@dataclass(frozen=True)
class Merged:
    """The settings with the proposed types, the roles kept, and the declared names dropped."""

    settings: dict
    roles: dict[str, str]
    not_seen: tuple[str, ...]


def merge_types(settings: dict | None, proposal: Proposal, path: Path | str = "settings"
                ) -> Merged:
    """``settings`` (the file as YAML reads it) with ``events.types`` replaced by the proposal,
    keeping the roles already declared for names still present; every other key is kept."""
    settings = dict(settings or {})
    events = settings.get("events") or {}
    declared = events.get("types") if isinstance(events, dict) else None
    if not isinstance(events, dict) or not isinstance(declared, dict | type(None)):
        raise SettingsError(f"{path}: events and events.types must be mappings")
    old = {normalise_event_name(str(k)): v for k, v in (declared or {}).items()}
    roles = {k: v["role"] for k, v in old.items() if isinstance(v, dict) and v.get("role")}
    names = [name for name, _ in proposal.names]
    roles = {name: roles[name] for name in names if name in roles}
    types = {name: ({"role": roles[name]} if name in roles else {}) for name in names}
    if "types" in events:
        events = {**events, "types": types}
    else:  # after the column mapping, before the other keys
        keys = [k for k in events if k == "columns"]
        events = {**{k: events[k] for k in keys}, "types": types,
                  **{k: v for k, v in events.items() if k not in keys}}
    settings["events"] = events
    return Merged(settings, roles, tuple(n for n in old if n not in types))


def write_settings_file(path: Path, settings: dict) -> None:
    """Write ``settings`` to ``path`` atomically (a temporary file beside it, then a rename),
    after checking that the written text reads back as a valid vocabulary.

    Written with ``yaml.safe_dump``: the file's comments and layout are not kept."""
    path = path.resolve() if path.is_symlink() else path
    path.parent.mkdir(parents=True, exist_ok=True)
    text = yaml.safe_dump(settings, sort_keys=False, allow_unicode=True)
    events = (yaml.safe_load(text) or {}).get("events") or {}
    feature_spec(parse_vocabulary(events.get("types"), events.get("unlisted"),
                                  events.get("adoption")))
    atomic_write(path, text, keep_mode=True)
