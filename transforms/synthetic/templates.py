"""Versioned prompt templates: one per synthetic task, overridable from the config file.

A template's ``name@version`` goes on every record it produced (``template`` column) and into
the cache key, so editing a prompt means bumping its version: old answers are then neither
reused nor confused with new ones.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from transforms.stage import Record

# How the model's answer becomes a record's text: "text" keeps it as written, "qa_json" parses
# {"pairs": [{"question": ..., "answer": ...}]} (asked for in JSON mode) into Q/A lines.
OUTPUT_FORMATS = ("text", "qa_json")


@dataclass(frozen=True)
class PromptTemplate:
    name: str
    version: str
    system: str
    # ``str.format`` with ``{input}``: the seed's ``input_field``, cut to ``max_input_chars``.
    prompt: str
    input_field: str = "text"
    output_field: str = "text"
    output_format: str = "text"
    max_tokens: int = 256
    temperature: float = 0.0
    max_input_chars: int = 4000
    # Answers shorter than this (characters, after parsing) are rejected as ``empty_response``.
    min_output_chars: int = 20
    # An answer cut off at max_tokens ends mid-sentence: reject it as ``truncated_response``.
    reject_truncated: bool = True

    def __post_init__(self) -> None:
        if not self.name or "@" in self.name:
            raise ValueError(f"template name must be non-empty without '@': {self.name!r}")
        if self.output_format not in OUTPUT_FORMATS:
            raise ValueError(f"template {self.name}: output_format must be one of {OUTPUT_FORMATS}")
        if "{input}" not in self.prompt:
            raise ValueError(f"template {self.name}: prompt must contain {{input}}")
        if self.max_tokens < 1 or self.max_input_chars < 1:
            raise ValueError(f"template {self.name}: max_tokens and max_input_chars must be >= 1")

    @property
    def ref(self) -> str:
        """``name@version``: what the ``template`` column of a synthetic record says."""
        return f"{self.name}@{self.version}"

    @property
    def json_mode(self) -> bool:
        return self.output_format == "qa_json"

    def input_of(self, record: Record) -> str | None:
        value = record.get(self.input_field)
        if not isinstance(value, str) or not value.strip():
            return None
        return value.strip()[: self.max_input_chars]

    def messages(self, source: str) -> list[dict[str, str]]:
        return [
            {"role": "system", "content": self.system},
            {"role": "user", "content": self.prompt.format(input=source)},
        ]


class ParseError(ValueError):
    """The model answered, but not in the form the template asked for."""

    def __init__(self, reason: str, detail: str):
        super().__init__(detail)
        self.reason, self.detail = reason, detail


def parse_answer(template: PromptTemplate, answer: str, finish_reason: str = "") -> str:
    """The record text from a model answer; ``ParseError`` when it is not usable."""
    if template.output_format == "qa_json":
        text = _qa_text(answer)
    else:
        text = answer.strip()
        if template.reject_truncated and finish_reason == "length":
            raise ParseError("truncated_response", f"stopped at max_tokens={template.max_tokens}")
    if len(text) < template.min_output_chars:
        raise ParseError(
            "empty_response", f"answer of {len(text)} chars < min_output_chars={template.min_output_chars}"
        )
    return text


def _qa_text(answer: str) -> str:
    try:
        data: Any = json.loads(answer)
    except json.JSONDecodeError as exc:
        raise ParseError("malformed_response", f"not JSON ({exc.msg} at {exc.pos}): {answer[:120]!r}") from None
    pairs = data.get("pairs") if isinstance(data, dict) else data
    if not isinstance(pairs, list):
        raise ParseError("malformed_response", f"no 'pairs' list in {answer[:120]!r}")
    lines = []
    for pair in pairs:
        if not isinstance(pair, dict):
            continue
        question, answer_text = pair.get("question"), pair.get("answer")
        if isinstance(question, str) and isinstance(answer_text, str) and question.strip() and answer_text.strip():
            lines.append(f"Q: {question.strip()}\nA: {answer_text.strip()}")
    if not lines:
        raise ParseError("malformed_response", f"no complete question-answer pair in {answer[:120]!r}")
    return "\n\n".join(lines)


QA_SCHEMA = {
    "type": "object",
    "properties": {
        "pairs": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {"question": {"type": "string"}, "answer": {"type": "string"}},
                "required": ["question", "answer"],
            },
        }
    },
    "required": ["pairs"],
}

# Phrasing after the WRAP paper (Maini et al. 2024, "Rephrasing the Web"): its Wikipedia-style
# prompt gave the largest perplexity gains; QA after its question-answer style.
REPHRASE = PromptTemplate(
    name="rephrase",
    version="v1",
    system="You rewrite web text as clear, neutral, encyclopedic prose.",
    prompt=(
        "Rewrite the following text in a high-quality encyclopedic style, like a Wikipedia "
        "article. Keep every fact; add nothing that is not in the text. Write only the "
        "rewritten text.\n\nText:\n{input}"
    ),
    max_tokens=256,
)
QA = PromptTemplate(
    name="qa",
    version="v1",
    system="You write question-answer pairs that the given document answers. Reply in JSON.",
    prompt=(
        "Write up to three question-answer pairs answered by the document below, as JSON "
        '{{"pairs": [{{"question": "...", "answer": "..."}}]}}. Use only facts from the '
        "document.\n\nDocument:\n{input}"
    ),
    output_format="qa_json",
    max_tokens=256,
)
CAPTION = PromptTemplate(
    name="caption",
    version="v1",
    system="You rewrite image captions into one clear, factual sentence.",
    prompt=(
        "Rewrite this image caption as one fluent, factual sentence describing the image. "
        "Do not invent details. Write only the sentence.\n\nCaption: {input}"
    ),
    input_field="caption",
    output_field="caption",
    max_tokens=64,
    max_input_chars=1000,
    min_output_chars=10,
)

BUILTIN_TEMPLATES: tuple[PromptTemplate, ...] = (REPHRASE, QA, CAPTION)
