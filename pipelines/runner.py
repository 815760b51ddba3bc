"""Beam pipeline options for our jobs: in-process by default, any runner by flags.

Beam's default ``DirectRunner`` first tries to download the Prism runner binary, which fails
offline; unless the user names a runner we choose the in-process ``FnApiRunner`` explicitly.
Every other flag passes through unchanged (``--direct_num_workers=2
--direct_running_mode=multi_processing`` uses two cores; Dataflow/Flink/Spark flags work as
documented by Beam).
"""

from __future__ import annotations

from apache_beam.io.filesystems import FileSystems
from apache_beam.options.pipeline_options import PipelineOptions, StandardOptions

DEFAULT_RUNNER = "FnApiRunner"


def pipeline_options(beam_args: list[str]) -> PipelineOptions:
    options = PipelineOptions(list(beam_args))
    standard = options.view_as(StandardOptions)
    if not standard.runner:
        standard.runner = DEFAULT_RUNNER
    # The driver itself reads and writes the run folder (manifest, markers): same settings.
    FileSystems.set_options(options)
    return options


def runner_name(options: PipelineOptions) -> str:
    runner = options.view_as(StandardOptions).runner
    return runner if isinstance(runner, str) else type(runner).__name__
