"""Consent: drop pages whose publisher reserved them from AI training or indexing.

Runs on ingested data (WARC responses keep the headers of ``signals.KEPT_HEADERS`` and the HTML
body) as the crawler runs on what it fetches: ``X-Robots-Tag``, ``<meta name=robots>``, TDMRep
and ``Content-Usage`` (``transforms/consent/signals.py``; docs/consent.md). Scores every
reservation found, whether honoured or not (``consent_signals`` with ``consent_evidence``), so
a finished run can be re-decided; decides on the first one ``honoured`` lists. Records without
headers or HTML (JSONL, Parquet, WET) carry no such signal and are kept.
"""

from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa

from transforms.consent.content_usage import GENAI_TRAINING_CHAIN
from transforms.consent.signals import (
    AI_AGENT_TOKENS,
    HTTP_HEADERS,
    PAGE_SIGNALS,
    find_reservations,
    head_metas,
)
from transforms.stage import Drop, Filter, Record

HTML_MEDIA_TYPES = ("text/html", "application/xhtml+xml")


@dataclass(frozen=True)
class ConsentConfig:
    enabled: bool = True
    # Every reservation that applies to text, on by default: a publisher who says noindex,
    # noai, tdm-reservation or Content-Usage n has said no to this use or to a broader one.
    # ``*_noimageai`` reserves the page's images, not its text: the images job honours it.
    honoured: tuple[str, ...] = tuple(s for s in PAGE_SIGNALS if not s.endswith("noimageai"))
    # Meta tags and scoped X-Robots-Tag values addressed to these tokens count as addressed to us.
    agent_tokens: tuple[str, ...] = ("genai-dataprep", *AI_AGENT_TOKENS)
    content_usage_chain: tuple[str, ...] = GENAI_TRAINING_CHAIN

    def __post_init__(self) -> None:
        unknown = sorted(set(self.honoured) - set(PAGE_SIGNALS))
        if unknown:
            raise ValueError(f"consent.honoured: unknown signals {unknown}; known: {list(PAGE_SIGNALS)}")


def is_html(content_type: str | None) -> bool:
    media = (content_type or "").split(";", 1)[0].strip().lower()
    return media in HTML_MEDIA_TYPES or not media


class ConsentFilter(Filter):
    name = "consent"
    config_class = ConsentConfig
    reasons = PAGE_SIGNALS
    signal_fields = (
        pa.field("consent_signals", pa.list_(pa.string())),
        pa.field("consent_evidence", pa.list_(pa.string())),
    )

    def __init__(self, config: ConsentConfig = ConsentConfig()):
        self.config = config

    def score(self, record: Record) -> Record:
        if "consent_signals" in record:  # an image pair, scored from its page by the reader
            return {"consent_signals": record["consent_signals"], "consent_evidence": record["consent_evidence"]}
        body = record.get("body") if is_html(record.get("content_type")) else None
        found = find_reservations(
            record.get(HTTP_HEADERS),
            head_metas(body),
            tuple(t.lower() for t in self.config.agent_tokens),
            self.config.content_usage_chain,
        )
        return {"consent_signals": [s for s, _ in found], "consent_evidence": [e for _, e in found]}

    def decide(self, record: Record) -> Drop | None:
        for signal, evidence in zip(record["consent_signals"], record["consent_evidence"], strict=True):
            if signal in self.config.honoured:
                return Drop(signal, evidence)
        return None
