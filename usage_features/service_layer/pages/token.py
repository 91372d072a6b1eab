"""The token the web pages' sign-in asks for.

Pages are never served without one. It is the API token when one is configured
(``USAGE_FEATURES_API_TOKEN``); otherwise the repo's own, generated the first time (32 random
bytes, URL-safe) and kept in ``DIR/data/web_token`` (readable by its owner only), so that
``usage-features serve`` prints the same token on every start and the demo can print it before
the server runs. Whoever can read the repo can read it: the project trusts the repo directory
(docs/operations.md). Delete the file to get a new one at the next start.
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass

from usage_features.adapters.files import atomic_path
from usage_features.config import RepoPaths

TOKEN_FILE = "web_token"
CONFIGURED, STORED, GENERATED = "configured", "stored", "generated"


@dataclass(frozen=True)
class PageToken:
    token: str
    #: :data:`CONFIGURED` (the API token), :data:`STORED` (the repo's) or :data:`GENERATED`
    #: (new, now stored).
    source: str
    path: str | None = None


def page_token(paths: RepoPaths, configured: str | None = None) -> PageToken:
    """``configured`` (the API token) when given; else the repo's token, generated and stored
    the first time."""
    if configured is not None:
        return PageToken(configured, CONFIGURED)
    path = paths.data / TOKEN_FILE
    try:
        stored = path.read_text().strip()
    except FileNotFoundError:
        stored = ""
    if stored:
        return PageToken(stored, STORED, str(path))
    token = secrets.token_urlsafe(32)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(token + "\n")
    return PageToken(token, GENERATED, str(path))


__all__ = ["CONFIGURED", "GENERATED", "STORED", "TOKEN_FILE", "PageToken", "page_token"]
