"""NSFW: NudeNet's shipped ``320n.onnx`` detector (nudenet 3.4.2), in batches, via onnxruntime.

The model is a YOLOv8-n detector: for an input of N x 3 x 320 x 320 (prepared as
``model_input`` says, matching ``nudenet._read_image``) it returns N x 22 x 2100: per candidate
box 4 coordinates and 18 class scores (``NUDENET_LABELS``); at another ``input_size`` s, the
boxes are (s/8)^2 + (s/16)^2 + (s/32)^2. It has no image-level score; ours is
derived and stored with the evidence:

- ``nsfw_score`` = the highest class score, over all 2100 boxes, of the *explicit* classes
  (exposed breasts, genitalia, buttocks, anus: ``EXPLICIT_LABELS``). One confident exposed
  region makes an image explicit; covered parts, faces, feet, bellies and armpits never count.
  The max over raw boxes needs no NMS: NMS removes overlapping boxes, never the best one.
- ``nsfw_labels`` = every class (explicit or not) whose best box scores at least
  ``label_min_score`` (0.2, the cut-off NudeNet applies before NMS), for audits and
  re-thresholding on other classes.
- Rejected as ``nsfw.explicit`` when ``nsfw_score >= threshold`` (0.5 by default: NudeNet's
  detections are kept from 0.2, its NMS from 0.25; 0.5 asks the detector to be more sure than
  not). The model loads once per worker (``setup``); see docs/images.md for measured cost.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import cv2
import numpy as np
import pyarrow as pa

from transforms.stage import FRACTION, Drop, Filter, Record, SignalRules
from transforms.worker_cores import worker_cores

INPUT_SIZE = 320
NUDENET_LABELS = (
    "FEMALE_GENITALIA_COVERED",
    "FACE_FEMALE",
    "BUTTOCKS_EXPOSED",
    "FEMALE_BREAST_EXPOSED",
    "FEMALE_GENITALIA_EXPOSED",
    "MALE_BREAST_EXPOSED",
    "ANUS_EXPOSED",
    "FEET_EXPOSED",
    "BELLY_COVERED",
    "FEET_COVERED",
    "ARMPITS_COVERED",
    "ARMPITS_EXPOSED",
    "FACE_MALE",
    "BELLY_EXPOSED",
    "MALE_GENITALIA_EXPOSED",
    "ANUS_COVERED",
    "FEMALE_BREAST_COVERED",
    "BUTTOCKS_COVERED",
)
EXPLICIT_LABELS = (
    "BUTTOCKS_EXPOSED",
    "FEMALE_BREAST_EXPOSED",
    "FEMALE_GENITALIA_EXPOSED",
    "MALE_GENITALIA_EXPOSED",
    "ANUS_EXPOSED",
)
_EXPLICIT = np.array([NUDENET_LABELS.index(label) for label in EXPLICIT_LABELS])


@dataclass(frozen=True)
class NsfwConfig:
    enabled: bool = True
    threshold: float = 0.5
    label_min_score: float = 0.2  # NudeNet's own detection cut-off
    model_path: str | None = None  # None: 320n.onnx from the nudenet wheel
    # onnxruntime intra-op threads per worker; 0: one per core of the worker's share
    # (``transforms.worker_cores``: all of them for one worker). The detector runs after every
    # other image step, alone on the machine in a one-worker run: two threads on 2 cores score
    # an image in 23-26 ms instead of 40 (10-15% more CPU; docs/images.md). Idle threads do not
    # spin.
    threads: int = 0
    # The square side the detector sees: 320 is what 320n.onnx was trained at (NudeNet's
    # default). The model takes any multiple of 32; 256 (= decode.image_size's default) costs
    # ~0.6x as much and does not upscale the 256 px output, but its recall is not measured here
    # (docs/images.md, "NSFW").
    input_size: int = INPUT_SIZE

    def __post_init__(self) -> None:
        for name in ("threshold", "label_min_score"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {getattr(self, name)}")
        if self.threads < 0:
            raise ValueError(f"threads must be >= 0 (0: one per CPU core), got {self.threads}")
        if self.input_size < 32 or self.input_size % 32:
            raise ValueError(f"input_size must be a positive multiple of 32 (the model's stride), got {self.input_size}")


def packaged_model_path() -> str:
    import importlib.util

    spec = importlib.util.find_spec("nudenet")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("nudenet is not installed: give NsfwConfig.model_path")
    return os.path.join(spec.submodule_search_locations[0], "320n.onnx")


def model_input(image_bytes: bytes, size: int = INPUT_SIZE) -> np.ndarray:
    """3 x ``size`` x ``size`` float32 in [0, 1], channels B, G, R: ``nudenet._read_image``'s steps
    (OpenCV decode, black padding right/bottom to a square, ``blobFromImage``'s bilinear resize;
    its two channel swaps cancel out), without its copies."""
    bgr = cv2.imdecode(np.frombuffer(image_bytes, np.uint8), cv2.IMREAD_COLOR)
    if bgr is None:
        raise ValueError("OpenCV cannot decode the image")
    height, width = bgr.shape[:2]
    side = max(height, width)
    square = cv2.copyMakeBorder(bgr, 0, side - height, 0, side - width, cv2.BORDER_CONSTANT, value=(0, 0, 0))
    resized = cv2.resize(square, (size, size), interpolation=cv2.INTER_LINEAR)
    return resized.transpose(2, 0, 1).astype(np.float32) * np.float32(1 / 255.0)


def image_level(output: np.ndarray, label_min_score: float) -> tuple[float, list[str]]:
    """``(nsfw_score, labels)`` of one image from its 22 x 2100 model output (see the module)."""
    best = output[4:, :].max(axis=1)  # best score of each of the 18 classes over all boxes
    score = float(best[_EXPLICIT].max())
    labels = [NUDENET_LABELS[i] for i in np.argsort(-best) if best[i] >= label_min_score]
    return score, labels


class NsfwFilter(Filter):
    name = "nsfw"
    config_class = NsfwConfig
    reasons = ("explicit",)
    signal_rules = SignalRules(ranges={"nsfw_score": FRACTION})
    signal_fields = (pa.field("nsfw_score", pa.float32()), pa.field("nsfw_labels", pa.list_(pa.string())))

    def __init__(self, config: NsfwConfig = NsfwConfig()):
        self.config = config
        self._session = None

    def setup(self) -> None:
        import onnxruntime

        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = self.config.threads or worker_cores()
        options.inter_op_num_threads = 1
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self._session = onnxruntime.InferenceSession(
            self.config.model_path or packaged_model_path(), options, providers=["CPUExecutionProvider"]
        )
        self._input = self._session.get_inputs()[0].name

    def score(self, record: Record) -> Record:
        return self.score_batch([record])[0]

    def score_batch(self, records: list[Record]) -> list[Record]:
        if not records:
            return []
        batch = np.stack([model_input(r["image"], self.config.input_size) for r in records])
        (outputs,) = self._session.run(None, {self._input: batch})
        results = []
        for output in outputs:
            score, labels = image_level(output, self.config.label_min_score)
            results.append({"nsfw_score": score, "nsfw_labels": labels})
        return results

    def decide(self, record: Record) -> Drop | None:
        if record["nsfw_score"] >= self.config.threshold:
            return Drop("explicit", f"{record['nsfw_score']:.3f} {','.join(record['nsfw_labels'][:5])}")
        return None
