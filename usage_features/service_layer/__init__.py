"""The use cases, one module each: what the product does, in the order a day runs it.

``ingest``, ``load_customers``, ``build``, ``train``, ``materialize``, ``score``, ``predict``,
``refresh``, ``monitor`` (and ``demo``, all of them end to end). Each is a function that takes
its inputs and the :class:`~usage_features.service_layer.bootstrap.Context` (the ports wired
from the repo's configuration), holds the policy and returns one typed result. The command line
(:mod:`usage_features.cli`) and the HTTP service (:mod:`usage_features.http.app`) only
translate requests into these calls and results into output, so the same request gets the same
answer from each.
"""
