"""Synthetic captions in the images job: LaCLIP-style rewrites of kept images' captions.

Each selected image (``synthetic`` section: deterministic, budgeted, cached as in the text job)
gets its caption rewritten by the ``caption`` template. The rewrite becomes a new record for
the same image: the parent's image and metadata, its own ``id``, ``caption``, ``synthetic=true``,
``parent_id``, ``generator``, ``template``. It then meets the caption gates the crawled pair met
(length, boilerplate, language) and the CLIP alignment score when that stage is on.

Unlike the text job, the branch joins after the last stage: a rewrite shares its parent's image
on purpose (several captions per image is the point of LaCLIP), so image dedup, which would
drop it as its parent's exact duplicate, must not judge it. A rewrite that says the same as
its parent caption (after normalisation) is dropped instead, as
``caption_dedup.same_as_parent``: the caption-level dedup of a pair whose image is shared.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import apache_beam as beam

from transforms.dedup_exact import normalise
from transforms.stage import Record, Stage
from transforms.stage_plan import AFTER_LAST_STAGE
from transforms.synthetic import STAGE, SyntheticBranch, SyntheticConfig
from transforms.synthetic.branch import SyntheticJoin
from transforms.synthetic.generate import SIGNAL_FIELDS

# The per-record stages that judge a caption (or an image-caption pair): the rewrite meets them.
CAPTION_GATES = ("caption_length", "caption_boilerplate", "caption_language", "alignment")
# A rewrite's own fields; every other field is its parent's (the image and its metadata).
OWN_FIELDS = ("id", "source_key", "caption", "synthetic", "parent_id", "generator", "template",
              *(f.name for f in SIGNAL_FIELDS))
SAME_AS_PARENT = "caption_dedup.same_as_parent"


def _with_parent_image(element: tuple[str, dict[str, list[Record]]]) -> Iterator[Any]:
    _parent_id, grouped = element
    parents = grouped["parent"]
    for child in grouped["child"]:
        if not parents:  # cannot happen (seeds are kept records); judged by the gates as is
            yield child
            continue
        parent = parents[0]
        record = {**parent, **{name: child.get(name) for name in OWN_FIELDS}}
        if normalise(record["caption"] or "") == normalise(parent.get("caption") or ""):
            yield beam.pvalue.TaggedOutput("rejected", {
                **record, "reject_stage": STAGE, "reject_reason": SAME_AS_PARENT,
                "reject_detail": "the rewrite repeats its parent caption", "dup_of": parent["id"],
            })
        else:
            yield record


class WithParentImage(beam.PTransform):
    """Rewritten-caption records → the same records with their parent's image and metadata.

    Only the parents of generated records are shuffled: their ids (at most
    ``synthetic.max_records``) reach every worker as a side input."""

    def __init__(self, parents: beam.PCollection):
        super().__init__()
        self._parents = parents
        self.rejected: beam.PCollection | None = None

    def expand(self, children: beam.PCollection) -> beam.PCollection:
        wanted = beam.pvalue.AsDict(children | "ParentIds" >> beam.Map(lambda r: (r["parent_id"], True)))
        parents = (
            self._parents
            | "Seeded" >> beam.Filter(lambda r, ids: r["id"] in ids, wanted)
            | "KeyParents" >> beam.Map(lambda r: (r["id"], r))
        )
        keyed = children | "KeyChildren" >> beam.Map(lambda r: (r["parent_id"], r))
        out = (
            {"parent": parents, "child": keyed}
            | "Join" >> beam.CoGroupByKey()
            | "Inherit" >> beam.FlatMap(_with_parent_image).with_outputs("rejected", main="kept")
        )
        self.rejected = out.rejected
        return out.kept


class CaptionRewriteJoin(SyntheticJoin):
    """The images job's branch (``pipelines.assembly.Branch``): joins after the last stage, each
    rewritten caption joined to its parent's image and gated by the caption stages only."""

    joins = AFTER_LAST_STAGE

    def __call__(self, records: beam.PCollection, gates: list[Stage]) -> tuple[beam.PCollection, beam.PCollection]:
        complete = WithParentImage(records)
        caption_gates = [stage for stage in gates if stage.name in CAPTION_GATES]
        self.parts = records | "Synthetic" >> SyntheticBranch(
            self._config, self._run, caption_gates, self._batch_size, complete=complete
        )
        rejected = (self.parts["rejected"], complete.rejected) | "SyntheticRejected" >> beam.Flatten()
        merged = (records, self.parts["kept"]) | "WithSynthetic" >> beam.Flatten()
        return merged, rejected


def default_images_synthetic() -> SyntheticConfig:
    """The images job's ``synthetic`` section: the caption task, captions from 5 characters
    (DataComp's basic filter keeps captions over 5 characters) to 1,000."""
    return SyntheticConfig(tasks=("caption",), min_chars=5, max_chars=1000)
