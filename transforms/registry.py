"""Every text stage class by name, in pipeline order: the one line to add when adding a stage.

Cheap first: the takedown blocklist and the URL filter need no text, so they run before
extraction; so do the consent and licence stages, which read the response headers and the HTML
that extraction discards. Language ID comes
before the quality rules (their thresholds were set on English, as in FineWeb) and before the
harm model (English only). PII is redacted after the filters, so rejected records keep the text
as it was judged, and before dedup, so redacted copies of one page still meet. Exact dedup
(cheap) runs before MinHash, so near-duplicate clustering sees fewer documents. C4-style line
dedup (off by default) removes corpus-wide repeated lines before the quality rules judge the
text. The model quality score, decontamination and balance work on the deduplicated set, and
token counts are taken on what is published.

Stages that see one batch at a time are ``Stage`` classes (built from their config); global
steps are ``PTransform`` classes built with ``for_run(config, RunContext)``.
"""

from transforms.balance import Balance
from transforms.decontaminate import Decontaminate
from transforms.dedup_exact import ExactDedup
from transforms.dedup_minhash import MinHashDedup
from transforms.extract import Extract
from transforms.filters.c4 import C4QualityFilter
from transforms.filters.consent import ConsentFilter
from transforms.filters.fineweb import FineWebQualityFilter
from transforms.filters.gopher_quality import GopherQualityFilter
from transforms.filters.gopher_repetition import GopherRepetitionFilter
from transforms.filters.harm import HarmFilter
from transforms.filters.language import LanguageFilter
from transforms.filters.license import LicenseFilter
from transforms.filters.llm_guard import LlmGuard
from transforms.filters.quality_model import QualityModel
from transforms.filters.takedown import TakedownFilter
from transforms.filters.url_filter import UrlFilter
from transforms.line_dedup import LineDedup
from transforms.pii import RedactPii
from transforms.tokens import TokenCount

TEXT_STAGES = (
    TakedownFilter,
    UrlFilter,
    ConsentFilter,
    LicenseFilter,
    Extract,
    LanguageFilter,
    LineDedup,
    GopherRepetitionFilter,
    GopherQualityFilter,
    C4QualityFilter,
    FineWebQualityFilter,
    HarmFilter,
    LlmGuard,
    RedactPii,
    ExactDedup,
    MinHashDedup,
    QualityModel,
    Decontaminate,
    Balance,
    TokenCount,
)
