"""The simulation as a foreign product's export: its own event names, no event ids, no score.

    vocabulary = crm_vocabulary(25)
    export = as_foreign_export(sim.events, vocabulary, seed=7)  # account_id, event_time, ...
    Path("usage_features.yaml").write_text(foreign_settings_yaml(vocabulary))

Simulated types map onto declared roles: ``monitoring_run`` to the core types,
``integration_connect`` to the lock-in types, ``login`` and ``dashboard_view`` to the basic
ones; the four others spread over the role-less types by each account's own preference mix
(a role without a type falls back to the role-less types, then to every type). Each account
writes its times in its own UTC offset (the same instants); a small share of names varies in
case and surrounding spaces; ``duplicate_fraction`` of the rows are repeated verbatim.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import yaml

from usage_features.adapters.files import atomic_path
from usage_features.domain.value_objects import EventType
from usage_features.domain.vocabulary import (
    Adoption,
    DeclaredType,
    EventVocabulary,
    Role,
    VocabularyError,
    normalise_event_name,
    parse_vocabulary,
)
from usage_features.simulation.config import Simulation
from usage_features.simulation.population import EVENT_TYPES
from usage_features.simulation.tables import CHUNK_ROWS
from usage_features.simulation.text import iso_matrix, strings_from_matrix
from usage_features.simulation.writer import write_table

FOREIGN_SCHEMA = pa.schema([
    pa.field("account_id", pa.int64(), nullable=False),
    pa.field("event_time", pa.string(), nullable=False),
    pa.field("event_type_name", pa.string(), nullable=False),
])
ACCOUNT_SCHEMA = pa.schema([
    pa.field("account_id", pa.int64(), nullable=False),
    pa.field("created_at", pa.string(), nullable=False),
    pa.field("churned_at", pa.string()),
    pa.field("plan", pa.string()),
])
#: The export's columns, as ``usage_features.yaml`` maps them.
EVENT_COLUMNS = {"account_id": "customer_id", "event_time": "timestamp",
                 "event_type_name": "event_type"}
CUSTOMER_COLUMNS = {"account_id": "customer_id", "created_at": "signup_at"}
#: UTC offsets the accounts write their times in (minutes east of UTC, suffix).
OFFSETS = ((0, b"Z"), (330, b"+05:30"), (-480, b"-08:00"), (0, b"+00:00"), (60, b"+01:00"),
           (-300, b"-05:00"), (540, b"+09:00"), (-180, b"-03:00"), (600, b"+10:00"),
           (345, b"+05:45"))
#: Where each simulated type goes: a role, or None for the role-less types.
_TARGET = {EventType.MONITORING_RUN: Role.CORE, EventType.INTEGRATION_CONNECT: Role.LOCK_IN,
           EventType.LOGIN: Role.BASIC, EventType.DASHBOARD_VIEW: Role.BASIC}
#: Dirichlet concentration of the accounts' mixes: role-less types vary most between accounts.
_CONCENTRATION = {Role.CORE: 4.0, Role.LOCK_IN: 4.0, Role.BASIC: 4.0, None: 0.8}
_CUSTOMER_PREFIX = "cust-"
_US_PER_MINUTE = 60_000_000

#: The built-in CRM's event types, in declaration order (roles on the first eight).
_CRM_NAMES = (
    "search add_contact create_opportunity connect_mailbox login log_call sync_calendar "
    "view_dashboard email_lead import_contacts update_deal_stage schedule_meeting create_task "
    "complete_task add_note export_report create_pipeline invite_teammate send_sequence "
    "merge_duplicates tag_contact view_forecast create_quote upload_document set_reminder "
    "edit_contact assign_lead create_campaign close_deal share_report").split()
_CRM_ROLES = {"create_opportunity": Role.CORE, "log_call": Role.CORE,
              "connect_mailbox": Role.LOCK_IN, "sync_calendar": Role.LOCK_IN,
              "login": Role.BASIC, "view_dashboard": Role.BASIC}


def crm_vocabulary(n_types: int = 25) -> EventVocabulary:
    """A CRM's ``n_types`` event types (roles on the first eight; ``custom_action_NN`` after
    the hand-written names), rejecting unlisted names, adoption from breadth."""
    if n_types < 1:
        raise ValueError(f"n_types must be at least 1, got {n_types}")
    names = _CRM_NAMES[:n_types] + [f"custom_action_{i:02d}"
                                     for i in range(len(_CRM_NAMES) + 1, n_types + 1)]
    return EventVocabulary(tuple(DeclaredType(n, _CRM_ROLES.get(n)) for n in names),
                           adoption=Adoption.BREADTH)


def vocabulary_from_spec(spec: str) -> EventVocabulary:
    """``crm`` or ``crm:N`` (:func:`crm_vocabulary`), or a ``usage_features.yaml`` path whose
    ``events`` section declares ``types``."""
    built_in = re.fullmatch(r"crm(?::(\d+))?", spec.strip())
    if built_in:
        return crm_vocabulary(int(built_in.group(1) or 25))
    try:
        raw = yaml.safe_load(Path(spec).read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise VocabularyError(f"{spec}: cannot read the vocabulary: {exc}") from None
    events = raw.get("events") if isinstance(raw, dict) else None
    if not isinstance(events, dict) or events.get("types") is None:
        raise VocabularyError(f"{spec}: no events.types (the event vocabulary) declared")
    return parse_vocabulary(events["types"], events.get("unlisted"), events.get("adoption"))


def account_ids(customer_ids: pa.Array | pa.ChunkedArray) -> pa.Array | pa.ChunkedArray:
    """The simulator's ``cust-00042`` as the integer 42."""
    return pc.cast(pc.utf8_slice_codeunits(customer_ids, len(_CUSTOMER_PREFIX)), pa.int64())


