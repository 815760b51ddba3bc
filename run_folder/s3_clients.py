"""One boto3 S3 client per process for Beam's S3 filesystem, instead of one per file operation.

Beam's ``S3FileSystem`` builds a new ``S3IO``, hence a new boto3 session and client, for every
open, create, match, rename or delete. Each new client parses botocore's service model and
endpoint rules again (about 50 ms of CPU): in a run that reads and writes a few hundred objects
(inputs, spill pieces, shards, run facts) that was over half of the run's CPU time. The boto3
client itself is thread-safe; only Beam's wrapper keeps per-download state, so the wrapper stays
one per operation and shares the client. A client is reused only for the same Beam S3 options
and the same ``AWS_*`` environment (credentials, region, endpoint), in the same process.
"""

from __future__ import annotations

import os
import threading

from apache_beam.io.aws.clients.s3 import boto3_client
from apache_beam.options.pipeline_options import PipelineOptions, S3Options

_S3_OPTION_NAMES = ("s3_access_key_id", "s3_secret_access_key", "s3_session_token", "s3_endpoint_url",
                    "s3_disable_ssl", "s3_region_name", "s3_api_version", "s3_verify")


def _client_key(options) -> tuple:
    if isinstance(options, PipelineOptions):
        s3_options = options.view_as(S3Options)
        settings = tuple(getattr(s3_options, name) for name in _S3_OPTION_NAMES)
    else:
        settings = tuple(options.get(name) for name in _S3_OPTION_NAMES)
    aws_environment = tuple(sorted((name, value) for name, value in os.environ.items() if name.startswith("AWS_")))
    return os.getpid(), settings, aws_environment


class SharedClient(boto3_client.Client):
    """Beam's S3 client whose boto3 client is made once per process and settings."""

    _clients: dict[tuple, object] = {}
    _lock = threading.Lock()

    def __init__(self, options):
        key = _client_key(options)
        with self._lock:
            shared = self._clients.get(key)
        if shared is None:
            super().__init__(options)
            with self._lock:
                self._clients.setdefault(key, self.client)
            return
        self.client = shared
        self._download_request = None
        self._download_stream = None
        self._download_pos = 0


def share_s3_clients() -> None:
    """Make Beam's S3 filesystem use ``SharedClient`` in this process (idempotent)."""
    boto3_client.Client = SharedClient
