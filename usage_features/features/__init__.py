"""Churn features: the spec (what), its SQL (how), the build (when) and retrieval through Feast.

The package imports nothing: the pure core (``spec``, ``sql``, ``request_time``) is imported
without any engine, Feast or adapter. The Feast objects of a repo's definitions come from the
Feast adapter (:mod:`usage_features.adapters.feast.definitions`).
"""
