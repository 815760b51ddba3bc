"""Building blocks of genai-dataprep: readers, stages, dedup, sinks. One concept per module."""

import run_folder  # noqa: F401,E402 - installs one shared S3 client per process (run_folder/s3_clients.py)
