"""Image filters on the original image (before resizing): minimum side, aspect ratio, file size.

Defaults: DataComp's basic filter drops images whose smaller side is under 200 px or whose
aspect ratio exceeds 3 (Gadre et al., 2023, "DataComp", basic filtering); LAION-400M dropped
images under 5 KB (Schuhmann et al., 2021, "LAION-400M", §"Dataset creation"); the upper byte
bound is the download limit (``DecodeConfig.max_bytes``), so it is not repeated here.
"""

from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa

from transforms.stage import Drop, Filter, Record, SignalRules


@dataclass(frozen=True)
class ImageFilterConfig:
    enabled: bool = True
    min_side: int = 200  # DataComp basic
    max_aspect_ratio: float = 3.0  # DataComp basic: longer side / shorter side
    min_bytes: int = 5 * 1024  # LAION-400M

    def __post_init__(self) -> None:
        if self.min_side < 0 or self.min_bytes < 0:
            raise ValueError("min_side and min_bytes must be >= 0")
        if self.max_aspect_ratio < 1.0:
            raise ValueError(f"max_aspect_ratio must be >= 1, got {self.max_aspect_ratio}")


class ImageFilter(Filter):
    name = "image_filter"
    config_class = ImageFilterConfig
    reasons = ("too_small", "aspect_ratio", "too_few_bytes")
    signal_rules = SignalRules(ranges={"aspect_ratio": (1.0, None)})  # longer side / shorter side
    signal_fields = (pa.field("aspect_ratio", pa.float32()),)

    def __init__(self, config: ImageFilterConfig = ImageFilterConfig()):
        self.config = config

    def score(self, record: Record) -> Record:
        w, h = record["original_width"], record["original_height"]
        return {"aspect_ratio": max(w, h) / max(1, min(w, h))}

    def decide(self, record: Record) -> Drop | None:
        w, h = record["original_width"], record["original_height"]
        if min(w, h) < self.config.min_side:
            return Drop("too_small", f"{w}x{h}: smaller side < {self.config.min_side}")
        if record["aspect_ratio"] > self.config.max_aspect_ratio:
            return Drop(
                "aspect_ratio", f"{w}x{h}: {record['aspect_ratio']:.2f} > {self.config.max_aspect_ratio:g}"
            )
        if record["original_bytes"] < self.config.min_bytes:
            return Drop("too_few_bytes", f"{record['original_bytes']} bytes < {self.config.min_bytes}")
        return None
