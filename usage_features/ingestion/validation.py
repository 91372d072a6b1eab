"""Column-wise validation of raw event rows, in SQL (one pass, no Python object per row).

Each rule is a SQL condition over the raw columns; a row's ``reason`` lists every rule it
breaks (``;``-separated codes), and is NULL for a valid row. A malformed row (not a record at
all) has the single reason ``malformed_row``.

The constants below are the project's own (patterns, event types, limits), quoted through the
one quoting helper; no input value is ever part of the SQL text.
"""

from __future__ import annotations

from datetime import datetime

from usage_features.adapters.duckdb_connection import sql_string
from usage_features.domain.value_objects import MAX_EVENT_ID_LENGTH, UUID_PATTERN
from usage_features.domain.vocabulary import (
    Adoption,
    EventVocabulary,
    Unlisted,
    default_vocabulary,
)
from usage_features.ingestion.settings import Limits

#: Rejection reason codes and what they mean.
REASONS: dict[str, str] = {
    "malformed_row": "the row is not a record: a CSV row with more or fewer fields than the "
                     "header, or a JSON Lines line that is not a JSON object",
    "invalid_event_id": f"event_id is missing, empty, longer than {MAX_EVENT_ID_LENGTH} "
                        "characters, or holds a control or invisible formatting character",
    "empty_customer_id": "customer_id is missing or empty",
    "customer_id_too_long": "customer_id is longer than the limit (default 256 characters)",
    "invalid_customer_id": "customer_id contains a control or invisible formatting character "
                           "(e.g. a bidi override, a zero-width space) or U+FFFD",
    "unparseable_timestamp": "timestamp is missing or not an ISO-8601 date-time "
                             "(offsets from -23:59 to +23:59)",
    "naive_timestamp": "timestamp has no UTC offset (add Z or +hh:mm)",
    "implausible_timestamp": "timestamp is before the repo's earliest plausible time "
                             "(default 1970-01-01T00:00:00Z)",
    "future_timestamp": "timestamp is later than the time of ingestion plus the allowed skew "
                        "(default 24 hours)",
    "unknown_event_type": "event_type is missing, or (with `unlisted: reject`) not one of the "
                          "repo's declared event types (compared after trimming and "
                          "lower-casing)",
    "missing_score": "feature_adoption_score is missing",
    "invalid_score": "feature_adoption_score is not a number (or is NaN)",
    "score_out_of_range": "feature_adoption_score is outside [0, 1]",
    "conflicting_event_id": ("event_id is already stored, or earlier in the input, with other "
                             "values"),
}

#: What surrounds an id or an event type without being part of it: Python's ``str.strip()``
#: whitespace (ASCII and Unicode spaces, line and paragraph separators).
WHITESPACE = ("".join(chr(c) for c in (*range(0x09, 0x0E), *range(0x1C, 0x21), 0x85, 0xA0,
                                       0x1680, *range(0x2000, 0x200B), 0x2028, 0x2029, 0x202F,
                                       0x205F, 0x3000)))
#: Characters no customer id may contain: control (Cc), format (Cf: bidi overrides and
#: isolates, zero-width characters, the byte-order mark), line/paragraph separators, and the
#: replacement character that undecodable input bytes become.
FORBIDDEN_ID_CHARACTERS = r"[\p{Cc}\p{Cf}\p{Zl}\p{Zp}\x{FFFD}]"
#: The accepted text forms: ``YYYY-MM-DD``, then optionally ``T`` or a space, ``hh:mm[:ss[.f]]``
#: and an offset ``Z``, ``+hh``, ``+hhmm`` or ``+hh:mm`` (hours up to 23, minutes up to 59).
_OFFSET = r"(Z|[+-]([01][0-9]|2[0-3])(:?[0-5][0-9])?)"
TIMESTAMP_PATTERN = (r"[0-9]{4}-[0-9]{2}-[0-9]{2}"
                     rf"([T ][0-9]{{2}}:[0-9]{{2}}(:[0-9]{{2}}(\.[0-9]+)?)?{_OFFSET}?)?")
_HAS_OFFSET = rf"[0-9]{{2}}:[0-9]{{2}}(:[0-9]{{2}}(\.[0-9]+)?)?{_OFFSET}$"

_NUMBERS = ("DOUBLE", "FLOAT", "REAL", "INTEGER", "BIGINT", "SMALLINT", "TINYINT", "HUGEINT",
            "UBIGINT", "UINTEGER")


_SPACE = "[" + "".join(f"\\x{{{ord(c):x}}}" for c in WHITESPACE) + "]"
_SURROUNDING_SPACE = f"^{_SPACE}+|{_SPACE}+$"