def as_foreign_export(events: pa.Table, vocabulary: EventVocabulary, seed: int,
                      duplicate_fraction: float = 0.01, *, name_noise: float = 0.02
                      ) -> pa.Table:
    """A clean simulation's events (``EVENT_SCHEMA``) as ``FOREIGN_SCHEMA``, in their order
    (each duplicate right after its original); the same arguments give the same table."""
    if not 0.0 <= duplicate_fraction <= 1.0 or not 0.0 <= name_noise <= 1.0:
        raise ValueError("duplicate_fraction and name_noise must be within [0, 1]")
    offset_rng, mix_rng, pick_rng, name_rng, dup_rng = (
        np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(5))
    account = account_ids(events.column("customer_id")).to_numpy()
    us = pc.cast(events.column("timestamp"), pa.int64()).to_numpy()
    simulated = pc.index_in(events.column("event_type"), pa.array(EVENT_TYPES))
    if simulated.null_count:
        raise ValueError("as_foreign_export needs a clean simulation's events (EVENT_SCHEMA)")
    simulated = simulated.to_numpy()
    n_accounts = int(account.max()) + 1 if len(account) else 1
    zone = offset_rng.integers(len(OFFSETS), size=n_accounts)[account]
    declared = np.zeros(len(account), np.int32)
    for group, sources in _groups(vocabulary).items():
        rows = np.flatnonzero(np.isin(simulated, sources))
        picked = _spread(mix_rng, pick_rng, account[rows], n_accounts, len(group),
                         _CONCENTRATION[vocabulary.types[group[0]].role])
        declared[rows] = np.asarray(group, np.int32)[picked]
    variants = [_variants(t.name) for t in vocabulary.types]
    noisy = name_rng.random(len(account)) < name_noise
    variant = np.where(noisy, name_rng.integers(1, len(variants[0]), len(account)), 0)
    code = declared * len(variants[0]) + variant
    copies = np.ones(len(account), np.int64)
    copies[dup_rng.choice(len(account), round(duplicate_fraction * len(account)),
                          replace=False)] += 1
    order = np.repeat(np.arange(len(account)), copies)
    names = pa.array([v for vs in variants for v in vs], pa.string())
    batches = []
    for start in range(0, len(order), CHUNK_ROWS):
        rows = order[start:start + CHUNK_ROWS]
        batches.append(pa.record_batch([
            pa.array(account[rows], pa.int64()), _local_times(us[rows], zone[rows]),
            names.take(pa.array(code[rows])),
        ], schema=FOREIGN_SCHEMA))
    return pa.Table.from_batches(batches, schema=FOREIGN_SCHEMA)


def _local_times(us: np.ndarray, zone: np.ndarray) -> pa.Array:
    """ISO-8601 local times with their offset: the instants ``us`` in ``OFFSETS[zone]``."""
    minutes = np.array([m for m, _ in OFFSETS], np.int64)
    width = max(len(s) for _, s in OFFSETS)
    suffixes = np.array([list(s.ljust(width)) for _, s in OFFSETS], np.uint8)
    local, length = iso_matrix(us + minutes[zone] * _US_PER_MINUTE)
    text = np.empty((len(us), local.shape[1] + width), np.uint8)
    text[:, :local.shape[1]] = local
    text[:, local.shape[1]:] = suffixes[zone]
    return strings_from_matrix(text, length + np.array([len(s) for _, s in OFFSETS])[zone])


def _groups(vocabulary: EventVocabulary) -> dict[tuple[int, ...], list[int]]:
    """Declared type indexes (a group) -> the simulated type indexes that go to them."""
    unrolled = tuple(i for i, t in enumerate(vocabulary.types) if t.role is None)
    fallback = unrolled or tuple(range(len(vocabulary.types)))
    groups: dict[tuple[int, ...], list[int]] = {}
    for source, simulated in enumerate(EVENT_TYPES):
        role = _TARGET.get(EventType(simulated))
        group = fallback
        if role is not None:
            group = tuple(i for i, t in enumerate(vocabulary.types) if t.role == role) or fallback
        groups.setdefault(group, []).append(source)
    return groups


