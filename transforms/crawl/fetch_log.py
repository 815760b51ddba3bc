"""The fetch log: one row per URL of a crawl, fetched or rejected, as Parquet.

``<run>/fetch_log/round=<r>/part-SSSSS-of-NNNNN.parquet`` (``ShardedParquetSink``: sorted by
id, deterministic shards). A fetched row points into the WARC archive (``warc_file`` relative
to the run folder, ``warc_offset`` and ``warc_length`` of its gzip member), so a page can be
read back without scanning a shard; a rejected row names its ``reason`` (see ``reasons``) and
whether a later run may succeed (``retryable``), which ``--retry-failed`` reads.
"""

from __future__ import annotations

from collections.abc import Iterator

import pyarrow as pa
import pyarrow.parquet as pq

from transforms.readers.input_stream import open_raw
from transforms.stage import Record

FETCH_LOG_DIR = "fetch_log"

FETCH_LOG_SCHEMA = pa.schema(
    [
        pa.field("id", pa.string(), nullable=False),  # stable_id(url)
        pa.field("url", pa.string(), nullable=False),  # normalised (the raw input when invalid)
        pa.field("final_url", pa.string()),  # after redirects
        pa.field("host", pa.string()),
        pa.field("round", pa.int32(), nullable=False),
        pa.field("depth", pa.int32(), nullable=False),
        pa.field("parent_url", pa.string()),  # the page a seed crawl found the link on
        pa.field("outcome", pa.string(), nullable=False),  # fetched | rejected
        pa.field("reason", pa.string()),  # null when fetched
        pa.field("detail", pa.string()),
        pa.field("retryable", pa.bool_(), nullable=False),
        pa.field("status", pa.int32()),  # last HTTP status seen
        pa.field("attempts", pa.int32(), nullable=False),  # requests made for this URL
        pa.field("redirects", pa.list_(pa.string())),
        pa.field("bytes", pa.int64(), nullable=False),  # payload bytes archived
        pa.field("content_type", pa.string()),
        pa.field("fetched_at", pa.timestamp("ms", tz="UTC")),
        pa.field("elapsed_s", pa.float64()),
        pa.field("ip", pa.string()),
        pa.field("warc_file", pa.string()),
        pa.field("warc_offset", pa.int64()),
        pa.field("warc_length", pa.int64()),
    ]
)


def log_row(result: Record, round_index: int) -> Record:
    """The fetch-log row of an outcome (fetched rows come with their WARC fields already)."""
    row = {name: result.get(name) for name in FETCH_LOG_SCHEMA.names}
    row["round"] = round_index
    row["retryable"] = bool(result.get("retryable", False))
    row["bytes"] = result.get("bytes") or 0
    row["redirects"] = list(result.get("redirects") or [])
    return row


def read_fetch_log(path: str, columns: list[str]) -> Iterator[Record]:
    """Rows of one fetch-log file, only ``columns``, a batch at a time."""
    with open_raw(path) as handle:
        parquet = pq.ParquetFile(pa.PythonFile(handle, mode="r"))
        for batch in parquet.iter_batches(batch_size=8192, columns=columns):
            yield from batch.to_pylist()


def retryable_urls(path: str) -> Iterator[Record]:
    """The URL records of one fetch-log file whose outcome a later run may change."""
    for row in read_fetch_log(path, ["url", "depth", "parent_url", "retryable"]):
        if row["retryable"]:
            yield {"raw_url": row["url"], "depth": row["depth"], "parent_url": row["parent_url"]}