def stripped(column: str) -> str:
    """SQL: ``column`` without surrounding whitespace (a regular expression: DuckDB's
    ``trim(text, characters)`` is some twenty times slower)."""
    return f"regexp_replace({column}, {sql_string(_SURROUNDING_SPACE)}, '', 'g')"


def timestamp_rules(raw: str, kind: str) -> tuple[str, str, str]:
    """(parsed timestamp, unparseable condition, naive condition) for a raw column of the
    DuckDB type ``kind``: text in the accepted forms, or a typed timestamp (naive if it has no
    time zone)."""
    if kind.startswith("TIMESTAMPTZ") or kind.endswith("WITH TIME ZONE"):
        return f"CAST({raw} AS TIMESTAMPTZ)", f"{raw} IS NULL", "false"
    if kind.startswith("TIMESTAMP") or kind == "DATE":  # no zone: every value is naive
        return f"CAST({raw} AS TIMESTAMPTZ)", f"{raw} IS NULL", f"{raw} IS NOT NULL"
    text = stripped(raw)
    ts = f"TRY_CAST({text} AS TIMESTAMPTZ)"
    unparseable = (f"{ts} IS NULL OR NOT regexp_full_match({text}, "
                   f"{sql_string(TIMESTAMP_PATTERN)})")
    naive = f"NOT regexp_matches({text}, {sql_string(_HAS_OFFSET)})"
    return ts, unparseable, naive


def time_range_rules(ts: str, now: datetime, limits: Limits) -> tuple[str, str]:
    """(too early condition, in the future condition) for a parsed timestamp."""
    earliest = sql_string(limits.earliest_timestamp.isoformat())
    latest = sql_string((now + limits.max_future).isoformat())
    return f"{ts} < CAST({earliest} AS TIMESTAMPTZ)", f"{ts} > CAST({latest} AS TIMESTAMPTZ)"


def customer_id_rules(column: str, limits: Limits, canonical: bool = False
                      ) -> dict[str, str]:
    """Reason -> condition for a customer id column, raw or already ``canonical`` (the
    canonical form is :func:`stripped`)."""
    customer = column if canonical else stripped(column)
    return {
        "empty_customer_id": f"coalesce({customer}, '') = ''",
        "customer_id_too_long": f"length({customer}) > {int(limits.max_customer_id_length)}",
        "invalid_customer_id": f"regexp_matches({customer}, "
                               f"{sql_string(FORBIDDEN_ID_CHARACTERS)})",
    }


def _score_rules(kind: str) -> tuple[str, str, str]:
    """(parsed score, missing condition, not-a-number condition) for the input's type."""
    if kind in _NUMBERS or kind.startswith("DECIMAL"):
        score = "CAST(raw_feature_adoption_score AS DOUBLE)"
        return score, "raw_feature_adoption_score IS NULL", f"isnan({score})"
    score = "TRY_CAST(trim(raw_feature_adoption_score) AS DOUBLE)"
    return (score, "coalesce(trim(raw_feature_adoption_score), '') = ''",
            f"trim(raw_feature_adoption_score) <> '' AND coalesce(isnan({score}), true)")


def reason_sql(rules: dict[str, str]) -> str:
    """SQL: the ``;``-separated codes of the broken ``rules``, NULL when none is, and
    ``malformed_row`` alone for a malformed row (column ``malformed``)."""
    parts = ", ".join(f"CASE WHEN coalesce({condition}, false) THEN {sql_string(code)} END"
                      for code, condition in rules.items())
    return f"CASE WHEN malformed THEN 'malformed_row' ELSE nullif(concat_ws(';', {parts}), '') END"


def is_uuid_sql(text: str) -> str:
    """SQL: whether ``text`` is a UUID (8-4-4-4-12 hexadecimal digits, any case)."""
    return f"coalesce(regexp_full_match({text}, {sql_string(UUID_PATTERN.strip('^$'))}), false)"


def derived_id_sql(parts: list[str]) -> str:
    """SQL: an event id from an event's content (``parts``, text expressions), shaped as a
    UUID: the MD5 of the parts joined by a unit separator."""
    digest = f"md5(concat_ws(chr(31), {', '.join(parts)}))"
    return ("concat_ws('-', " + ", ".join(f"substr({digest}, {start}, {length})" for start, length
                                        in ((1, 8), (9, 4), (13, 4), (17, 4), (21, 12))) + ")")


