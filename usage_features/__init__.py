"""usage-features: point-in-time-correct SaaS usage features on Feast, and a churn model."""

__version__ = "0.1.0"
