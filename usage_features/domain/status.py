"""Whether a customer at time t can be scored: active, churned, incomplete or unknown.

One rule for the online scorer and for ``predict``, from the served features and the repo's
customers table:

- ``churned``: the customers table has a ``churned_at`` at or before t. A churned customer is
  not scored as a live one: no probability.
- ``unknown``: no event before t's UTC day and no signup at or before t (the served days since
  the latest event and tenure are both missing): nothing is known of the customer at t, so no
  probability is given.
- ``incomplete``: signed up before the event log's history starts (its first UTC day, or the
  day the settings declare it complete from) and scored before that day plus the longest
  feature window: the windows would count only the events since the history starts, an
  undercount that reads like decay. No probability; training drops such rows for the same
  reason.
- ``active``: anything else; scored.

``predict`` adds ``invalid`` for an entity row it cannot read (see its ``error`` column).

Like :func:`usage_features.domain.value_objects.is_early_life`, the rules are element-wise over
plain numbers or arrays of them (NaN: none): the operators are all they ask of them, so the
request-time code (:func:`usage_features.features.request_time.statuses`) vectorises over these
very definitions.
"""

from __future__ import annotations

ACTIVE = "active"
CHURNED = "churned"
UNKNOWN = "unknown"
INCOMPLETE = "incomplete"
INVALID = "invalid"
DAY_SECONDS = 86_400.0


def is_unknown(days_since_last_event, tenure_days):
    """Nothing known at t: no event before t's day and no signup at or before t (both NaN).

    NaN is the one value unequal to itself: the test works on numbers and arrays alike."""
    return ((days_since_last_event != days_since_last_event)
            & (tenure_days != tenure_days))


def is_churned(churned_at, as_of):
    """Churned at or before ``as_of`` (epoch seconds; a NaN ``churned_at``, never churned,
    compares false). Takes precedence over :func:`is_unknown`."""
    return churned_at <= as_of


def is_incomplete(tenure_days, as_of, history_from, window_days):
    """Signed up before ``history_from`` (epoch seconds of the day the event history starts;
    NaN: no history, compares false) and ``as_of`` before ``window_days`` (the longest window)
    after it: some of its windows reach back before the history.

    Signed up before: a tenure longer than the time since the history starts (NaN tenure, an
    unknown signup, compares false), the same float operations as tenure's own."""
    return ((tenure_days > (as_of - history_from) / DAY_SECONDS)
            & (as_of < history_from + window_days * DAY_SECONDS))
