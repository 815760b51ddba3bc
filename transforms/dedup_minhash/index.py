"""The cross-run band index: band keys of published documents, Parquet partitioned by band.

Layout of an index (a local folder or an ``s3://`` prefix)::

    <index>/_index.json                                  band parameters, fixed at creation
    <index>/band=BBB/run_id=<run>/part-SSSSS-of-NNNNN.parquet   columns: key (int64), id (string)
    <index>/_runs/<run>.json                             a run's publication: its files; written last

A run stages the band table of the documents it keeps under ``<run_dir>/_dedup_bands/``
(``StageBandTable``, inside the pipeline). Only after the run's ``_SUCCESS`` does
``publish_band_table`` copy the staged files into the index, each file atomically
(``storage.write_atomic``), and then write the run's marker under ``_runs/``. Readers
(``ReadBandIndex``) read only the files that markers list, so a run that failed, or a
publication that stopped halfway, leaves the index as readers saw it before. Publishing the
same run id again replaces that run's files and marker.

Band keys are comparable only between runs of the same band parameters (datasketch scheme,
seed, permutations, bands, rows, n-gram size, shingle version): ``_index.json`` records them
and both reading and publishing refuse an index with other parameters.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
import time
from collections.abc import Iterable, Iterator
from typing import Any

import apache_beam as beam
import datasketch
import pyarrow as pa
import pyarrow.parquet as pq

from run_folder.storage import delete, exists, join, list_files, read_bytes, write_atomic
from transforms.dedup_minhash.keeper import previous_node
from transforms.parquet_sink import ShardedParquetSink
from transforms.stage import Record

STAGED_DIR = "_dedup_bands"
STAGED_MANIFEST = "_manifest.json"
INDEX_PARAMS = "_index.json"
RUNS_DIR = "_runs"
SUCCESS = "_SUCCESS"

BAND_SCHEMA = pa.schema(
    [pa.field("key", pa.int64(), nullable=False), pa.field("id", pa.string(), nullable=False)],
    metadata={"content": "minhash band table"},
)
_RUN_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:=-]*")


class IndexMismatch(ValueError):
    """The index holds band keys of other parameters: they cannot match this run's keys."""


def check_run_id(run_id: str) -> str:
    if not _RUN_ID.fullmatch(run_id or ""):
        raise ValueError(f"run id {run_id!r}: use letters, digits and . _ : = -")
    return run_id


def band_partition(band: int) -> str:
    return f"band={band:03d}"


def _check_params(index_uri: str, params: dict[str, Any]) -> bool:
    """True if the index exists (with ``params``); False if there is no index yet."""
    path = join(index_uri, INDEX_PARAMS)
    if not exists(path):
        return False
    found = json.loads(read_bytes(path))["band_params"]
    if found != params:
        raise IndexMismatch(f"index {index_uri} holds band keys of {found}; this run uses {params}")
    return True


def published_files(index_uri: str, params: dict[str, Any], exclude_run: str | None) -> list[tuple[str, str]]:
    """(path, run id) of every band file that a publication marker lists, except ``exclude_run``'s
    (a rerun of a published run must not match its own earlier output)."""
    if not _check_params(index_uri, params):
        return []
    files = []
    for marker_path in list_files(join(index_uri, RUNS_DIR)):
        if not marker_path.endswith(".json"):
            continue
        marker = json.loads(read_bytes(marker_path))
        if marker["run_id"] == exclude_run:
            continue
        files += [(join(index_uri, info["path"]), marker["run_id"]) for info in marker["files"]]
    return sorted(files)


def read_band_file(path_and_run: tuple[str, str]) -> Iterator[tuple[int, str]]:
    """(band key, earlier-run node) of every row of one published band file."""
    path, run_id = path_and_run
    table = pq.read_table(io.BytesIO(read_bytes(path)), columns=["key", "id"])
    for key, doc_id in zip(table.column("key").to_pylist(), table.column("id").to_pylist(), strict=True):
        yield key, previous_node(doc_id, run_id)


