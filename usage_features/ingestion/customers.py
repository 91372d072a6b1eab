"""Load the customers table (signup, churn, plan) into a feature repo, validated.

The table feeds the ``customer_profile`` feature view (signup time) and the training labels
(``churned_at``). Only ``customer_id`` and ``signup_at`` are required; ``churned_at`` empty or
null means the customer is active, and ``plan`` (not a model input) may be null or absent.
Ids and timestamps follow the event rules (:mod:`validation`): ids trimmed and limited,
timestamps with a UTC offset and within the repo's plausible range.

The table is a snapshot, replaced as a whole: a file with any invalid row is refused, every
such row named with its reasons, and the previous table is kept (a partial snapshot would
silently drop customers from the labels).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa

from usage_features.adapters.duckdb_connection import connect, copy_atomically
from usage_features.config import RepoPaths
from usage_features.ingestion.readers import InputError, LinkDirectory, open_input
from usage_features.ingestion.settings import Limits, load_settings
from usage_features.ingestion.validation import (
    customer_id_rules,
    reason_sql,
    stripped,
    time_range_rules,
    timestamp_rules,
)
from usage_features.schema import CUSTOMER_SCHEMA

COLUMNS = tuple(CUSTOMER_SCHEMA.names)
REQUIRED = ("customer_id", "signup_at")
OPTIONAL = ("churned_at", "plan")
#: How many rejected rows an error message lists (the count covers all).
SHOWN_ROWS = 10


def read_customers(path: Path, columns: Mapping[str, str] | None = None,
                   limits: Limits | None = None, now: datetime | None = None) -> pa.Table:
    """Read and validate a customers file; raises ``InputError`` naming every bad row.

    ``columns`` maps the file's column names to the table's (``{"account_id":
    "customer_id"}``); ``now`` bounds future times (default: the clock).
    """
    limits = limits or Limits()
    now = now or datetime.now(UTC)
    with connect() as con:
        with LinkDirectory() as links:
            source = open_input(con, Path(path), links, REQUIRED, OPTIONAL, columns)
            batches = list(source.batches(100_000))
        if not batches or sum(b.num_rows for b in batches) == 0:
            raise InputError(f"{path}: no customers")
        con.register("raw", pa.Table.from_batches(batches))
        con.register("checked", con.sql(_validated(source.types, now, limits)).to_arrow_table())
        rejected = con.sql("SELECT source_row, raw_customer_id, reason FROM checked "
                           "WHERE reason IS NOT NULL ORDER BY source_row").fetchall()
        if rejected:
            raise InputError(_refusal(path, rejected))
        table = con.sql("SELECT customer_id, signup_at, churned_at, plan FROM checked "
                        "ORDER BY customer_id")
        return table.to_arrow_table().cast(CUSTOMER_SCHEMA)


def _validated(types: dict[str, str], now: datetime, limits: Limits) -> str:
    rules = dict(customer_id_rules("raw_customer_id", limits))
    parsed = {}
    for column in ("signup_at", "churned_at"):
        ts, unparseable, naive = timestamp_rules(f"raw_{column}", types[column])
        too_early, in_future = time_range_rules(ts, now, limits)
        present = (f"raw_{column} IS NOT NULL" if types[column] != "VARCHAR"
                   else f"coalesce({stripped(f'raw_{column}')}, '') <> ''")
        if column == "signup_at":
            rules["missing_signup_at"] = f"NOT ({present})"
        usable = f"{present} AND NOT ({unparseable}) AND NOT ({naive})"
        rules.update({
            f"unparseable_{column}": f"{present} AND ({unparseable})",
            f"naive_{column}": f"{present} AND NOT ({unparseable}) AND {naive}",
            f"implausible_{column}": f"{usable} AND {too_early}",
            f"future_{column}": f"{usable} AND {in_future}",
        })
        parsed[column] = f"CASE WHEN {usable} THEN {ts} END"
    rules["churned_at_before_signup_at"] = f"({parsed['churned_at']}) < ({parsed['signup_at']})"
    customer = stripped("raw_customer_id")
    rules["duplicate_customer_id"] = f"count(*) OVER (PARTITION BY {customer}) > 1"
    plan = f"nullif({stripped('CAST(raw_plan AS VARCHAR)')}, '')"
    return f"""
        SELECT source_row, raw_customer_id, {customer} AS customer_id,
               {parsed['signup_at']} AS signup_at, {parsed['churned_at']} AS churned_at,
               {plan} AS plan, {reason_sql(rules)} AS reason
        FROM raw"""


def _refusal(path: Path, rejected: list[tuple]) -> str:
    lines = [f"row {row}" + (f" (customer {raw!r})" if raw is not None else "")
             + f": {reason.replace(';', ', ')}" for row, raw, reason in rejected[:SHOWN_ROWS]]
    more = len(rejected) - SHOWN_ROWS
    if more > 0:
        lines.append(f"... and {more} more row(s)")
    return (f"{path}: {len(rejected)} invalid row(s), nothing loaded (the previous customers "
            "table is kept):\n  " + "\n  ".join(lines))


def load_customers(path: Path, repo: RepoPaths, columns: Mapping[str, str] | None = None,
                   now: datetime | None = None) -> int:
    """Validate ``path`` and make it the repo's customers table; returns the row count.

    ``columns`` defaults to the mapping stored in the repo's ``usage_features.yaml``.
    """
    settings = load_settings(repo.repo)
    mapping = settings.customer_columns if columns is None else columns
    table = read_customers(path, mapping, settings.limits, now)
    with connect() as con:
        con.register("customers", table)
        copy_atomically(con, "SELECT * FROM customers", repo.customers)
    return table.num_rows
