"""Online serving: materialization, the churn scorer and its HTTP service."""
