"""Every text stage class by name, in pipeline order: the one line to add when adding a stage.

Cheap first: the URL filter needs no text, so it runs before extraction. Language ID comes
before the quality rules (their thresholds were set on English, as in FineWeb) and before the
harm model (English only). PII is redacted after the filters, so rejected records keep the text
as it was judged, and before dedup, so redacted copies of one page still meet.
"""

from transforms.dedup_exact import ExactDedup
from transforms.extract import Extract
from transforms.filters.c4 import C4QualityFilter
from transforms.filters.fineweb import FineWebQualityFilter
from transforms.filters.gopher_quality import GopherQualityFilter
from transforms.filters.gopher_repetition import GopherRepetitionFilter
from transforms.filters.harm import HarmFilter
from transforms.filters.language import LanguageFilter
from transforms.filters.url_filter import UrlFilter
from transforms.pii import RedactPii

TEXT_STAGES = (
    UrlFilter,
    Extract,
    LanguageFilter,
    GopherRepetitionFilter,
    GopherQualityFilter,
    C4QualityFilter,
    FineWebQualityFilter,
    HarmFilter,
    RedactPii,
    ExactDedup,
)
