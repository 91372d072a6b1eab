"""Compile the feature spec into SQL, for DuckDB or Spark SQL.

Two queries, each a function of the spec alone:

* ``daily_sql``: raw events -> one row per (customer, UTC day) with the ``DAILY`` aggregates;
* ``features_sql``: daily rows -> feature rows, one per customer and *change day* (a day on
  which an event enters or leaves some window), each stamped with the start of that day; rows
  whose values equal the customer's previous row are dropped, so tables stay compact.

The two dialects differ only in the handful of expressions in ``Dialect``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from usage_features.features.spec import (
    BREADTH_COLUMNS,
    BREADTH_DAYS,
    WINDOWS,
    Feature,
    FeatureSpec,
    change_offsets,
    feature_spec,
)


@dataclass(frozen=True)
class Dialect:
    name: str
    #: 128-bit integers (and shifts on them): per-type counts summed four in one aggregate
    packs_counts: bool
    event_order: str  # ordering key of "the latest event"
    day_number: str  # {date} -> integer days since 1970-01-01
    day_start: str  # {day} -> TIMESTAMP of that day's UTC midnight
    event_date: str  # {ts} -> UTC DATE
    row: str  # {values} -> a comparable row value
    distinct: str  # {a}, {b} -> null-safe "differ"
    month: str  # {ts} -> 'YYYY-MM' of a timestamp
    bucket: str  # {key}, {n} -> a number in [0, n) from a hash of the value ``key``

    def day_of(self, ts: str) -> str:
        """The UTC day number (days since 1970-01-01) of the timestamp expression ``ts``."""
        return self.day_number.format(date=self.event_date.format(ts=ts))


DUCKDB = Dialect(
    "duckdb", True,
    event_order="(timestamp, event_id)",
    day_number="CAST({date} - DATE '1970-01-01' AS INTEGER)",
    day_start="CAST(DATE '1970-01-01' + CAST({day} AS INTEGER) AS TIMESTAMPTZ)",
    event_date="CAST({ts} AS DATE)",
    row="row({values})",
    distinct="{a} IS DISTINCT FROM {b}",
    month="strftime({ts}, '%Y-%m')",
    bucket="hash({key}) % {n}",
)
SPARK = Dialect(
    "spark", False,
    event_order="struct(timestamp, event_id)",
    day_number="datediff({date}, DATE '1970-01-01')",
    day_start="CAST(date_add(DATE '1970-01-01', CAST({day} AS INT)) AS TIMESTAMP)",
    event_date="to_date({ts})",
    row="struct({values})",
    distinct="NOT ({a} <=> {b})",
    month="date_format({ts}, 'yyyy-MM')",
    bucket="pmod(hash({key}), {n})",
)
DIALECTS = {d.name: d for d in (DUCKDB, SPARK)}


def daily_sql(events: str, dialect: Dialect, spec: FeatureSpec | None = None) -> str:
    """Per (customer, day) aggregates of the events in relation ``events``."""
    spec = spec or feature_spec()
    aggregates = ",\n       ".join(
        f"{sql.format(event_order=dialect.event_order)} AS {name}"
        for name, sql in spec.daily.items()
    )
    day = dialect.day_of("timestamp")
    return f"""
SELECT customer_id, {day} AS day,
       {aggregates}
FROM {events}
GROUP BY customer_id, {day}"""


def features_sql(daily: str, dialect: Dialect, spec: FeatureSpec | None = None,
                 since: str | None = None) -> str:
    """Compact feature rows from the daily rows in relation ``daily`` (all days per customer).

    ``since``: a relation ``(customer_id, first_day)``: only the rows from each customer's
    ``first_day`` on, each compared (to drop a repeat) with the values in effect the day before
    (a candidate day added there), not with the previous change day's. With the daily rows of
    :func:`lookback_days` before ``first_day`` and a :func:`carry_sql` row, these are the rows
    the whole history gives (see :mod:`usage_features.features.build`)."""
    spec = spec or feature_spec()
    offsets = " UNION ALL ".join(f"SELECT {k} AS k" for k in change_offsets())
    base = [f for f in spec.windowed if not f.derived]
    derived = [f for f in spec.windowed if f.derived]
    stored = [f.name for f in spec.stored]
    columns = spec.timeline_columns
    breadth, source = (_breadth_ctes(daily, spec), "with_breadth") if spec.breadth_counts else (
        "", daily)
    windows = ",\n       ".join(
        f"{w.name} AS (PARTITION BY customer_id ORDER BY day {w.frame()})" for w in WINDOWS
    )
    packed, sums = _packed_counts(spec, dialect)
    base_columns = ",\n           ".join(_typed(f, sums) for f in base)
    derived_columns = ",\n           ".join(_typed(f) for f in derived)
    values = ", ".join(stored)
    row = dialect.row.format(values=values)
    candidates = f"""SELECT DISTINCT customer_id, day + k AS day
    FROM {daily} CROSS JOIN ({offsets}) AS offsets"""
    computed, after = "windowed", ""
    if since:  # change days from first_day - 1 on (earlier ones add nothing to any window)
        candidates = f"""SELECT DISTINCT d.customer_id, d.day + k AS day
    FROM {daily} d JOIN {since} s ON d.customer_id = s.customer_id CROSS JOIN ({offsets}) AS o
    WHERE d.day + k >= s.first_day - 1
    UNION SELECT DISTINCT d.customer_id, s.first_day - 1 AS day
    FROM {daily} d JOIN {since} s ON d.customer_id = s.customer_id"""
        computed = (f"(SELECT w.*, s.first_day AS since_day FROM windowed w JOIN {since} s "
                    "ON w.customer_id = s.customer_id WHERE w.day >= s.first_day - 1) AS w")
        after = " AND day >= since_day"
    return f"""
