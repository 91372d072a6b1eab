"""A SaaS usage simulator with known churn dynamics, for demos, tests and benchmarks.

    from usage_features.simulation import SimulationConfig, simulate, write_simulation
    sim = simulate(SimulationConfig(customers=500, days=180, seed=7))
    write_simulation(sim, "raw")  # raw/events.parquet, raw/customers.parquet

``sim.events`` has exactly ``EVENT_SCHEMA`` (sorted by timestamp), ``sim.customers`` exactly
``CUSTOMER_SCHEMA`` (``customer_id`` ``cust-00001``... in signup order). With
``dirty_fraction`` > 0 the events are raw text with that share of rows broken; the schema and
the kinds of corruption are in :mod:`usage_features.simulation.dirty`. The same config gives
byte-identical files (for a given pyarrow version); nothing reads the clock or the OS's entropy.

Behaviour model
---------------
*Customers.* 30 % sign up in the first two weeks (a launch cohort), the rest uniformly over the
period, at a random time of day. Each has a plan (free 40 %, starter 30 %, pro 20 %,
enterprise 10 %), an activity level (lognormal, higher on bigger plans), a chance of using the
product on a given weekday, a time zone with business-hours activity, and its own mix of event
types (Dirichlet around a common mix). Weekends are about three times quieter, and each
customer's activity drifts slowly (a mean-reverting random walk). Only some customers make API
calls (more on bigger plans); some start ``monitoring_run`` a few days after signup (55-95 %
by plan, never for the rest); some connect an integration (12-70 % by plan, about a month in on
average), which shows as an ``integration_connect`` event that day and occasional ones after.

*Adoption score.* Each event carries its customer's nightly score snapshot (0-1, 4 decimals):
0.65 x breadth + 0.35 x depth, plus a small per-customer bias and daily noise. Breadth weighs
each event type used recently (30-day half-life average; monitoring, alerts and integrations
count most); depth grows with recent volume (14-day half-life). Scores start near 0 at signup
and grow as a customer uses more features more often; they fall when usage fades.

*Churn.* Every day an active customer may decide to leave, with a hazard of about 0.11 %/day for a
starter plan (x1.6 free, x0.7 pro, x0.45 enterprise), times an unobserved per-customer risk
(lognormal), times x3 while the adoption score is below ``LOW_ADOPTION_THRESHOLD`` from day 14 to
``EARLY_LIFE_DAYS`` of tenure (the domain's early-life signal), x2.2 while the customer runs no
monitoring (from day 14), and x0.35 once an integration is connected. 85 % of decisions start a
usage decay of 3-9 weeks (activity falls smoothly to 5 %, advanced features first, so the score
falls too) that ends at ``churned_at``; 15 % churn at once, with no warning. Independently, any
customer may have temporary dips (3-9 weeks, usage down by 50-85 % then back) that are not followed
by churn, and a decay still under way at the end of the period has no ``churned_at`` yet. No event
is at or after ``churned_at``, none before ``signup_at``.

*Calibration (defaults).* 10,000 customers over 365 days give about 10 M events (about 5 per
customer per day alive; 11 per active day on average, median 6), and about a quarter of the
customers churn within the period. Predicting churn within 30 days, the project's own training
(``churn_model_v1`` features, time split) reaches a holdout ROC AUC of about 0.81 (event_count_30d
alone: about 0.71): learnable, not trivial. :class:`Behaviour` holds every knob.

*A second mechanism.* ``SimulationConfig(mechanism="gradual")`` changes how leaving looks (per-
customer halving times of usage, churn 14-120 days after the decision, each customer's own
weekly rhythm); see :func:`usage_features.simulation.config.mechanism_behaviour`.
"""

from usage_features.simulation.config import Behaviour, Simulation, SimulationConfig
from usage_features.simulation.dirty import CORRUPTIONS, DIRTY_EVENT_SCHEMA
from usage_features.simulation.simulator import simulate, simulate_to_files
from usage_features.simulation.writer import write_simulation

__all__ = ["CORRUPTIONS", "DIRTY_EVENT_SCHEMA", "Behaviour", "Simulation", "SimulationConfig",
           "simulate", "simulate_to_files", "write_simulation"]
