"""Can today's scores still be trusted? Drift, freshness and realized performance."""
