"""Building blocks of genai-dataprep: readers, stages, dedup, sinks. One concept per module."""

import run_folder  # noqa: F401 - installs one shared S3 client per process (run_folder/s3_clients.py)
from transforms.dofn_specs import inspect_once_per_class

inspect_once_per_class()  # Beam's DoFn introspection once per class, in the driver and every worker
