"""The run layer: everything that owns a run folder, on the driver and in the workers.

A run folder ``<output>/<run_id>/`` is begun (``seal.begin_run``: the markers of an earlier
attempt go first), filled by the pipeline (files through ``storage.write_atomic``; counts and
written files as run facts, ``facts``; each step's report data staged under ``_staging/``,
``staged``), judged (``gate``: the validation results), committed (``manifest``: conservation,
stale files out, ``manifest.json``) and sealed last (``seal.seal_run``: ``_SUCCESS``). The names
of its parts are in ``layout``. Jobs (``pipelines``) and stages (``transforms``) import these
modules; they import no pipeline and no stage (the gate reads the validation results through
``transforms.validate``, the one exception; see docs/architecture.md).
"""

from run_folder.s3_clients import share_s3_clients

share_s3_clients()
