"""Column-wise validation of raw event rows, in SQL (one pass, no Python object per row).

Each rule is a SQL condition over the raw text columns; a row's ``reason`` lists every rule it
breaks (``;``-separated codes), and is NULL for a valid row.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from usage_features.domain.value_objects import UUID_PATTERN, EventType

#: Rejection reason codes and what they mean.
REASONS: dict[str, str] = {
    "invalid_event_id": "event_id is missing or not a UUID (8-4-4-4-12 hex digits)",
    "empty_customer_id": "customer_id is missing or empty",
    "unparseable_timestamp": "timestamp is missing or not an ISO-8601 date-time",
    "naive_timestamp": "timestamp has no UTC offset (add Z or +hh:mm)",
    "future_timestamp": "timestamp is more than a day after the time of ingestion",
    "unknown_event_type": "event_type is missing or not one of the EventType values",
    "missing_score": "feature_adoption_score is missing",
    "invalid_score": "feature_adoption_score is not a number (or is NaN)",
    "score_out_of_range": "feature_adoption_score is outside [0, 1]",
    "conflicting_event_id": "event_id is already stored, or earlier in the input, with other values",
}

# A time of day followed by a UTC offset: "...T10:00:00Z", "... 10:00:00.5+02:00", "...10:00-0500".
_OFFSET_PATTERN = r"[0-9]{2}:[0-9]{2}(:[0-9]{2}([.,][0-9]+)?)? ?(Z|z|[+-][0-9]{2}(:?[0-9]{2})?)$"


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


_NUMBERS = ("DOUBLE", "FLOAT", "REAL", "INTEGER", "BIGINT", "SMALLINT", "TINYINT", "HUGEINT",
            "UBIGINT", "UINTEGER")


def _timestamp_rules(kind: str) -> tuple[str, str, str]:
    """(parsed timestamp, unparseable condition, naive condition) for the input's type."""
    if kind.startswith("TIMESTAMPTZ") or kind.endswith("WITH TIME ZONE"):
        return ("CAST(raw_timestamp AS TIMESTAMPTZ)", "raw_timestamp IS NULL", "false")
    if kind.startswith("TIMESTAMP") or kind == "DATE":  # no zone: every value is naive
        return ("CAST(raw_timestamp AS TIMESTAMPTZ)", "raw_timestamp IS NULL",
                "raw_timestamp IS NOT NULL")
    ts = "TRY_CAST(trim(raw_timestamp) AS TIMESTAMPTZ)"
    naive = (f"{ts} IS NOT NULL AND NOT regexp_matches(trim(raw_timestamp), "
             f"{_literal(_OFFSET_PATTERN)})")
    return ts, f"{ts} IS NULL", naive


def _score_rules(kind: str) -> tuple[str, str, str]:
    """(parsed score, missing condition, not-a-number condition) for the input's type."""
    if kind in _NUMBERS or kind.startswith("DECIMAL"):
        score = "CAST(raw_feature_adoption_score AS DOUBLE)"
        return score, "raw_feature_adoption_score IS NULL", f"isnan({score})"
    score = "TRY_CAST(trim(raw_feature_adoption_score) AS DOUBLE)"
    return (score, "coalesce(trim(raw_feature_adoption_score), '') = ''",
            f"trim(raw_feature_adoption_score) <> '' AND coalesce(isnan({score}), true)")


def validated_sql(source: str, types: dict[str, str], now: datetime,
                  max_future: timedelta) -> str:
    """SELECT over ``source`` (columns ``raw_<name>``, of the given DuckDB ``types``) adding
    parsed canonical columns and ``reason``; the raw values are kept as text for rejected rows
    only. Typed inputs (a Parquet TIMESTAMPTZ or DOUBLE column) are checked without a detour
    through text."""
    event_types = ", ".join(_literal(t.value) for t in EventType)
    latest_allowed = (now + max_future).isoformat()
    ts, unparseable, naive = _timestamp_rules(types["timestamp"])
    score, missing, not_a_number = _score_rules(types["feature_adoption_score"])
    rules = {
        "invalid_event_id": f"NOT coalesce(regexp_full_match(trim(raw_event_id), "
        f"{_literal(UUID_PATTERN.strip('^$'))}), false)",
        "empty_customer_id": "coalesce(trim(raw_customer_id), '') = ''",
        "unparseable_timestamp": unparseable,
        "naive_timestamp": naive,
        "future_timestamp": f"{ts} > TIMESTAMPTZ {_literal(latest_allowed)}",
        "unknown_event_type": f"coalesce(raw_event_type NOT IN ({event_types}), true)",
        "missing_score": missing,
        "invalid_score": not_a_number,
        "score_out_of_range": f"NOT isnan({score}) AND ({score} < 0 OR {score} > 1)",
    }
    reason_parts = ", ".join(
        f"CASE WHEN coalesce({condition}, false) THEN {_literal(code)} END"
        for code, condition in rules.items()
    )
    raw = ", ".join(f"CASE WHEN reason IS NOT NULL THEN CAST(raw_{c} AS VARCHAR) END AS raw_{c}"
                    for c in ("event_id", "customer_id", "timestamp", "event_type",
                              "feature_adoption_score"))
    return f"""
        SELECT file_index, source_row, {raw}, event_id, customer_id, timestamp, event_type,
               feature_adoption_score, reason
        FROM (SELECT *,
                lower(trim(raw_event_id)) AS event_id,
                raw_customer_id AS customer_id,
                {ts} AS timestamp,
                raw_event_type AS event_type,
                {score} AS feature_adoption_score,
                nullif(concat_ws(';', {reason_parts}), '') AS reason
              FROM {source})
    """


def timestamp_rules(kind: str) -> tuple[str, str, str]:
    """Ingest's own timestamp parsing, for other readers of times (``predict --entities``).

    SQL over a column named ``raw_timestamp`` of DuckDB type ``kind``: (the parsed
    TIMESTAMPTZ, the unparseable condition, the naive condition), exactly as ingest applies
    them, so every reader accepts the same forms.
    """
    return _timestamp_rules(kind)
