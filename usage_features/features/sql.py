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
from dataclasses import dataclass, field

from usage_features.features.spec import (
    BREADTH_COLUMNS,
    BREADTH_DAYS,
    WINDOWS,
    Feature,
    FeatureSpec,
    Window,
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

    The window aggregates are running aggregates over the change days (:func:`_running`): a
    daily row's value is added on the day it enters a window and, for a sum, taken off on the
    day it leaves, so each is one pass in day order instead of a frame per row and window.

    ``since``: a relation ``(customer_id, first_day)``: only the rows from each customer's
    ``first_day`` on, each compared (to drop a repeat) with the values in effect the day before
    (a candidate day added there), not with the previous change day's. With the daily rows of
    :func:`lookback_days` before ``first_day`` and a :func:`carry_sql` row, these are the rows
    the whole history gives (see :mod:`usage_features.features.build`)."""
    spec = spec or feature_spec()
    base = [f for f in spec.windowed if not f.derived]
    derived = [f for f in spec.windowed if f.derived]
    stored = [f.name for f in spec.stored]
    breadth, source = (_breadth_ctes(daily, spec), "with_breadth") if spec.breadth_counts else (
        "", daily)
    running = _running(base, spec, dialect)
    base_columns = ",\n           ".join(_typed(f, running.sql[f.name]) for f in base)
    derived_columns = ",\n           ".join(_typed(f, f.sql) for f in derived)
    values = ", ".join(stored)
    row = dialect.row.format(values=values)
    deltas = ", ".join(f"{shift} AS {name}" for name, (shift, _) in running.deltas.items())
    offsets = " UNION ALL ".join(f"SELECT {k} AS k" for k in change_offsets())
    from_daily = "from_daily" if spec.breadth_counts else "true"
    joined = f"{source} d CROSS JOIN ({offsets}) AS o"
    computed, after, first_rows = "running", "", ""
    if since:  # change days from first_day - 1 on: what the earlier ones added, added there
        joined = (f"{source} d JOIN {since} s ON d.customer_id = s.customer_id "
                  f"CROSS JOIN ({offsets}) AS o WHERE d.day + o.k >= s.first_day")
        bases = ", ".join(f"{added} AS {name}" for name, (_, added) in running.deltas.items())
        first_rows = f"""
    UNION ALL
    SELECT d.customer_id, s.first_day - 1 AS change_day, true AS from_daily, {bases}
    FROM {source} d JOIN {since} s ON d.customer_id = s.customer_id"""
        computed = (f"(SELECT w.*, s.first_day AS since_day FROM running w JOIN {since} s "
                    "ON w.customer_id = s.customer_id) AS w")
        after = " AND day >= since_day"
    aggregates = ", ".join(f"{sql} AS {name}" for name, sql in running.by_day.items())
    windows = ", ".join(f"{sql} OVER r AS {name}" for name, sql in running.over.items())
    return f"""
WITH {breadth}shifted AS (
    SELECT d.customer_id, d.day + o.k AS change_day, {from_daily} AS from_daily, {deltas}
    FROM {joined}{first_rows}),
by_day AS (
    SELECT customer_id, change_day AS day, bool_or(from_daily) AS is_candidate, {aggregates}
    FROM shifted GROUP BY customer_id, change_day),
running AS (
    SELECT customer_id, day, is_candidate, {windows}
    FROM by_day
    WINDOW r AS (PARTITION BY customer_id ORDER BY day
                 ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)),
features AS (
    SELECT customer_id, day,
           {base_columns}{", since_day" if since else ""}
    FROM {computed} WHERE is_candidate),
features_derived AS (
    SELECT *, {derived_columns}
    FROM features),
changes AS (
    SELECT *, lag({row}) OVER (PARTITION BY customer_id ORDER BY day) AS previous
    FROM features_derived)
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
    FROM (SELECT customer_id, day, {", ".join(spec.daily)}, 0 AS breadth_delta,
                 true AS from_daily FROM {daily}
          UNION ALL
          SELECT customer_id, day, {nulls}, breadth_delta, false AS from_daily
          FROM deltas) AS unioned),
"""


@dataclass
class Running:
    """The window aggregates of the features as running aggregates over the change days.

    ``deltas``: each column's SQL for what a source row (``d``, of day ``d.day``) adds on the
    change day ``o.k`` days after its own, and for what it has added by the day before a
    ``since`` relation's (``s``) first day; ``by_day``: each column's aggregate over a change
    day's rows; ``over``: its running aggregate (over the window ``r``); ``sql``: each base
    feature's SQL over those."""

    deltas: dict[str, tuple[str, str]] = field(default_factory=dict)
    by_day: dict[str, str] = field(default_factory=dict)
    over: dict[str, str] = field(default_factory=dict)
    sql: dict[str, str] = field(default_factory=dict)