def content_id_sql(key_columns: tuple[str, ...]) -> str:
    """SQL: the first occurrence's id of an event without an id column, from the canonical
    customer, the timestamp (microseconds since the epoch, so any offset of the same instant
    gives the same id), the event type and the raw ``key_columns`` (trimmed text)."""
    return derived_id_sql(["customer_id", "CAST(epoch_us(timestamp) AS VARCHAR)", "event_type",
                           *(f"coalesce({stripped(f'CAST({c} AS VARCHAR)')}, '')"
                             for c in key_columns)])


def validated_sql(source: str, types: dict[str, str], now: datetime, limits: Limits,
                  vocabulary: EventVocabulary | None = None, derive_id: bool = False,
                  key_columns: tuple[str, ...] = ()) -> str:
    """SELECT over ``source`` (columns ``file_index``, ``source_row``, ``raw_<name>`` of the
    given DuckDB ``types``, ``malformed``) adding parsed canonical columns and ``reason``; the
    raw values are kept as text for rejected rows only. Typed inputs (a Parquet TIMESTAMPTZ or
    DOUBLE column) are checked without a detour through text.

    The event type is checked against ``vocabulary`` (any non-empty name with ``unlisted:
    other``), the score only when the vocabulary's adoption comes from it (else it is null).
    With ``derive_id`` the id is :func:`content_id_sql` of the row (``key_columns``: source
    columns that are part of it); the occurrence number among identical rows is added after
    staging.

    Three steps, so that each value is parsed once: canonical values, then the timestamp's
    flags, then the reasons from both."""
    vocabulary = vocabulary or default_vocabulary()
    ts, unparseable, naive = timestamp_rules("raw_timestamp", types["timestamp"])
    too_early, in_future = time_range_rules("timestamp", now, limits)
    usable = "NOT ts_unparseable AND NOT ts_naive"
    if vocabulary.unlisted == Unlisted.REJECT:
        declared = ", ".join(sql_string(name) for name in vocabulary.names)
        unknown_type = f"coalesce(event_type NOT IN ({declared}), true)"
    else:
        unknown_type = "coalesce(event_type, '') = ''"
    rules = {
        # a UUID is valid as it is: the character checks are for other ids only
        **({} if derive_id else {"invalid_event_id": (
            f"coalesce(event_id, '') = '' OR NOT id_is_uuid AND ("
            f"length(event_id) > {MAX_EVENT_ID_LENGTH} "
            f"OR regexp_matches(event_id, {sql_string(FORBIDDEN_ID_CHARACTERS)}))")}),
        **customer_id_rules("customer_id", limits, canonical=True),
        "unparseable_timestamp": "ts_unparseable",
        "naive_timestamp": "NOT ts_unparseable AND ts_naive",
        "implausible_timestamp": f"{usable} AND {too_early}",
        "future_timestamp": f"{usable} AND {in_future}",
        "unknown_event_type": unknown_type,
    }
    if vocabulary.adoption == Adoption.SCORE:
        score, missing, not_a_number = _score_rules(types["feature_adoption_score"])
        rules |= {
            "missing_score": missing,
            "invalid_score": not_a_number,
            "score_out_of_range": "NOT isnan(feature_adoption_score) AND "
                                  "(feature_adoption_score < 0 OR feature_adoption_score > 1)",
        }
    else:
        score = "CAST(NULL AS DOUBLE)"
    event_id = content_id_sql(key_columns) if derive_id else "event_id"
    raw = ", ".join(f"CASE WHEN reason IS NOT NULL THEN CAST(raw_{c} AS VARCHAR) END AS raw_{c}"
                    for c in ("event_id", "customer_id", "timestamp", "event_type",
                              "feature_adoption_score"))
    return f"""
        SELECT file_index, source_row, {raw},
               CASE WHEN reason IS NULL THEN {event_id} END AS event_id, customer_id, timestamp,
               event_type, feature_adoption_score, reason
        FROM (SELECT *, {reason_sql(rules)} AS reason
              FROM (SELECT *,
                      {ts} AS timestamp,
                      coalesce({unparseable}, true) AS ts_unparseable,
                      coalesce({naive}, false) AS ts_naive,
                      CASE WHEN id_is_uuid THEN lower(id_text) ELSE id_text END AS event_id,
                      {stripped('raw_customer_id')} AS customer_id,
                      lower({stripped('raw_event_type')}) AS event_type,
                      {score} AS feature_adoption_score
                    FROM (SELECT *, {is_uuid_sql('id_text')} AS id_is_uuid
                          FROM (SELECT *, trim(CAST(raw_event_id AS VARCHAR)) AS id_text
                                FROM {source}))))
    """
