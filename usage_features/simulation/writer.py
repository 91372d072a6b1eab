"""Write a simulation as Parquet, byte-identical for identical tables."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from usage_features.adapters.files import atomic_path
from usage_features.simulation.config import Simulation

#: Fixed writer options: the same table always gives the same bytes (for a given pyarrow).
PARQUET_OPTIONS = dict(
    compression="zstd",
    compression_level=3,
    row_group_size=1 << 20,
    version="2.6",
    data_page_version="1.0",
    write_statistics=True,
    store_schema=True,
)
#: Columns worth dictionary-encoding (few distinct values); random ids are not.
_DICTIONARY_COLUMNS = ["customer_id", "event_type", "plan"]


def write_table(table: pa.Table, path: Path) -> None:
    columns = [c for c in _DICTIONARY_COLUMNS if c in table.column_names]
    with atomic_path(path) as partial:
        pq.write_table(table, partial, use_dictionary=columns, **PARQUET_OPTIONS)


def write_event_batches(batches, schema: pa.Schema, path: Path) -> int:
    """Write record batches to the Parquet file ``path`` as they come (one row group per
    ``CHUNK_ROWS`` batch): the same bytes :func:`write_simulation` writes for the same rows,
    without holding them all. Returns the number of rows written."""
    columns = [c for c in _DICTIONARY_COLUMNS if c in schema.names]
    rows = 0
    options = {k: v for k, v in PARQUET_OPTIONS.items() if k != "row_group_size"}
    with atomic_path(path) as partial, pq.ParquetWriter(partial, schema, use_dictionary=columns,
                                                        **options) as writer:
        for batch in batches:
            writer.write_table(pa.Table.from_batches([batch], schema=schema),
                               row_group_size=PARQUET_OPTIONS["row_group_size"])
            rows += batch.num_rows
    return rows


def write_simulation(sim: Simulation, out_dir: str | Path) -> tuple[Path, Path]:
    """Write ``out_dir/events.parquet`` and ``out_dir/customers.parquet``; returns both paths.

    Each file is written beside its target and renamed into place, so a reader never sees a
    half-written file.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    events, customers = out / "events.parquet", out / "customers.parquet"
    write_table(sim.events, events)
    write_table(sim.customers, customers)
    return events, customers
