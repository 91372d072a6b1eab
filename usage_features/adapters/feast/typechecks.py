"""Feast imported without typeguard's instrumentation of its own classes (opt out: an env var).

Feast decorates its definition classes (``Entity``, ``FeatureView``, the data sources,
``FeatureService``, ``OnDemandFeatureView``...) with typeguard's ``@typechecked``, which, as
each module is imported, re-parses and recompiles every method's source so that each call checks
its arguments' types. That is most of ``import feast``: 4.9-5.5 s with it, 1.5 s without
(measured on this project's 2-core machine), paid by every process of the daily job before it
does anything, and a check on every call after.

:func:`skip_feast_typechecks`, called where the console script starts, makes ``@typechecked``
return the classes and functions of Feast's own modules unchanged (every other package's use of
typeguard is untouched) for the imports still to come. What the daily job hands those classes
comes from the registry Feast wrote and from this project's tested code; a definition with a
wrong type still fails ``feast apply`` (the ``feast`` command is another process, checked as
Feast ships it). ``USAGE_FEATURES_FEAST_TYPECHECKS=1`` keeps the checks.
"""

from __future__ import annotations

import functools
import os
import sys

#: Set to ``1``: Feast keeps typeguard's checks.
KEEP_CHECKS = "USAGE_FEATURES_FEAST_TYPECHECKS"


def skip_feast_typechecks() -> bool:
    """Have Feast's modules, when they are imported, skip ``@typechecked``; whether it took
    effect (not when Feast is already imported, typeguard is not installed or the checks are
    asked for)."""
    if os.environ.get(KEEP_CHECKS) == "1" or "feast" in sys.modules:
        return False
    try:
        # deferred: typeguard is Feast's dependency, needed here only before Feast's import
        import typeguard
    except ImportError:  # a Feast without typeguard: nothing to skip
        return False
    original = typeguard.typechecked
    if getattr(original, "skips_feast", False):
        return True

    @functools.wraps(original)
    def typechecked(target=None, **options):
        if target is None:  # @typechecked(...): the decorator, with its options
            return functools.partial(typechecked, **options)
        if (getattr(target, "__module__", None) or "").partition(".")[0] == "feast":
            return target
        return original(target, **options)

    typechecked.skips_feast = True
    typeguard.typechecked = typechecked
    return True
