"""Input files for ``replay`` and ``profile build``: Parquet, CSV or JSON lines as one Arrow
table, with a progress bar of rows read when attached to a terminal."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa

from monitor.errors import StreamdriftError


def read_table(path: str | Path, progress: bool | None = None) -> pa.Table:
    """The whole file as a table; on a terminal, a progress bar of rows read (Parquet and
    CSV are read in batches for it; JSON lines in one go)."""
    from monitor.progress import bar, count_lines

    path = Path(path)
    suffix = path.suffix.lower()
    if not path.exists():
        raise StreamdriftError(f"--input: {path} does not exist")
    if suffix in (".parquet", ".pq"):
        import pyarrow.parquet as pq

        from monitor.progress import enabled_here

        if not (enabled_here() if progress is None else progress):
            return pq.read_table(path)  # all threads, no bar
        f = pq.ParquetFile(path)
        with bar(f.metadata.num_rows, f"reading {path.name}", enabled=progress) as b:
            batches = []
            for batch in f.iter_batches(batch_size=262_144):
                batches.append(batch)
                b.update(batch.num_rows)
        return pa.Table.from_batches(batches, schema=f.schema_arrow)
    if suffix == ".csv":
        import pyarrow.csv as pcsv

        from monitor.progress import enabled_here

        if not (enabled_here() if progress is None else progress):
            return pcsv.read_csv(path)
        with bar(max(count_lines(path) - 1, 0), f"reading {path.name}", enabled=True) as b:
            reader = pcsv.open_csv(path)
            batches = []
            for batch in reader:
                batches.append(batch)
                b.update(batch.num_rows)
        return pa.Table.from_batches(batches, schema=reader.schema)
    if suffix in (".jsonl", ".json", ".ndjson"):
        import pyarrow.json as pjson

        return pjson.read_json(path)
    raise StreamdriftError(f"--input: cannot read {path.name}: expected .parquet, .csv or .jsonl")