class ReadBandIndex(beam.PTransform):
    """The index's published band rows as (band key, earlier-run node), read inside the pipeline."""

    def __init__(self, index_uri: str, params: dict[str, Any], exclude_run: str | None):
        super().__init__()
        self._index_uri = index_uri
        self._params = params
        self._exclude_run = exclude_run

    def expand(self, pipeline: beam.pvalue.PBegin) -> beam.PCollection:
        params, exclude = self._params, self._exclude_run
        return (
            pipeline
            | "Index" >> beam.Create([self._index_uri])
            | "ListPublished" >> beam.FlatMap(published_files, params=params, exclude_run=exclude)
            | "Spread" >> beam.Reshuffle()
            | "ReadBands" >> beam.FlatMap(read_band_file)
        )


def _collect(infos: Iterable[dict]) -> list[dict]:
    return sorted(infos, key=lambda info: info["path"])


class StageBandTable(beam.PTransform):
    """Band rows ({"id", "band", "key"}) of kept documents -> ``<run_dir>/_dedup_bands/``,
    plus its ``_manifest.json`` (files of this attempt only, so stale files are never published)."""

    def __init__(self, run_dir: str, params: dict[str, Any]):
        super().__init__()
        self._directory = join(run_dir, STAGED_DIR)
        self._params = params

    def expand(self, rows: beam.PCollection) -> beam.PCollection:
        directory, params = self._directory, self._params
        prefix = directory.rstrip("/") + "/"
        files = rows | "Write" >> ShardedParquetSink(
            directory, BAND_SCHEMA, partition_of=lambda row: band_partition(row["band"])
        )

        def write_manifest(infos: list[dict]) -> None:
            manifest = {
                "band_params": params,
                "datasketch_version": datasketch.__version__,
                "files": [{**info, "path": info["path"].removeprefix(prefix)} for info in infos],
            }
            write_atomic(join(directory, STAGED_MANIFEST), json.dumps(manifest, indent=1).encode())

        return (
            files
            | "Collect" >> beam.combiners.ToList()
            | "Sort" >> beam.Map(_collect)
            | "WriteManifest" >> beam.Map(write_manifest)
        )


def publish_band_table(run_dir: str, index_uri: str, run_id: str) -> dict[str, Any]:
    """Append a committed run's staged band table to the index; return the run's marker.

    Call after the run's ``_SUCCESS``; refuses a run without it. Each file is copied
    atomically; the marker that makes them visible is written last.
    """
    check_run_id(run_id)
    if not exists(join(run_dir, SUCCESS)):
        raise RuntimeError(f"{run_dir} has no {SUCCESS}: only committed runs are published")
    staged_dir = join(run_dir, STAGED_DIR)
    staged = json.loads(read_bytes(join(staged_dir, STAGED_MANIFEST)))
    params = staged["band_params"]
    if not _check_params(index_uri, params):
        created = {
            "band_params": params,
            "datasketch_version": staged["datasketch_version"],
            "created_by": run_id,
        }
        write_atomic(join(index_uri, INDEX_PARAMS), json.dumps(created, indent=1).encode())
    published = []
    for info in staged["files"]:
        data = read_bytes(join(staged_dir, info["path"]))
        if hashlib.sha256(data).hexdigest() != info["sha256"]:
            raise RuntimeError(f"staged band file {info['path']} does not match its checksum")
        partition, name = info["path"].split("/")
        relative = f"{partition}/run_id={run_id}/{name}"
        write_atomic(join(index_uri, relative), data)
        published.append(
            {"path": relative, "rows": info["rows"], "bytes": info["bytes"], "sha256": info["sha256"]}
        )
    marker = {
        "run_id": run_id,
        "published_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "band_params": params,
        "rows": sum(info["rows"] for info in published),
        "files": published,
    }
    write_atomic(join(index_uri, RUNS_DIR, f"{run_id}.json"), json.dumps(marker, indent=1).encode())
    current = {join(index_uri, info["path"]) for info in published}
    stale = [path for path in list_files(index_uri) if f"/run_id={run_id}/" in path and path not in current]
    delete(stale)
    return marker


def band_rows(doc_id: str, keys: Iterable[int]) -> Iterator[Record]:
    for band, key in enumerate(keys):
        yield {"id": doc_id, "band": band, "key": key}