#: Packed sums (engines with 128-bit integers): a window sum costs the same whatever it sums,
#: so the integer sums of windows up to 31 days are summed four at a time, 31 bits each, and
#: those of longer windows three at a time, 42 bits each, then taken apart: exact integers, a
#: fraction of the running sums. A daily value beyond the pack's limit (a window's sum would
#: not fit its bits) stops the build, never overflows.
PACK_BITS, PACK_WIDTH = 31, 4
LONG_PACK_BITS, LONG_PACK_WIDTH = 42, 3
_SHORT_DAYS = 31
PACK_DAILY_LIMIT = (2**PACK_BITS - 1) // _SHORT_DAYS

_CALL = re.compile(r"\b(sum|max|min|max_by)\(")
_OVER = re.compile(r"\s+OVER\s+(\w+)\b")
_INTEGRAL_WORDS = frozenset({"CASE", "WHEN", "THEN", "ELSE", "END", "AND", "OR", "NOT"})


def _window_calls(sql: str) -> list[tuple[int, int, str, str, str]]:
    """Each ``agg(args) OVER window`` of ``sql``: (start, end, agg, args, window name)."""
    calls = []
    for match in _CALL.finditer(sql):
        depth, i = 1, match.end()
        while depth:
            depth += {"(": 1, ")": -1}.get(sql[i], 0)
            i += 1
        over = _OVER.match(sql, i)
        if over:
            calls.append((match.start(), over.end(), match[1], sql[match.end():i - 1], over[1]))
    return calls


def _integral(expression: str, spec: FeatureSpec) -> bool:
    """Whether ``expression`` is an integer by its syntax alone: integer literals and the
    daily counts (``count(...)`` columns) under arithmetic, comparisons and CASE."""
    counts = {name for name, sql in spec.daily.items() if sql.startswith("count(")}
    words = re.findall(r"[A-Za-z_][A-Za-z_0-9]*", expression)
    return (not re.search(r"[^\w\s+*<>=()-]|\d\.\d", expression)
            and all(w in counts or w.upper() in _INTEGRAL_WORDS for w in words))


def _running(base: list[Feature], spec: FeatureSpec, dialect: Dialect) -> Running:
    """Each window aggregate of the ``base`` features' SQL as a running aggregate.

    A sum over a window of ``days`` after ``offset`` adds a daily row's value on
    ``enters`` and takes it off on ``leaves`` (:class:`~usage_features.features.spec.Window`):
    the running sum on day D is the sum over ``[D - offset - days, D - offset)``, exactly. A
    sum's SQL null over an empty window is kept with a running count of its non-null values,
    except inside ``coalesce(..., 0)``. ``max``, ``min`` and ``max_by`` are running ones over
    an unbounded window (a bounded one has no running form: refused)."""
    windows = {w.name: w for w in WINDOWS}
    out = Running()
    slots: dict[tuple[str, str, str], str] = {}  # (agg, args, window) -> its column's SQL
    packable: list[tuple[str, str, str, Window]] = []  # (slot, agg, args, window)

    def slot(agg: str, args: str, window: Window) -> str:
        key = (agg, args, window.name)
        if key in slots:
            return slots[key]
        name = f"r{len(slots)}"
        if agg in ("sum", "count"):
            if (dialect.packs_counts and window.leaves is not None
                    and (agg == "count" or _integral(args, spec))):
                packable.append((name, agg, args, window))
                slots[key] = name  # replaced by its pack's decoding below
                return name
            out.deltas[name] = _change(window, *_entering(agg, args))
            out.by_day[name] = f"sum({name})"
            out.over[name] = f"sum({name})"
            slots[key] = f"coalesce({name}, 0)"
        elif window.leaves is not None:
            raise ValueError(f"{agg}(...) OVER {window.name}: a bounded window's {agg} has no "
                             "running form")
        elif agg in ("max", "min"):
            out.deltas[name] = _change(window, args, None)
            out.by_day[name] = out.over[name] = f"{agg}({name})"
            slots[key] = name
        else:  # max_by(value, key)
            value, by = _split_arguments(args)
            out.deltas[name] = _change(window, value, None)
            out.deltas[f"{name}_by"] = _change(window, by, None)
            out.by_day[name] = out.over[name] = f"max_by({name}, {name}_by)"
            out.by_day[f"{name}_by"] = f"max({name}_by)"
            slots[key] = name
        return slots[key]

    uses: dict[str, list[tuple[int, int, str]]] = {}
    for feature in base:
        replaced = []
        for start, end, agg, args, window_name in _window_calls(feature.sql):
            if window_name not in windows:
                raise ValueError(f"feature {feature.name!r}: no window {window_name!r}")
            window = windows[window_name]
            if agg != "sum":
                replaced.append((start, end, slot(agg, args, window)))
                continue
            total = slot("sum", args, window)
            zero = (feature.sql[:start].endswith("coalesce(")
                    and feature.sql[end:].startswith(", 0)"))
            if zero:
                replaced.append((start - len("coalesce("), end + len(", 0)"), total))
            else:
                count = slot("count", args, window)
                replaced.append((start, end, f"CASE WHEN {count} > 0 THEN {total} END"))
        uses[feature.name] = replaced
    decoded = _packs(packable, out)
    for feature in base:
        sql = feature.sql
        for start, end, text in reversed(uses[feature.name]):
            for name, expression in decoded.items():
                text = re.sub(rf"\b{name}\b", expression, text)
            sql = sql[:start] + text + sql[end:]
        if _OVER.search(sql):
            raise ValueError(f"feature {feature.name!r}: a window aggregate with no running "
                             f"form in {feature.sql!r}")
        out.sql[feature.name] = sql
    return out


