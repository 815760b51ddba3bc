"""Harm filter: drop offensive documents, by a profanity classifier and by a bad-words ratio.

The classifier is alt-profanity-check's shipped model: TF-IDF over English word unigrams
(stop words removed) into a linear SVM, calibrated to a probability (sigmoid), trained on
~200k human-labelled tweets (Davidson et al., 2017, hate speech and offensive language) and
Wikipedia talk comments (Jigsaw Toxic Comment Classification). Its score is the probability
that a short English text is *offensive or profane*: it reacts to swearing and insults and
largely misses threats or hate worded politely ("I will find you and hurt you" scores 0.44).
It is English only (other languages score on the few English-looking words they contain):
run the language filter first.

The model was fitted on tweet- and comment-sized texts, and TF-IDF vectors are normalised, so
one insult in a long page is diluted to nothing. The text is therefore cut into chunks of
``chunk_words`` words (32 by default: a tweet or a short comment), at most ``max_chunks`` of
them spread evenly over the document (that bounds the cost of huge pages), and the document's
``toxicity_score`` is the ``chunk_quantile`` quantile of its chunk scores (the lower value,
no interpolation). With 0.9, a document of up to 10 chunks (320 words) scores its worst
chunk; a longer one needs a tenth of its chunks offensive, so a news article quoting one
insult stays while an abusive thread goes. ``chunk_quantile = 1.0`` scores the worst chunk.

Word lists are blunt (Dodge et al., 2021 show C4's any-bad-word rule removed text by and
about minority groups disproportionately), so the list drops on a *ratio* of listed words to
words, and the shipped starter list holds only unambiguous obscenities and slurs. Users give
their own list (LDNOOBW, as C4 used, or a curated one) by path or ``s3://`` URI.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from importlib import resources

import numpy as np
import pyarrow as pa

from transforms.stage import COUNT, FRACTION, Drop, Filter, Record, SignalRules

_WORD = re.compile(r"\w+")


@dataclass(frozen=True)
class HarmFilterConfig:
    enabled: bool = True
    # Measured on HateCheck (benchmarks/harm_quality.py, docs/harm.md): precision barely moves
    # with the threshold while recall falls, so the threshold is the lowest one whose precision
    # on hateful vs benign mentions of groups reaches the model's own published precision (86%
    # at its 0.5 boundary on its held-out tweets and comments, alt-profanity-check README):
    # 0.8 (precision 0.862, recall 0.304; gold labels: 0.739 / 0.304).
    max_toxicity: float = 0.8
    # One listed word in a hundred: quotes and fiction with a few swear words stay.
    max_bad_word_ratio: float = 0.01
    bad_words_path: str | None = None  # None: the starter list in transforms/data
    chunk_words: int = 32
    max_chunks: int = 128
    chunk_quantile: float = 0.9

    def __post_init__(self) -> None:
        for name in ("max_toxicity", "max_bad_word_ratio", "chunk_quantile"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {value}")
        if self.chunk_quantile == 0.0:
            raise ValueError("chunk_quantile must be > 0")
        if self.chunk_words < 1 or self.max_chunks < 1:
            raise ValueError(
                f"chunk_words and max_chunks must be >= 1, got {self.chunk_words}, {self.max_chunks}"
            )


class WordList:
    """Entries of a word list (one a line, ``#`` comments), matched as whole lower-cased words;
    an entry of several words matches that word sequence."""

    def __init__(self, text: str):
        lines = (line.strip().lower() for line in text.splitlines())
        kept = {tuple(_WORD.findall(line)) for line in lines if not line.startswith("#")} - {()}
        self.singles = frozenset(e[0] for e in kept if len(e) == 1)
        self.phrases = frozenset(e for e in kept if len(e) > 1)
        self._phrase_starts = frozenset(e[0] for e in self.phrases)
        self._phrase_lengths = sorted({len(e) for e in self.phrases})

    @classmethod
    def read(cls, path: str | None) -> WordList:
        if path is None:
            return cls(
                resources.files("transforms.data").joinpath("bad_words.txt").read_text(encoding="utf-8")
            )
        from apache_beam.io.filesystem import CompressionTypes
        from apache_beam.io.filesystems import FileSystems

        with FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED) as handle:
            return cls(handle.read().decode("utf-8"))

    def count(self, words: list[str]) -> int:
        """Occurrences of entries in ``words`` (lower-cased tokens)."""
        count = sum(1 for w in words if w in self.singles)
        if self.phrases:
            for i, word in enumerate(words):
                if word in self._phrase_starts:
                    count += sum(1 for n in self._phrase_lengths if tuple(words[i : i + n]) in self.phrases)
        return count


def chunk_texts(words: list[str], chunk_words: int, max_chunks: int) -> list[str]:
    """The text as chunks of ``chunk_words`` words, at most ``max_chunks`` spread evenly."""
    starts = range(0, len(words), chunk_words)
    if len(starts) > max_chunks:
        picks = np.linspace(0, len(starts) - 1, max_chunks).round().astype(int)
        starts = [starts[i] for i in picks]
    return [" ".join(words[s : s + chunk_words]) for s in starts]


def lower_quantile(scores: np.ndarray, q: float) -> float:
    """The ``q`` quantile without interpolation (numpy's ``inverted_cdf``): an observed score."""
    ordered = np.sort(scores)
    return float(ordered[max(math.ceil(q * len(ordered)) - 1, 0)])


class HarmFilter(Filter):
    name = "harm"
    config_class = HarmFilterConfig
    reasons = ("toxic", "bad_words")
    signal_rules = SignalRules(
        # bad_words_ratio counts listed phrases per token: not bounded by 1.
        ranges={"toxicity_score": FRACTION, "bad_words_count": COUNT, "bad_words_ratio": COUNT}
    )
    signal_fields = (
        pa.field("toxicity_score", pa.float32()),
        pa.field("bad_words_count", pa.int32()),
        pa.field("bad_words_ratio", pa.float32()),
    )

    def __init__(self, config: HarmFilterConfig = HarmFilterConfig()):
        self.config = config
        self._bad_words = WordList("")
        self._predict_prob = None

    def setup(self) -> None:
        # The import loads the model (joblib, ~2 MB).
        from profanity_check import predict_prob

        self._predict_prob = predict_prob
        self._bad_words = WordList.read(self.config.bad_words_path)

    def score(self, record: Record) -> Record:
        return self.score_batch([record])[0]

    def score_batch(self, records: list[Record]) -> list[Record]:
        config = self.config
        chunks: list[str] = []
        spans: list[tuple[int, int]] = []
        signals: list[Record] = []
        for record in records:
            text = record.get("text") or ""
            tokens = _WORD.findall(text.lower())
            listed = self._bad_words.count(tokens)
            signals.append(
                {"bad_words_count": listed, "bad_words_ratio": listed / len(tokens) if tokens else 0.0}
            )
            record_chunks = chunk_texts(text.split(), config.chunk_words, config.max_chunks)
            spans.append((len(chunks), len(chunks) + len(record_chunks)))
            chunks.extend(record_chunks)
        # One call for the whole batch: the vectoriser and the SVM work on a sparse matrix.
        scores = self._predict_prob(chunks) if chunks else np.empty(0)
        for record_signals, (start, end) in zip(signals, spans, strict=True):
            record_signals["toxicity_score"] = (
                lower_quantile(scores[start:end], config.chunk_quantile) if end > start else 0.0
            )
        return signals

    def decide(self, record: Record) -> Drop | None:
        if record["toxicity_score"] > self.config.max_toxicity:
            return Drop("toxic", f"toxicity {record['toxicity_score']:.3f}")
        if record["bad_words_ratio"] > self.config.max_bad_word_ratio:
            return Drop(
                "bad_words",
                f"{record['bad_words_count']} listed words, ratio {record['bad_words_ratio']:.4f}",
            )
        return None