WITH {breadth}candidates AS (
    {candidates}),
timeline AS (
    SELECT customer_id, day, {", ".join([*columns, *(f"{v} AS {k}" for k, v in packed.items())])},
           false AS is_candidate
    FROM {source} AS d
    UNION ALL
    SELECT customer_id, day, {", ".join(f"NULL AS {c}" for c in [*columns, *packed])},
           true AS is_candidate
    FROM candidates),
windowed AS (
    SELECT customer_id, day, is_candidate,
           {base_columns}
    FROM timeline
    WINDOW {windows}),
features AS (
    SELECT customer_id, day, {", ".join(f.name for f in base)},
           {derived_columns}{", since_day" if since else ""}
    FROM {computed} WHERE is_candidate),
changes AS (
    SELECT *, lag({row}) OVER (PARTITION BY customer_id ORDER BY day) AS previous
    FROM features)
SELECT customer_id, {dialect.day_start.format(day="day")} AS feature_timestamp, day,
       {values}
FROM changes
WHERE {dialect.distinct.format(a="previous", b=row)}{after}"""


def _breadth_ctes(daily: str, spec: FeatureSpec) -> str:
    """CTEs ending in ``with_breadth``: the daily rows with ``breadth_weight`` (a day's events
    times the declared types used in the 30 days up to and including it), and rows of
    ``breadth_delta`` alone: +1 on the day a type's run of use starts (no use of it in the 30
    days before), -1 thirty days after the last day of a run (no use in the 30 days after).
    The deltas' running sum over the days before D is the number of types used in
    ``[D - 30, D)``: one lag and one lead per (customer, type), not a window per type."""
    cases = " ".join(f"WHEN {k} THEN {column}" for k, column in enumerate(spec.breadth_counts))
    types = " UNION ALL ".join(f"SELECT {k} AS k" for k in range(len(spec.breadth_counts)))
    nulls = ", ".join(f"NULL AS {c}" for c in spec.daily)
    n = BREADTH_DAYS
    return f"""type_days AS (
    SELECT customer_id, day, k FROM {daily} CROSS JOIN ({types}) AS types
    WHERE (CASE k {cases} END) > 0),
runs AS (
    SELECT customer_id, day, k,
           lag(day) OVER (PARTITION BY customer_id, k ORDER BY day) AS previous_day,
           lead(day) OVER (PARTITION BY customer_id, k ORDER BY day) AS next_day
    FROM type_days),
deltas AS (
    SELECT customer_id, day, sum(delta) AS breadth_delta FROM (
        SELECT customer_id, day, 1 AS delta FROM runs
        WHERE previous_day IS NULL OR previous_day < day - {n}
        UNION ALL
        SELECT customer_id, day + {n} AS day, -1 AS delta FROM runs
        WHERE next_day IS NULL OR next_day > day + {n}) AS d
    GROUP BY customer_id, day),
