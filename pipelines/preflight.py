"""Check every input and the output once, before any Beam work, and say what is wrong in one line each.

Without this a missing credential, a wrong endpoint or a missing bucket surfaces minutes later
as dozens of lines of Beam retry tracebacks. Here each location is probed directly (boto3 with
short timeouts and no retries; the local disk), and each problem is one line naming the URI,
the cause and the fix. Nothing is left behind: the write probe is deleted at once. A throttle,
a 5xx or a slow answer proves the store is there and is left to the run's own retries.

S3 settings are the ones the run will use: Beam's ``--s3_*`` flags when given, else the standard
AWS variables (``AWS_ACCESS_KEY_ID``..., ``AWS_ENDPOINT_URL_S3`` for a non-AWS endpoint).
Schemes other than local paths and ``s3://`` are left to Beam.
"""

from __future__ import annotations

import fnmatch
import glob
import os
import tempfile
import uuid
from dataclasses import dataclass
from urllib.parse import urlsplit

import boto3
from botocore.config import Config as BotoConfig
from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError, ReadTimeoutError

# Seconds: a reachable endpoint answers in milliseconds; an unreachable one must fail fast.
CONNECT_TIMEOUT_S = 3
READ_TIMEOUT_S = 10
_GLOB_CHARS = "*?["
_CREDENTIALS_FIX = ("set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or AWS_PROFILE), "
                    "or pass -- --s3_access_key_id ID --s3_secret_access_key KEY")


@dataclass(frozen=True)
class Problem:
    """One thing that would make the run fail, with what to do about it."""

    uri: str
    cause: str
    fix: str

    def line(self) -> str:
        return f"{self.uri}: {self.cause}; {self.fix}"


@dataclass(frozen=True)
class S3Settings:
    """What the run's S3 client would use (Beam flags first, else boto3's own chain)."""

    endpoint_url: str | None = None
    access_key_id: str | None = None
    secret_access_key: str | None = None
    region_name: str | None = None

    @classmethod
    def from_beam_args(cls, beam_args: list[str]) -> S3Settings:
        flags = {}
        for i, arg in enumerate(beam_args):
            name, eq, value = arg.partition("=")
            if not eq and i + 1 < len(beam_args):
                value = beam_args[i + 1]
            flags[name] = value
        return cls(flags.get("--s3_endpoint_url"), flags.get("--s3_access_key_id"),
                   flags.get("--s3_secret_access_key"), flags.get("--s3_region_name"))

    def client(self):
        """A client that fails in seconds: short timeouts, one attempt; ``None`` without credentials."""
        session = boto3.Session(aws_access_key_id=self.access_key_id,
                                aws_secret_access_key=self.secret_access_key,
                                region_name=self.region_name or None)
        if session.get_credentials() is None:
            return None
        config = BotoConfig(connect_timeout=CONNECT_TIMEOUT_S, read_timeout=READ_TIMEOUT_S,
                            retries={"max_attempts": 1, "mode": "standard"})
        return session.client("s3", endpoint_url=self.endpoint_url or None,
                              region_name=self.region_name or session.region_name or "us-east-1", config=config)

    def endpoint(self, client) -> str:
        return self.endpoint_url or client.meta.endpoint_url


def check(inputs: list[str], outputs: list[str], beam_args: list[str]) -> list[Problem]:
    """Every problem with reading ``inputs`` (paths, globs, ``s3://``) and writing ``outputs``."""
    s3 = _S3Checks(S3Settings.from_beam_args(beam_args))
    problems: list[Problem] = []
    for pattern in inputs:
        problems += s3.input(pattern) if pattern.startswith("s3://") else _local_input(pattern)
    for folder in outputs:
        problems += s3.output(folder) if folder.startswith("s3://") else _local_output(folder)
    return problems


def _local_input(pattern: str) -> list[Problem]:
    if "://" in pattern:
        return []
    if os.path.isdir(pattern):
        return [Problem(pattern, "is a folder, not a file or pattern", f"use {pattern.rstrip('/')}/*")]
    if not glob.glob(pattern, recursive=True):
        cause = "no file there" if not any(c in pattern for c in _GLOB_CHARS) else "the pattern matches no file"
        return [Problem(pattern, cause, "check the path (globs: quote them so the shell passes them on)")]
    return []


