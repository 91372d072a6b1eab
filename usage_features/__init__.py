"""usage-features: point-in-time-correct SaaS usage features on Feast, and a churn model."""

import os

# scikit-learn's OpenMP threads spin while they wait; beside DuckDB's threads on a small machine
# that spinning starves everyone (the train end-to-end test: 140 s spinning, 30 s passive).
# Set before libgomp loads; a value the user set wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

__version__ = "0.1.0"
