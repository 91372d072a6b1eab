"""Keep a copied feature repo's Feast registries pointing at the copy, never at the original.

Feast resolves the relative paths of ``feature_store.yaml`` and then stores them absolute in the
registry: the SQLite online store's tables (the registry's "infra") and Spark sources. After
``cp -a repo copy`` the copy's registry names the original's files, and ``feast apply`` in the
copy sees its online tables "move": Feast tears down the old ones (drops the original's tables)
and, for such an update, creates no new ones; a Spark source keeps reading the original's
feature tables.

:func:`repoint_copied_registries` runs before anything Feast reads a registry for (``build``'s
``feast apply``, opening a store, and the repo's definitions module, which ``feast apply``
imports before it opens the registry). In every local file registry of the repo it sets each
SQLite online table's path to the one this repo's config resolves to, and moves each other stored
absolute path under another directory's ``data/`` (everything a repo stores lives under
``DIR/data/``) to the same place under this repo's ``data/``. A registry already pointing here
is left as it is (not even rewritten).
"""

from __future__ import annotations

from pathlib import Path

import yaml

from usage_features.adapters.files import atomic_write

#: Feast's default SQLite online-store path when the config names none.
_SQLITE_DEFAULT = "data/online.db"
#: Proto messages holding a stored path, and the field that holds it.
_PATH_FIELDS = {"SqliteTable": "path", "FileOptions": "uri", "SparkOptions": "path"}


def repoint_copied_registries(repo: Path) -> list[Path]:
    """Re-point every local registry of ``repo`` (one per ``feature_store*.yaml``) at ``repo``;
    returns the registries it rewrote."""
    repo = Path(repo).resolve()
    return [registry for config in sorted(repo.glob("feature_store*.yaml"))
            if (registry := _repoint(repo, config)) is not None]


def _repoint(repo: Path, config_path: Path) -> Path | None:
    # deferred: Feast takes ~3 s to import; the modules that import this one do not need it
    from feast.protos.feast.core.Registry_pb2 import Registry

    config = yaml.safe_load(config_path.read_text()) or {}
    registry = _local_registry(repo, config.get("registry"))
    if registry is None or not registry.is_file():
        return None
    proto = Registry.FromString(registry.read_bytes())
    if not _repoint_message(proto, repo, _sqlite_path(repo, config.get("online_store"))):
        return None
    atomic_write(registry, proto.SerializeToString())
    return registry


def _local_registry(repo: Path, registry) -> Path | None:
    """The registry file of a file registry (``registry: path`` or ``{path: ...}``)."""
    if isinstance(registry, dict):
        if registry.get("registry_type", "file") != "file":
            return None
        registry = registry.get("path")
    if not isinstance(registry, str) or "://" in registry:
        return None
    path = Path(registry)
    return path if path.is_absolute() else repo / path


def _sqlite_path(repo: Path, online_store) -> str | None:
    """Where this repo's config puts the SQLite online store (None: another store type)."""
    if online_store is None or online_store == "sqlite":
        online_store = {"type": "sqlite"}
    if not isinstance(online_store, dict) or online_store.get("type", "sqlite") != "sqlite":
        return None
    path = Path(online_store.get("path", _SQLITE_DEFAULT))
    return str(path if path.is_absolute() else repo / path)


def _repoint_message(message, repo: Path, sqlite_path: str | None) -> bool:
    """Re-point the stored paths in ``message`` and everything it holds; whether any changed."""
    changed = False
    kind = message.DESCRIPTOR.name
    if kind in _PATH_FIELDS:
        name = _PATH_FIELDS[kind]
        old = getattr(message, name)
        new = (sqlite_path if kind == "SqliteTable" and sqlite_path is not None
               else _moved(old, repo))
        if new is not None and new != old:
            setattr(message, name, new)
            changed = True
    for field, value in message.ListFields():
        if field.type != field.TYPE_MESSAGE:
            continue
        if field.message_type.GetOptions().map_entry:
            items = value.values() if _has_message_values(field) else []
        elif field.is_repeated:
            items = value
        else:
            items = [value]
        for item in items:
            changed |= _repoint_message(item, repo, sqlite_path)
    return changed


def _has_message_values(map_field) -> bool:
    return map_field.message_type.fields_by_name["value"].type == map_field.TYPE_MESSAGE


def _moved(stored: str, repo: Path) -> str | None:
    """``stored`` moved from another repo's ``data/`` to this one's; None if it stays."""
    if not stored.startswith("/"):
        return None
    path = Path(stored)
    if path.is_relative_to(repo) or "data" not in path.parts:
        return None
    parts = path.parts
    last = len(parts) - 1 - parts[::-1].index("data")
    return str(repo.joinpath(*parts[last:]))