def _local_output(folder: str) -> list[Problem]:
    if "://" in folder:
        return []
    existing = os.path.abspath(folder)
    while not os.path.exists(existing):
        existing = os.path.dirname(existing)
    if not os.path.isdir(existing):
        return [Problem(folder, f"cannot create the folder: {existing} is a file",
                        "choose an --output under a folder, or move that file away")]
    try:  # the only sure test: write a file (deleted at once) where the run will write
        with tempfile.NamedTemporaryFile(dir=existing, prefix=".dataprep-preflight-"):
            pass
    except OSError as exc:
        return [Problem(folder, f"cannot write in {existing}: {exc.strerror or exc}",
                        "choose a writable --output, or fix the folder's permissions")]
    return []


class _S3Checks:
    """S3 checks with one client and one ``head_bucket`` per bucket."""

    def __init__(self, settings: S3Settings):
        self._settings = settings
        self._client = None
        self._buckets: dict[str, tuple[str, str] | None] = {}

    def input(self, pattern: str) -> list[Problem]:
        bucket, key = _split(pattern)
        problem = self._reach(pattern, bucket)
        if problem:
            return [problem]
        literal = key
        for char in _GLOB_CHARS:
            literal = literal.split(char, 1)[0]
        try:
            page = self._client.list_objects_v2(Bucket=bucket, Prefix=literal, MaxKeys=1000)
        except (BotoCoreError, ClientError) as exc:
            if _transient(exc):
                return []
            return [Problem(pattern, f"cannot list the bucket: {_message(exc)}", "check the credentials' permissions")]
        keys = [item["Key"] for item in page.get("Contents", [])]
        matched = [k for k in keys if k == key or fnmatch.fnmatchcase(k, key)]
        if not matched and not page.get("IsTruncated"):
            return [Problem(pattern, "matches no object", f"check the key (aws s3 ls s3://{bucket}/{literal})")]
        return []

    def output(self, folder: str) -> list[Problem]:
        bucket, key = _split(folder)
        problem = self._reach(folder, bucket)
        if problem:
            return [problem]
        probe = f"{key.rstrip('/')}/.dataprep-preflight-{uuid.uuid4().hex}".lstrip("/")
        try:
            self._client.put_object(Bucket=bucket, Key=probe, Body=b"preflight")
            self._client.delete_object(Bucket=bucket, Key=probe)
        except (BotoCoreError, ClientError) as exc:
            if _transient(exc):
                return []
            return [Problem(folder, f"cannot write under this prefix: {_message(exc)}",
                            "use credentials that may s3:PutObject and s3:DeleteObject there")]
        return []

    def _reach(self, uri: str, bucket: str) -> Problem | None:
        if bucket not in self._buckets:
            self._buckets[bucket] = self._head(bucket)
        found = self._buckets[bucket]
        return Problem(uri, *found) if found else None

    def _head(self, bucket: str) -> tuple[str, str] | None:
        """``(cause, fix)`` when the bucket cannot be used, else ``None``."""
        if self._client is None:
            self._client = self._settings.client()
            if self._client is None:
                return "no AWS credentials found", _CREDENTIALS_FIX
        endpoint = self._settings.endpoint(self._client)
        try:
            self._client.head_bucket(Bucket=bucket)
        except NoCredentialsError:
            return "no AWS credentials found", _CREDENTIALS_FIX
        except ClientError as exc:
            if _transient(exc):
                return None  # the run's own client retries these
            code = str(exc.response.get("Error", {}).get("Code", ""))
            if code in ("404", "NoSuchBucket", "NotFound"):
                return (f"bucket {bucket!r} does not exist at {endpoint}",
                        f"create it (aws s3 mb s3://{bucket}) or fix the bucket name")
            if code in ("403", "AccessDenied", "Forbidden"):
                return (f"access to bucket {bucket!r} denied at {endpoint}",
                        "check the credentials and their permissions on the bucket")
            return f"bucket {bucket!r} at {endpoint}: {_message(exc)}", "check the bucket and the credentials"
        except ReadTimeoutError:
            return None  # reachable, slow to answer: the run's own client waits longer
        except BotoCoreError as exc:
            return (f"cannot reach the S3 endpoint {endpoint}: {_message(exc)}",
                    "check AWS_ENDPOINT_URL_S3 (or --s3_endpoint_url) and that the server is up")
        return None


def _transient(exc: Exception) -> bool:
    """A throttle, a server error or a slow answer: the store is there; the run's retries cope."""
    if isinstance(exc, ReadTimeoutError):
        return True
    if isinstance(exc, ClientError):
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0
        return status >= 500 or exc.response.get("Error", {}).get("Code") in ("SlowDown", "Throttling")
    return False


def _split(uri: str) -> tuple[str, str]:
    parts = urlsplit(uri)
    return parts.netloc, parts.path.lstrip("/")


def _message(exc: Exception) -> str:
    return " ".join(str(exc).split())
