"""Beam's DoFn state and timer introspection, memoised per class (transforms/dofn_specs.py),
gives Beam's own answer for every step of both jobs and for stateful DoFns."""

import tempfile

import apache_beam as beam
import pytest
from apache_beam.coders import VarIntCoder
from apache_beam.transforms import userstate
from apache_beam.transforms.userstate import BagStateSpec, TimerSpec, on_timer

from pipelines import images, job_runner, text
from pipelines.runner import pipeline_options
from transforms import dofn_specs

SHARED_WARC = "../shared/data/cc-warc-resiliparse/warcfile.warc.gz"


class _ParDos(beam.pipeline.PipelineVisitor):
    def __init__(self):
        self.fns = []

    def visit_transform(self, applied):
        if isinstance(applied.transform, beam.ParDo):
            self.fns.append(applied.transform.fn)


@pytest.mark.parametrize("job", [text, images], ids=["text", "images"])
def test_every_step_of_a_job_gets_beams_own_answer(job):
    assert userstate.get_dofn_specs is dofn_specs.get_dofn_specs  # installed by importing transforms
    pipeline = beam.Pipeline(options=pipeline_options([]))
    run = job_runner.RunContext(tempfile.mkdtemp() + "/r", "r", None, job.Config().memory)
    job_runner.build(job.JOB, pipeline, [SHARED_WARC], run, job.Config())
    visitor = _ParDos()
    pipeline.visit(visitor)
    assert len(visitor.fns) > 100
    for fn in visitor.fns:
        assert dofn_specs.get_dofn_specs(fn) == dofn_specs._inspect(fn), fn
        assert dofn_specs.get_dofn_specs(fn) == dofn_specs._inspect(fn), fn  # served from the memo


BUFFER = BagStateSpec("buffer", VarIntCoder())
FLUSH = TimerSpec("flush", userstate.TimeDomain.WATERMARK)
BUFFER_PARAM, FLUSH_PARAM = beam.DoFn.StateParam(BUFFER), beam.DoFn.TimerParam(FLUSH)


class _Stateful(beam.DoFn):
    def process(self, element, buffer=BUFFER_PARAM, flush=FLUSH_PARAM):
        buffer.add(element[1])

    @on_timer(FLUSH)
    def flushed(self, buffer=BUFFER_PARAM):
        yield from buffer.read()


def test_stateful_dofns_are_still_found():
    for _ in range(2):  # the second answer comes from the memo
        states, timers = dofn_specs.get_dofn_specs(_Stateful())
        assert states == {BUFFER} and timers == {FLUSH}
        assert userstate.is_stateful_dofn(_Stateful())
