"""Fixtures for integration tests that need a running server."""

from __future__ import annotations

import os
import re

import pytest

from tests.conftest import services_required

DEFAULT_POSTGRES_DSN = "postgresql://postgres@127.0.0.1:5432/postgres"


def _without_password(dsn: str) -> str:
    dsn = re.sub(r"(://[^:/@]*:)[^@]*@", r"\1***@", dsn)  # URL form
    return re.sub(r"(password\s*=\s*)('(?:[^'\\]|\\.)*'|\S+)", r"\1***", dsn)  # key=value form


@pytest.fixture(scope="session")
def postgres_dsn() -> str:
    """The DSN of a reachable PostgreSQL (env USAGE_FEATURES_POSTGRES_DSN), or skip saying why."""
    psycopg = pytest.importorskip("psycopg")
    dsn = os.environ.get("USAGE_FEATURES_POSTGRES_DSN", DEFAULT_POSTGRES_DSN)
    try:
        psycopg.connect(dsn, connect_timeout=3).close()
    except psycopg.Error as exc:
        error = " ".join(str(exc).split())
        message = (f"PostgreSQL not reachable at {_without_password(dsn)}: {error}; "
                   "start it or set USAGE_FEATURES_POSTGRES_DSN")
        if services_required():
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
    return dsn
