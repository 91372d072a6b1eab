"""Load the customers table (signup, churn, plan) into a feature repo, validated.

The table feeds the ``customer_profile`` feature view (signup time and plan) and the training
labels (``churned_at``). It is replaced as a whole: it is a snapshot, not a log.
"""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa

from usage_features.adapters.duckdb_connection import connect, copy_atomically
from usage_features.config import RepoPaths
from usage_features.ingestion.readers import InputError, scan_file
from usage_features.schema import CUSTOMER_SCHEMA

COLUMNS = tuple(CUSTOMER_SCHEMA.names)


def read_customers(path: Path) -> pa.Table:
    """Read and validate a customers file; raises ``InputError`` naming every problem."""
    con = connect()
    relation = scan_file(con, path, COLUMNS)
    missing = [c for c in COLUMNS if c not in relation.columns]
    if missing:
        raise InputError(f"{path}: missing required column(s): {', '.join(missing)}")
    con.register("raw", relation.select(", ".join(f'"{c}"' for c in COLUMNS)))
    typed = con.sql(
        """SELECT CAST(customer_id AS VARCHAR) AS customer_id,
                  TRY_CAST(CAST(signup_at AS VARCHAR) AS TIMESTAMPTZ) AS signup_at,
                  TRY_CAST(CAST(churned_at AS VARCHAR) AS TIMESTAMPTZ) AS churned_at,
                  CAST(plan AS VARCHAR) AS plan,
                  CAST(signup_at AS VARCHAR) AS raw_signup,
                  CAST(churned_at AS VARCHAR) AS raw_churn
           FROM raw"""
    )
    con.register("typed", typed.select("*, count(*) OVER (PARTITION BY customer_id) AS n_same")
                 .to_arrow_table())
    problems = {
        "empty customer_id": "coalesce(trim(customer_id), '') = ''",
        "unparseable signup_at": "signup_at IS NULL",
        "unparseable churned_at": "churned_at IS NULL AND coalesce(raw_churn, '') <> ''",
        "churned_at before signup_at": "churned_at < signup_at",
        "duplicate customer_id": "n_same > 1",
    }
    errors = []
    for problem, condition in problems.items():
        rows = con.sql(f"SELECT customer_id FROM typed WHERE {condition}").fetchall()
        if rows:
            sample = ", ".join(repr(r[0]) for r in rows[:3])
            errors.append(f"{len(rows)} row(s) with {problem} (e.g. {sample})")
    if errors:
        raise InputError(f"{path}: " + "; ".join(errors))
    if con.sql("SELECT count(*) FROM typed").fetchall()[0][0] == 0:
        raise InputError(f"{path}: no customers")
    table = con.sql(f"SELECT {', '.join(COLUMNS)} FROM typed ORDER BY customer_id")
    return table.to_arrow_table().cast(CUSTOMER_SCHEMA)


def load_customers(path: Path, repo: RepoPaths) -> int:
    """Validate ``path`` and make it the repo's customers table; returns the row count."""
    table = read_customers(path)
    con = connect()
    con.register("customers", table)
    copy_atomically(con, "SELECT * FROM customers", repo.customers)
    return table.num_rows
