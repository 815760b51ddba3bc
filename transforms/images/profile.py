"""What the image-caption job's statistics profile (``transforms.stats.CollectStats``).

Core columns: the caption's length in characters, the image's domain and the input file. Each
stage's declared signals are profiled by their Arrow type as in the text job (counts on a
1-2-5 log scale, fractions in [0, 1], strings as value counts), except where a linear range
says more: image sides (an output of 256 px and an original of 640 px fall in different
bins), aspect ratios (>= 1), CLIP-style alignment scores (a cosine in [-1, 1]). Hashes and
URLs are identifiers, not measurements; the image bytes are never profiled (a binary column
has no profile).
"""

from __future__ import annotations

import pyarrow as pa

from transforms.images.alignment import AlignmentFilter
from transforms.stats import DOMAIN_CAPACITY, UNPROFILED, FieldStat, Profile
from transforms.summaries import Bins, linear_bins

# Up to 300 characters in steps of 10; alt texts rarely run longer (the rest is overflow).
CAPTION_CHARS = Bins("linear", tuple(range(0, 301, 10)), integer=True)
# Up to 2,048 px in steps of 128.
SIDE_PIXELS = Bins("linear", tuple(range(0, 2049, 128)), integer=True)
ASPECT_RATIO = linear_bins(1.0, 5.0, 0.25)
COSINE = linear_bins(-1.0, 1.0, 0.1)


def _alignment_bins() -> dict[str, Bins]:
    """The alignment stage's float scores, whatever it names them."""
    return {f.name: COSINE for f in AlignmentFilter.signal_fields if pa.types.is_floating(f.type)}


IMAGE_PROFILE = Profile(
    core=(
        FieldStat("caption_length", CAPTION_CHARS, length_of="caption"),
        FieldStat("domain", capacity=DOMAIN_CAPACITY),
        FieldStat("source", capacity=DOMAIN_CAPACITY),
    ),
    bin_overrides={
        "caption_chars": CAPTION_CHARS,
        **dict.fromkeys(("width", "height", "original_width", "original_height"), SIDE_PIXELS),
        "aspect_ratio": ASPECT_RATIO,
        **_alignment_bins(),
    },
    unprofiled=UNPROFILED | {"sha256", "phash", "final_url"},
    snippet_of="caption",
)