def _spread(mix_rng: np.random.Generator, pick_rng: np.random.Generator, account: np.ndarray,
            n_accounts: int, size: int, concentration: float) -> np.ndarray:
    """An index in ``range(size)`` per event, drawn from its account's own mix (Dirichlet
    around an uneven popularity of the group's types)."""
    popularity = 1.0 / np.arange(1, size + 1) ** 0.8
    popularity = popularity[mix_rng.permutation(size)] / popularity.sum()
    weights = mix_rng.standard_gamma(concentration * size * popularity, (n_accounts, size))
    cumulative = np.cumsum(weights + 1e-12, axis=1)
    cumulative /= cumulative[:, -1:]
    cumulative[:, -1] = 1.0
    # account a's block of the flat, increasing table spans (a, a + 1]
    flat = (np.arange(n_accounts)[:, None] + cumulative).ravel()
    found = np.searchsorted(flat, account + pick_rng.random(len(account)), side="right")
    return np.minimum(found - account * size, size - 1)


def _variants(name: str) -> list[str]:
    """``name`` as written, then five spellings that trim and lower-case back to it."""
    forms = [name.upper(), name.capitalize(), f" {name.capitalize()}", f"{name} ",
             f"  {name.title()} "]
    return [name] + [f if normalise_event_name(f) == name else f" {name} " for f in forms]


def foreign_accounts(customers: pa.Table) -> pa.Table:
    """The customers (``CUSTOMER_SCHEMA``) as ``ACCOUNT_SCHEMA``: ISO-8601 UTC times (``Z``),
    an empty ``churned_at`` for an account that has not churned."""
    def iso(column: str) -> pa.Array:
        values = customers.column(column).combine_chunks()
        us = pc.cast(values, pa.int64()).fill_null(0).to_numpy()
        text = strings_from_matrix(*iso_matrix(us, (b"Z",)))
        return pc.if_else(values.is_valid(), text, pa.scalar(None, pa.string()))

    return pa.Table.from_arrays([account_ids(customers.column("customer_id")), iso("signup_at"),
                                 iso("churned_at"), customers.column("plan")],
                                schema=ACCOUNT_SCHEMA)


def foreign_settings_yaml(vocabulary: EventVocabulary) -> str:
    """The ``usage_features.yaml`` that reads :func:`as_foreign_export` and
    :func:`foreign_accounts` (adoption from breadth: the export has no score)."""
    def scalar(text: str) -> str:
        plain = re.fullmatch(r"[a-z_][a-z0-9_]*", text) and yaml.safe_load(text) == text
        return text if plain else json.dumps(text)

    def flow(mapping: dict[str, str]) -> str:
        return "{" + ", ".join(f"{scalar(k)}: {scalar(v)}" for k, v in mapping.items()) + "}"

    lines = ["# A foreign product's export, as `usage-features simulate --vocabulary` writes it.",
             "events:", f"  columns: {flow(EVENT_COLUMNS)}", "  types:"]
    lines += [f"    {scalar(t.name)}: " + (f"{{role: {t.role.value}}}" if t.role else "{}")
              for t in vocabulary.types]
    lines += [f"  unlisted: {vocabulary.unlisted.value}", f"  adoption: {Adoption.BREADTH.value}",
              "customers:", f"  columns: {flow(CUSTOMER_COLUMNS)}"]
    return "\n".join(lines) + "\n"


@dataclass(frozen=True)
class ForeignFiles:
    """What :func:`write_foreign_simulation` wrote: paths and counts."""

    events_path: Path
    accounts_path: Path
    customers_path: Path
    settings_path: Path
    events: int


def write_foreign_simulation(sim: Simulation, vocabulary: EventVocabulary, out_dir,
                             duplicate_fraction: float = 0.01) -> ForeignFiles:
    """Write ``events.csv`` (:func:`as_foreign_export`, seeded by the config's seed),
    ``accounts.csv``, ``customers.parquet`` and the matching ``usage_features.yaml``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = ForeignFiles(out / "events.csv", out / "accounts.csv", out / "customers.parquet",
                         out / "usage_features.yaml", 0)
    export = as_foreign_export(sim.events, vocabulary, sim.config.seed, duplicate_fraction)
    for table, path in ((export, paths.events_path),
                        (foreign_accounts(sim.customers), paths.accounts_path)):
        with atomic_path(path) as partial:
            pacsv.write_csv(table, partial)
    write_table(sim.customers, paths.customers_path)
    paths.settings_path.write_text(foreign_settings_yaml(vocabulary), encoding="utf-8")
    return replace(paths, events=export.num_rows)