with_breadth AS (
    SELECT *, n_events * sum(breadth_delta) OVER (PARTITION BY customer_id ORDER BY day
        RANGE BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS breadth_weight
    FROM (SELECT customer_id, day, {", ".join(spec.daily)}, 0 AS breadth_delta FROM {daily}
          UNION ALL
          SELECT customer_id, day, {nulls}, breadth_delta FROM deltas) AS unioned),
"""


#: Packed per-type counts: bits per count, counts per 128-bit sum, and the largest daily count
#: that keeps a 30-day sum within its bits (a larger one stops the build, never overflows).
PACK_BITS, PACK_WIDTH = 31, 4
PACK_DAILY_LIMIT = (2**PACK_BITS - 1) // 31


def _packed_counts(spec: FeatureSpec, dialect: Dialect) -> tuple[dict[str, str], dict[str, str]]:
    """(packed timeline columns, each per-type count's SQL from them). A window sum costs the
    same whatever it sums, so on an engine with 128-bit integers the per-type counts of one
    window are summed four at a time, 31 bits each, and taken apart after: exact integers,
    a quarter of the aggregates (a 50-type vocabulary's build is ~2x faster)."""
    if not dialect.packs_counts:
        return {}, {}
    by_window: dict[str, list[Feature]] = {}
    for feature in spec.windowed:
        if feature.type_count:
            by_window.setdefault(feature.type_count[1], []).append(feature)
    packed, sums = {}, {}
    for window, features in by_window.items():
        for start in range(0, len(features), PACK_WIDTH):
            name = f"packed_{window}_{start // PACK_WIDTH}"
            group = features[start:start + PACK_WIDTH]
            packed[name] = " + ".join(
                f"(CAST(CASE WHEN coalesce({f.type_count[0]}, 0) <= {PACK_DAILY_LIMIT} "
                f"THEN {f.type_count[0]} "
                f"ELSE error('a daily count of ' || {f.type_count[0]} || ' events of one type "
                f"is beyond the packed counts'' range') END AS HUGEINT) << {PACK_BITS * j})"
                for j, f in enumerate(group))
            for j, f in enumerate(group):
                sums[f.name] = (f"coalesce((sum({name}) OVER {window} >> {PACK_BITS * j}) "
                                f"& {2**PACK_BITS - 1}, 0)")
    return packed, sums


_SQL_TYPES = {"int64": "BIGINT", "float64": "DOUBLE"}


def _typed(feature: Feature, sums: dict[str, str] | None = None) -> str:
    sql = (sums or {}).get(feature.name, feature.sql)
    sql_type = _SQL_TYPES.get(feature.dtype)
    sql = f"CAST({sql} AS {sql_type})" if sql_type else sql
    return f"{sql} AS {feature.name}"


# The incremental recompute's lookback (used by usage_features.features.build._recompute).
#
# The feature rows of a customer from day F on read, through the bounded windows, only the
# daily rows of the ``reach`` days before F; through an unbounded window (HISTORY...), only an
# aggregate of the rows before any cutoff that composes with the rest: the max of the maxes,
# the sum of the sums, the latest of the latests. So the daily rows from
# ``F - lookback_days(spec)`` on plus one "carry" row the day before, holding each such
# aggregate of the older rows (:func:`carry_sql`), give every row from F on exactly.

#: An unbounded window's aggregate of one daily column that composes: ``max(c)``, ``min(c)``,
#: ``sum(c)``, and "the latest" ``max_by(c, CASE WHEN k > 0 THEN day END)``.
_COMPOSABLE = re.compile(
    r"\b(?:(?P<agg>max|min|sum)\((?P<column>\w+)\)"
    r"|max_by\((?P<latest>\w+), CASE WHEN (?P<key>\w+) > 0 THEN day END\))"
    r"\s+OVER\s+(?P<window>\w+)\b")


def lookback_days(spec: FeatureSpec) -> int:
    """How many days before a customer's first recomputed day ``F`` the recompute reads daily
    rows from (older ones reach it only through the carry row, the day before those).

    It covers the longest window's reach (``days + offset``; breadth adds ``BREADTH_DAYS``:
    a day's breadth counts the types used in the 30 days up to it) from the day ``F - 1``,
    whose values the row at ``F`` is compared with, and the longest change offset (an older
    row, or the carry row, would otherwise add or miss a change day from ``F - 1`` on)."""
    reach = max((w.days or 0) + w.offset for w in WINDOWS)
    if spec.breadth_counts:
        reach += BREADTH_DAYS
    return max(reach, max(change_offsets())) + 2


def carry_sql(spec: FeatureSpec) -> dict[str, str] | None:
    """The carry row's aggregate of each daily column the unbounded windows read (the columns
    missing are null in it: no bounded window reaches it); None when some feature's use of an
    unbounded window does not compose (then the recompute reads the whole history).

    Composes: each use matched by ``_COMPOSABLE`` (the same aggregate over the carry and the
    later rows equals it over all the rows; for "the latest", the carry row, dated after every
    row it holds and before every later one, holds the latest of the older rows and a positive
    ``key`` if any had one); one aggregate per column; and breadth's ``sum(breadth_delta)``,
    whose running sum counts only the types used in the ``BREADTH_DAYS`` before (a day's
    +1/-1 are computed from the rows read, exact from ``BREADTH_DAYS`` after the first)."""
    unbounded = {w.name for w in WINDOWS if w.days is None}
    carry: dict[str, str] = {}

    def add(column: str, aggregate: str) -> bool:
        if column not in spec.daily or carry.get(column, aggregate) != aggregate:
            return False
        carry[column] = aggregate
        return True

    for feature in spec.windowed:
        if feature.derived:
            continue
        uses = re.findall(r"\bOVER\s+(\w+)\b", feature.sql)
        if not unbounded & set(uses):
            continue
        if feature.type_count:  # packed sums are bounded by a daily limit, not a history's
            return None
        matched = [m for m in _COMPOSABLE.finditer(feature.sql) if m["window"] in unbounded]
        if len(matched) != sum(use in unbounded for use in uses):
            return None
        for m in matched:
            if m["latest"]:
                ok = (add(m["latest"], f"max_by({m['latest']}, CASE WHEN {m['key']} > 0 "
                                       "THEN day END)")
                      and add(m["key"], f"max({m['key']})"))
            elif m["column"] == "breadth_delta" and spec.breadth_counts:
                ok = m["agg"] == "sum"
            else:
                ok = m["column"] not in BREADTH_COLUMNS and add(
                    m["column"], f"{m['agg']}({m['column']})")
            if not ok:
                return None
    return carry
