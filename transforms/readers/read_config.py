"""What the readers read and how: field names, the per-record size limit, formats by extension."""

from __future__ import annotations

from dataclasses import dataclass

WARC = "warc"
JSONL = "jsonl"
PARQUET = "parquet"
FORMATS = (WARC, JSONL, PARQUET)

# Suffix -> format. Compression is detected from the file's first bytes (gzip, zstd), not from
# the suffix, so ``.warc`` that is really gzipped still reads. A file whose name matches none of
# these is sniffed (``WARC/``, ``{``, ``PAR1``) before it is quarantined as ``unsupported_format``.
DEFAULT_FORMATS: tuple[tuple[str, str], ...] = (
    (".warc", WARC),
    (".warc.gz", WARC),
    (".warc.zst", WARC),
    (".wet", WARC),
    (".wet.gz", WARC),
    (".jsonl", JSONL),
    (".jsonl.gz", JSONL),
    (".jsonl.zst", JSONL),
    (".json", JSONL),
    (".json.gz", JSONL),
    (".json.zst", JSONL),
    (".ndjson", JSONL),
    (".parquet", PARQUET),
)


@dataclass(frozen=True)
class ReadConfig:
    # JSONL keys / Parquet columns. ``text_field`` is required in every record; ``id_field``, when
    # set, is required too (``source_key`` becomes its value); ``url_field`` and
    # ``fetched_at_field`` are read when present and left null when not.
    text_field: str = "text"
    id_field: str | None = None
    url_field: str | None = "url"
    fetched_at_field: str | None = None
    # Common Crawl truncates payloads at 1 MiB (WARC-Truncated: length; commoncrawl/cc-notebooks,
    # "Truncated Records in WARC Files") and plans 5 MiB; 10 MiB keeps every such record while
    # bounding the memory one record may take on a worker.
    max_record_bytes: int = 10 * 1024 * 1024
    parquet_batch_rows: int = 1024
    # One large file is read as splits of about this many stored bytes, spread over the workers
    # (``split_plan``); a smaller file is read whole; 0 reads every file whole. 64 MiB is
    # Hadoop's classic input split (HDFS block) size, the scale Spark still reads files at
    # (``spark.sql.files.maxPartitionBytes``, 128 MiB): a split's fixed cost (opening the file,
    # one task) is noise at that size, and a 1 GB Common Crawl WARC gives 16 tasks to spread.
    split_bytes: int = 64 * 1024 * 1024
    formats: tuple[tuple[str, str], ...] = DEFAULT_FORMATS

    def __post_init__(self) -> None:
        if not self.text_field:
            raise ValueError("text_field must be a non-empty name")
        if self.max_record_bytes < 1:
            raise ValueError(f"max_record_bytes must be >= 1, got {self.max_record_bytes}")
        if self.parquet_batch_rows < 1:
            raise ValueError(f"parquet_batch_rows must be >= 1, got {self.parquet_batch_rows}")
        if self.split_bytes < 0:
            raise ValueError(f"split_bytes must be >= 0 (0: never split), got {self.split_bytes}")
        formats = tuple((str(suffix).lower(), str(fmt)) for suffix, fmt in self.formats)
        for suffix, fmt in formats:
            if not suffix.startswith("."):
                raise ValueError(f"format suffix must start with '.', got {suffix!r}")
            if fmt not in FORMATS:
                raise ValueError(f"unknown format {fmt!r} for {suffix!r}; known: {FORMATS}")
        # YAML gives lists of lists; keep the config hashable and comparable.
        object.__setattr__(self, "formats", formats)

    def format_of(self, path: str) -> str | None:
        """The format named by the longest matching suffix of ``path``, or ``None``."""
        name = path.lower()
        matches = [(len(suffix), fmt) for suffix, fmt in self.formats if name.endswith(suffix)]
        return max(matches)[1] if matches else None
