"""The HTTP entrypoint: the scoring service (``usage-features serve``), a translation of
requests into the service layer's use cases and of their results into JSON."""
