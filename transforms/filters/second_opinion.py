"""A second language-ID opinion where lid.176 is unsure: Lingua (``lingua-language-detector``).

lid.176 reads character n-gram embeddings averaged over the text: fast and right on long
text, unsure on short text and between close languages (da/no/sv, cs/sk, hr/sr/bs, id/ms,
ru/uk/be). Lingua scores 1- to 5-gram language models restricted to a configured language
set, which is what separates close languages on a few words. It costs ~1-2 ms of CPU a short
text (lid.176: ~0.1 ms), so the stage asks it only about short texts (``max_chars``) on which
lid.176's score is under a per-language threshold; the two opinions are then averaged, each
a probability over languages, weighted by ``lid_weight``.

Language codes are lid.176's (``no`` for Bokmål). Models load on first use per language and
stay in memory (the default set in high-accuracy mode: ~0.7 GB and ~12 s of CPU per worker
process, once; ``low_accuracy``: ~50 MB, trigrams only, less accurate on short text). docs/language_id.md
has the measured accuracy, cost, and how the thresholds below were tuned.
"""

from __future__ import annotations

from dataclasses import dataclass, field

# European languages with close relatives plus the larger ones of the web written in Latin
# or Cyrillic script: the 33 that the language-ID benchmark set covers and Lingua knows
# (docs/language_id.md). Scripts of their own (zh, ja, ar, ...) are rarely confused by lid.176.
DEFAULT_LANGUAGES = (
    "be", "bg", "bs", "ca", "cs", "da", "de", "en", "es", "et", "fi", "fr", "hr", "hu", "id",
    "it", "lt", "lv", "mk", "ms", "nl", "no", "pl", "pt", "ro", "ru", "sk", "sl", "sr", "sv",
    "tr", "uk", "vi",
)  # fmt: skip

# Tuned on the tune half of the benchmark set (``python -m benchmarks.language_id --tune``,
# objective: errors + 0.02 per document sent to Lingua; languages with under 20 tune
# documents take ``ask_below``). Never measured on the test half they are reported on.
TUNED_ASK_BELOW: dict[str, float] = {
    "be": 0.4, "bg": 0.6, "ca": 0.4, "cs": 0.6, "es": 0.6, "et": 0.0, "fi": 0.7, "fr": 0.5,
    "hr": 0.5, "hu": 0.7, "it": 0.5, "lt": 0.9, "lv": 0.0, "ms": 0.9, "no": 0.6, "pl": 0.6,
    "pt": 0.5, "ro": 0.0, "ru": 0.9, "sk": 0.5, "sl": 0.4, "sr": 0.95, "sv": 0.6, "uk": 0.95,
    "vi": 0.3,
}  # fmt: skip

# lid.176 label <-> Lingua's ISO 639-1 code, where they differ.
_TO_LINGUA = {"no": "nb"}
_FROM_LINGUA = {v: k for k, v in _TO_LINGUA.items()}


@dataclass(frozen=True)
class SecondOpinionConfig:
    enabled: bool = True
    # lid.176 codes Lingua chooses among; a text whose lid.176 label is not one of them is
    # never sent (Lingua could not name its language).
    languages: tuple[str, ...] = DEFAULT_LANGUAGES
    # Ask Lingua when lid.176's top score is below this (per language, else ``ask_below``);
    # tuned as TUNED_ASK_BELOW says.
    ask_below: float = 0.8
    per_language_ask_below: dict[str, float] = field(default_factory=lambda: dict(TUNED_ASK_BELOW))
    # Weight of lid.176's probability in the average (Lingua's: 1 - lid_weight); tuned as above.
    lid_weight: float = 0.3
    # Longer texts are never asked: on the tune half lid.176 alone labels every passage of
    # 400-3,000 characters right (766 of 766), and asking Lingua turned 3 of them wrong.
    max_chars: int = 400
    low_accuracy: bool = False

    def __post_init__(self) -> None:
        if isinstance(self.languages, str):
            raise TypeError("second_opinion.languages must be a list of language codes, not a string")
        object.__setattr__(self, "languages", tuple(self.languages))
        if not 0.0 <= self.lid_weight <= 1.0:
            raise ValueError(f"second_opinion.lid_weight must be in [0, 1], got {self.lid_weight}")
        # 0: never ask; above 1 (1.01): always ask, since lid.176's scores reach 1.0.
        for lang, value in {"ask_below": self.ask_below, **self.per_language_ask_below}.items():
            if not 0.0 <= value <= 1.01:
                raise ValueError(f"second_opinion threshold for {lang} must be in [0, 1.01], got {value}")
        if self.max_chars < 1:
            raise ValueError(f"second_opinion.max_chars must be >= 1, got {self.max_chars}")

    def asks(self, text: str, lang: str, score: float) -> bool:
        """Whether lid.176's answer ``lang`` at ``score`` on ``text`` goes to Lingua."""
        return (
            self.enabled
            and len(text) <= self.max_chars
            and lang in self.languages
            and score < self.per_language_ask_below.get(lang, self.ask_below)
        )


class SecondOpinion:
    """Lingua over ``config.languages``: a probability per language for each text."""

    def __init__(self, config: SecondOpinionConfig):
        from lingua import IsoCode639_1, LanguageDetectorBuilder

        codes = []
        for lang in config.languages:
            try:
                codes.append(IsoCode639_1.from_str(_TO_LINGUA.get(lang, lang)))
            except ValueError:
                raise ValueError(f"second_opinion.languages: Lingua has no language {lang!r}") from None
        builder = LanguageDetectorBuilder.from_iso_codes_639_1(*codes)
        self._detector = (builder.with_low_accuracy_mode() if config.low_accuracy else builder).build()

    def probabilities(self, text: str) -> dict[str, float]:
        """Lingua's confidence per language (summing to 1; empty when it cannot tell)."""
        values = self._detector.compute_language_confidence_values(text)
        return {
            _FROM_LINGUA.get(code, code): value.value
            for value in values
            if value.value > 0.0 and (code := value.language.iso_code_639_1.name.lower())
        }


def combine(lid: dict[str, float], lingua: dict[str, float], lid_weight: float) -> tuple[str, float]:
    """The language with the highest weighted mean of the two probabilities, and that mean."""
    scores = {
        lang: lid_weight * lid.get(lang, 0.0) + (1.0 - lid_weight) * lingua.get(lang, 0.0)
        for lang in lid.keys() | lingua.keys()
    }
    best = max(sorted(scores), key=scores.__getitem__)
    return best, scores[best]
