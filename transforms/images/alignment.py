"""Image-caption alignment: the cosine similarity of CLIP image and caption embeddings.

An open_clip model (``model``: an architecture name open_clip knows, e.g. ``ViT-B-32``) with
the weights of the checkpoint the user gives (``checkpoint``: a local path, ``s3://`` through
boto3 with the standard ``AWS_*`` variables and ``AWS_ENDPOINT_URL_S3``, or another Beam
filesystem URI).
Nothing is downloaded: the architecture is built without weights, the checkpoint is copied to a
local temporary file (remote URIs only), loaded with ``open_clip.load_checkpoint`` (strict) and
the copy deleted; ``HF_HUB_OFFLINE=1`` is set before open_clip is imported, so an architecture
whose text tower or tokenizer would come from the Hugging Face hub fails instead of fetching.
The model loads once per worker process and is shared by the stage instances in it.

- ``alignment_score`` = cosine of the L2-normalised image and caption embeddings, in [-1, 1]
  (image preprocessed and caption tokenised by open_clip's own eval transform and tokenizer for
  that architecture).
- Rejected as ``alignment.low_score`` when ``alignment_score < threshold``. The default 0.28 is
  the OpenAI ViT-B/32 cut-off of LAION-2B-en (Schuhmann et al., 2022), which DataComp
  reproduces as its ``laion2b`` baseline (``baselines/apply_filter.py``: B/32 score >= 0.28);
  DataComp also evaluates a fixed 0.3 on both B/32 and L/14 scores (``baseline_test.sh``) and
  LAION-400M used 0.3 (B/32). Scores are specific to the model: set ``threshold`` with the model.

Off by default: it needs a checkpoint the user provides.
"""

from __future__ import annotations

import importlib.util
import io
import logging
import os
import shutil
import sys
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
from PIL import Image

from transforms.stage import Drop, Filter, Record, SignalRules

log = logging.getLogger(__name__)
_LOCK = threading.Lock()
_SCORERS: dict[tuple[str, str, str, int], ClipScorer] = {}
_TORCHVISION_OP_SCHEMAS: Any = None  # the shim's torch.library.Library: it must stay alive


@dataclass(frozen=True)
class AlignmentConfig:
    enabled: bool = False  # needs a checkpoint the user provides
    model: str = "ViT-B-32"  # an open_clip architecture name (list: open_clip.list_models())
    checkpoint: str | None = None  # local path or s3://...; .pt/.bin (torch) or .safetensors
    threshold: float = 0.28  # LAION-2B-en / DataComp "laion2b" (OpenAI ViT-B/32); see module doc
    batch_size: int = 32  # images per forward pass
    device: str = "cpu"
    threads: int = 1  # torch intra-op threads per worker (workers already use the cores)

    def __post_init__(self) -> None:
        if not -1.0 <= self.threshold <= 1.0:
            raise ValueError(f"threshold must be in [-1, 1] (a cosine), got {self.threshold}")
        if self.batch_size < 1 or self.threads < 1:
            raise ValueError(f"batch_size and threads must be >= 1, got {self.batch_size}, {self.threads}")
        if self.model.startswith(("hf-hub:", "local-dir:")):
            raise ValueError(
                f"model must be an open_clip architecture name, got {self.model!r}: give weights as checkpoint"
            )
        if self.enabled and not self.checkpoint:
            raise ValueError("alignment is enabled but has no checkpoint (a local path or s3:// URI)")