def _packs(packable: list[tuple[str, str, str, Window]], out: Running) -> dict[str, str]:
    """The packable sums and counts summed in packs (into ``out``); each one's decoding."""
    decoded = {}
    short = [p for p in packable if p[3].days <= _SHORT_DAYS]
    long = [p for p in packable if p[3].days > _SHORT_DAYS]
    groups = [(short, PACK_BITS, PACK_WIDTH, PACK_DAILY_LIMIT),
              (long, LONG_PACK_BITS, LONG_PACK_WIDTH,
               (2**LONG_PACK_BITS - 1) // max((p[3].days for p in long), default=1))]
    for members, bits, width, limit in groups:
        for start in range(0, len(members), width):
            pack = f"p{len(out.deltas)}"
            terms = []
            for j, (name, agg, args, window) in enumerate(members[start:start + width]):
                # (a leaving value is negative: shifted by a multiplication, not ``<<``)
                terms.append([f"CAST(coalesce({sql}, 0) AS HUGEINT) "
                              f"* CAST('{2**(bits * j)}' AS HUGEINT)"
                              for sql in _change(window, *_entering(agg, args, limit))])
                decoded[name] = f"coalesce(({pack} >> {bits * j}) & {2**bits - 1}, 0)"
            out.deltas[pack] = (" + ".join(t[0] for t in terms), " + ".join(t[1] for t in terms))
            out.by_day[pack] = out.over[pack] = f"sum({pack})"
    return decoded


def _entering(agg: str, args: str, limit: int | None = None) -> tuple[str, str]:
    """What a daily row adds to a running ``sum`` of ``args``, or ``count`` of its non-null
    values, on the day it enters a window and on the day it leaves. ``limit``: a packed sum's,
    each daily value checked against it (within it, a window's sum fits the pack's bits)."""
    if agg == "count":
        return (f"CASE WHEN ({args}) IS NOT NULL THEN 1 END",
                f"CASE WHEN ({args}) IS NOT NULL THEN -1 END")
    if limit is None:
        return f"({args})", f"-({args})"
    return (f"CASE WHEN ({args}) IS NULL OR ({args}) BETWEEN 0 AND {limit} THEN ({args}) "
            f"ELSE error('a daily count of ' || ({args}) || ' is beyond the packed counts'' "
            "range') END", f"-({args})")


def _change(window: Window, value: str, minus: str | None) -> tuple[str, str]:
    """A source row's change to a running aggregate of ``window``: ``value`` on the day it
    enters, ``minus`` on the day it leaves (a sum's); and what it has added by the day before
    the first day of ``s``."""
    before = "s.first_day - 1"
    if window.leaves is None:
        return (f"CASE WHEN o.k = {window.enters} THEN {value} END",
                f"CASE WHEN d.day + {window.enters} <= {before} THEN {value} END")
    return (f"CASE o.k WHEN {window.enters} THEN {value} WHEN {window.leaves} THEN {minus} END",
            f"CASE WHEN d.day + {window.enters} <= {before} AND d.day + {window.leaves} > {before}"
            f" THEN {value} END")


def _split_arguments(args: str) -> tuple[str, str]:
    """``a, b`` -> (a, b), at the top-level comma."""
    depth = 0
    for i, char in enumerate(args):
        depth += {"(": 1, ")": -1}.get(char, 0)
        if char == "," and not depth:
            return args[:i].strip(), args[i + 1:].strip()
    raise ValueError(f"expected two arguments: {args!r}")


_SQL_TYPES = {"int64": "BIGINT", "float64": "DOUBLE"}


def _typed(feature: Feature, sql: str) -> str:
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
