"""Every image-caption stage class by name, in pipeline order (the images job's registry).

First the page's reservations and licence (pairs from crawled HTML carry them from the reader),
so that a reserved page's images are never downloaded. The takedown blocklist runs right after
decode, where an image's sha256 and pHash exist. Then cheap: caption length and boilerplate need only the caption, language ID a fastText call,
URL dedup a shuffle; all run before any download. Then download, decode; the placeholder check
counts URLs over every decoded image before the size filters drop any; NSFW (the costly model)
runs on what the cheap image filters kept, then the CLIP alignment score (off by default: it needs
a checkpoint); exact dedup (cheap) before near dedup.
"""

from transforms.filters.consent import ConsentFilter
from transforms.filters.license import LicenseFilter
from transforms.filters.takedown import TakedownFilter
from transforms.images.alignment import AlignmentFilter
from transforms.images.caption_boilerplate import CaptionBoilerplateFilter
from transforms.images.caption_language import CaptionLanguageFilter
from transforms.images.caption_length import CaptionLengthFilter
from transforms.images.decode import Decode
from transforms.images.dedup import ExactImageDedup, NearImageDedup
from transforms.images.download import Download
from transforms.images.image_filter import ImageFilter
from transforms.images.nsfw import NsfwFilter
from transforms.images.placeholder import Placeholder
from transforms.images.url_dedup import UrlDedup

IMAGE_STAGES = (
    ConsentFilter,
    LicenseFilter,
    CaptionLengthFilter,
    CaptionBoilerplateFilter,
    CaptionLanguageFilter,
    UrlDedup,
    Download,
    Decode,
    TakedownFilter,
    Placeholder,
    ImageFilter,
    NsfwFilter,
    AlignmentFilter,
    ExactImageDedup,
    NearImageDedup,
)