def import_open_clip() -> Any:
    """``open_clip``, importable beside the CPU torch wheel.

    open_clip imports torchvision. The PyPI torchvision wheels are CUDA builds: with CPU torch
    their compiled ops cannot load, and torchvision 0.28's ``_meta_registrations`` then fails on
    ``register_fake("torchvision::nms")`` ("operator torchvision::nms does not exist",
    pytorch/vision#9085; guard proposed in #9649). When the ops cannot load, the two schemas it
    registers fakes for are declared first; open_clip's inference never calls them (nor any
    other compiled torchvision op: its eval transform runs on PIL and plain tensors).
    """
    global _TORCHVISION_OP_SCHEMAS
    os.environ["HF_HUB_OFFLINE"] = "1"
    if "torchvision" not in sys.modules and _TORCHVISION_OP_SCHEMAS is None and not _torchvision_ops_load():
        import torch

        library = torch.library.Library("torchvision", "FRAGMENT")
        for op in ("nms", "qnms"):
            library.define(f"{op}(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
        _TORCHVISION_OP_SCHEMAS = library
    import open_clip

    return open_clip


def _torchvision_ops_load() -> bool:
    """Whether torchvision's compiled ops load with this torch (without importing torchvision)."""
    import torch

    spec = importlib.util.find_spec("torchvision")
    if spec is None or not spec.submodule_search_locations:
        return True  # not installed: importing open_clip says so
    extensions = sorted(Path(spec.submodule_search_locations[0]).glob("_C*.so"))
    try:
        torch.ops.load_library(str(extensions[0]))
    except (IndexError, OSError):
        return False
    return True


def local_copy(uri: str) -> str:
    """A local temporary copy of ``uri``, keeping its extension: ``s3://`` through boto3 (the
    standard ``AWS_*`` variables and ``AWS_ENDPOINT_URL_S3``, in a worker or not), any other
    scheme through Beam's filesystems."""
    handle, local = tempfile.mkstemp(prefix="dataprep-clip-", suffix=os.path.splitext(uri)[1])
    try:
        with os.fdopen(handle, "wb") as out:
            if uri.startswith("s3://"):
                import boto3

                bucket, _, key = uri.removeprefix("s3://").partition("/")
                boto3.client("s3").download_fileobj(bucket, key, out)
            else:
                from apache_beam.io.filesystem import CompressionTypes
                from apache_beam.io.filesystems import FileSystems

                with FileSystems.open(uri, compression_type=CompressionTypes.UNCOMPRESSED) as remote:
                    shutil.copyfileobj(remote, out, length=1 << 20)
    except BaseException:
        os.unlink(local)
        raise
    return local


class ClipScorer:
    """An open_clip model with its eval image transform and tokenizer; ``scores`` does the work."""

    def __init__(self, model: Any, preprocess: Any, tokenizer: Any, device: str):
        self.model, self.preprocess, self.tokenizer, self.device = model, preprocess, tokenizer, device

    @classmethod
    def load(cls, model_name: str, checkpoint: str, device: str = "cpu") -> ClipScorer:
        open_clip = import_open_clip()
        if model_name not in open_clip.list_models():
            raise ValueError(f"unknown open_clip model {model_name!r}; known: {open_clip.list_models()}")
        model, _, preprocess = open_clip.create_model_and_transforms(
            model_name, pretrained=None, device=device, pretrained_image=False, pretrained_text=False
        )
        remote = "://" in checkpoint
        if not remote and not os.path.isfile(checkpoint):
            raise FileNotFoundError(f"alignment checkpoint not found: {checkpoint}")
        try:
            local = local_copy(checkpoint) if remote else checkpoint
        except Exception as exc:
            raise OSError(f"alignment checkpoint {checkpoint} could not be read: {exc}") from exc
        try:
            open_clip.load_checkpoint(model, local, strict=True, weights_only=True, device=device)
        except Exception as exc:
            raise ValueError(
                f"alignment checkpoint {checkpoint} is not a {model_name} open_clip checkpoint: "
                f"{type(exc).__name__}: {str(exc)[:300]}"
            ) from exc
        finally:
            if remote:
                os.unlink(local)
        model.eval()
        log.info("alignment: %s weights loaded from %s", model_name, checkpoint)
        return cls(model, preprocess, open_clip.get_tokenizer(model_name), device)

    def scores(self, images: list[bytes], captions: list[str], batch_size: int = 32) -> list[float]:
        """Cosine similarity of each image with its caption, in [-1, 1]."""
        import torch

        out: list[float] = []
        with torch.inference_mode():
            for start in range(0, len(images), batch_size):
                pixels = torch.stack(
                    [self.preprocess(Image.open(io.BytesIO(b))) for b in images[start : start + batch_size]]
                ).to(self.device)
                tokens = self.tokenizer(captions[start : start + batch_size]).to(self.device)
                image = torch.nn.functional.normalize(self.model.encode_image(pixels).float(), dim=-1)
                text = torch.nn.functional.normalize(self.model.encode_text(tokens).float(), dim=-1)
                out.extend((image * text).sum(dim=-1).clamp(-1.0, 1.0).tolist())
        return out


def shared_scorer(config: AlignmentConfig) -> ClipScorer:
    """One ``ClipScorer`` per (model, checkpoint, device, threads) per process."""
    key = (config.model, config.checkpoint or "", config.device, config.threads)
    with _LOCK:
        if key not in _SCORERS:
            import torch

            torch.set_num_threads(config.threads)
            _SCORERS[key] = ClipScorer.load(config.model, config.checkpoint or "", config.device)
        return _SCORERS[key]


# CLIP-style image-text similarity: a cosine, so in [-1, 1].
COSINE = (-1.0, 1.0)


class AlignmentFilter(Filter):
    name = "alignment"
    config_class = AlignmentConfig
    reasons = ("low_score",)
    signal_rules = SignalRules(ranges={"alignment_score": COSINE})
    signal_fields = (pa.field("alignment_score", pa.float32()),)

    def __init__(self, config: AlignmentConfig = AlignmentConfig()):
        self.config = config
        self._scorer: ClipScorer | None = None

    def setup(self) -> None:
        if not self.config.checkpoint:
            raise ValueError("alignment needs a checkpoint (a local path or s3:// URI)")
        self._scorer = shared_scorer(self.config)

    def score(self, record: Record) -> Record:
        return self.score_batch([record])[0]

    def score_batch(self, records: list[Record]) -> list[Record]:
        if not records:
            return []
        scores = self._scorer.scores(
            [r["image"] for r in records], [r.get("caption") or "" for r in records], self.config.batch_size
        )
        return [{"alignment_score": s} for s in scores]

    def decide(self, record: Record) -> Drop | None:
        if record["alignment_score"] < self.config.threshold:
            return Drop("low_score", f"{record['alignment_score']:.4f} < {self.config.threshold}")
        return None
