"""The optional extras of the install, and the error that names the one a command lacks.

The core install (``pip install usage-features``) ingests, builds, trains and scores. What only
some commands need is an extra (``pyproject.toml``'s ``[project.optional-dependencies]``):

- ``serve``: the HTTP service and its web pages (``usage-features serve``): FastAPI, uvicorn,
  pydantic, Jinja2, lifelines (and Feast's ``grpcio`` extra, for ``feast ui``);
- ``postgres``: PostgreSQL storage and the score sink (``refresh --sink``): psycopg;
- ``spark``: the Spark feature build: PySpark (and a Java 17+ runtime);
- ``report``: the plots of the monitor and training reports: matplotlib;
- ``redis``: Feast's Redis online store (``feature_store.redis.yaml``).

No module outside the ones that need an extra imports it at import time; those modules raise
:class:`MissingExtraError`, which names the extra, instead of a bare ``ModuleNotFoundError``.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator
from contextlib import contextmanager

#: Each extra's top-level modules that this package imports itself.
EXTRAS: dict[str, tuple[str, ...]] = {
    "serve": ("fastapi", "uvicorn", "pydantic", "jinja2", "lifelines"),
    "postgres": ("psycopg",),
    "spark": ("pyspark",),
    "report": ("matplotlib",),
}


class MissingExtraError(ImportError):
    """An optional dependency is not installed; the message names the extra to install."""

    def __init__(self, extra: str, module: str, needed_for: str) -> None:
        super().__init__(f"{needed_for} needs {module}, which is not installed: install "
                         f"usage-features[{extra}] (pip install 'usage-features[{extra}]')",
                         name=module)
        self.extra = extra


def require(extra: str, needed_for: str) -> None:
    """Raise :class:`MissingExtraError` unless every module of ``extra`` can be imported.

    Looks the modules up without importing them (cheap: a command checks before it works)."""
    for module in EXTRAS[extra]:
        try:
            found = importlib.util.find_spec(module) is not None
        except ImportError:
            found = False
        if not found:
            raise MissingExtraError(extra, module, needed_for)


@contextmanager
def extra_imports(extra: str, needed_for: str) -> Iterator[None]:
    """Around imports of ``extra``'s modules: their absence becomes a :class:`MissingExtraError`."""
    try:
        yield
    except ModuleNotFoundError as exc:
        module = (exc.name or "").partition(".")[0]
        if module not in EXTRAS[extra]:
            raise
        raise MissingExtraError(extra, module, needed_for) from exc
