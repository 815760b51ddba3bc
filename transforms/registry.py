"""Every stage class by name: the one line to add when adding a stage.

The order here is the text pipeline's order (cheap first: the URL filter needs no text).
"""

from transforms.dedup_exact import ExactDedup
from transforms.filters.url_filter import UrlFilter

TEXT_STAGES = (UrlFilter, ExactDedup)
