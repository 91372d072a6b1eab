"""The retrieval job: a deferred DuckDB query; Feast's base class applies on-demand views."""

from __future__ import annotations

import weakref
from collections.abc import Callable

import pandas as pd
import pyarrow as pa
from feast.infra.offline_stores.offline_store import RetrievalJob, RetrievalMetadata

from usage_features.adapters.feast_offline_store import writes
from usage_features.adapters.feast_offline_store.sources import local_path


class DuckDBAsOfRetrievalJob(RetrievalJob):
    """Rows computed on demand by ``query``; ``persist`` writes them to a file or directory.

    ``close``: releases what ``query`` runs on (its DuckDB connection), called by
    :meth:`close` or, failing that, when the job is garbage-collected.
    """

    def __init__(self, query: Callable[[], pa.Table], full_feature_names: bool = False,
                 on_demand_feature_views=None, metadata: RetrievalMetadata | None = None,
                 repo_path=None, close: Callable[[], None] | None = None):
        self._query = query
        self._full_feature_names = full_feature_names
        self._odfvs = on_demand_feature_views or []
        self._metadata = metadata
        self._repo_path = repo_path
        self._finalizer = weakref.finalize(self, close) if close is not None else None

    def close(self) -> None:
        """Release the job's connection; the job cannot compute its rows after."""
        if self._finalizer is not None:
            self._finalizer()

    def to_df(self, validation_reference=None, timeout: int | None = None) -> pd.DataFrame:
        """Feast's ``to_df`` (``to_arrow``: the rows, on-demand views applied, validated if
        asked) without its ``reset_index(drop=True)``, a copy of every column: Arrow's frame is
        numbered 0..n-1 already."""
        return self.to_arrow(validation_reference=validation_reference,
                             timeout=timeout).to_pandas()

    def _to_arrow_internal(self, timeout: int | None = None) -> pa.Table:
        return self._query()

    def _to_df_internal(self, timeout: int | None = None) -> pd.DataFrame:
        return self._query().to_pandas()

    @property
    def full_feature_names(self) -> bool:
        return self._full_feature_names

    @property
    def on_demand_feature_views(self):
        return self._odfvs

    @property
    def metadata(self) -> RetrievalMetadata | None:
        return self._metadata

    def persist(self, storage, allow_overwrite: bool = False, timeout: int | None = None):
        """Write the rows to ``storage`` (Feast's ``SavedDatasetFileStorage``).

        A path ending in ``.parquet`` is one file, any other a directory of files (as in
        Feast's own stores). An existing destination raises Feast's
        ``SavedDatasetLocationAlreadyExists`` unless ``allow_overwrite``.
        """
        uri = storage.file_options.uri
        writes.persist(self.to_arrow(), local_path(self._repo_path, uri), uri, allow_overwrite)
