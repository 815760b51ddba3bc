"""The names of a run folder's parts (ARCHITECTURE §5), in one place."""

SUCCESS = "_SUCCESS"
MANIFEST = "manifest.json"
DATA = "data"
REJECTED_DIR = "rejected"
WEBDATASET_DIR = "webdataset"  # the images job's optional tar shards
# Folders whose files every attempt writes anew: what the attempt did not write is stale.
OUTPUT_DIRS = (DATA, REJECTED_DIR, WEBDATASET_DIR)
# What the pipeline leaves for the driver (run facts, stats, each step's report data, spill
# files); ``seal_run`` removes it.
STAGING_DIR = "_staging"
# The gate's verdict per stage, ``validation/<stage>.json``, kept in the published run.
VALIDATION_DIR = "validation"
# The stats document (``transforms.stats``), staged as ``_staging/stats.json``: the gate's
# per-source checks and the report read it.
STATS_NAME = "stats"
