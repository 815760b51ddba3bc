"""HTML to text: decode the HTTP payload, extract the text, drop what cannot be read.

Records from WARC responses carry ``body`` (bytes) and ``content_type``; records from JSONL,
Parquet or WET already carry ``text`` and pass through with signals only (extractor ``none``).
``body`` (and the reader's ``http_headers``) never leave this stage, on kept and rejected
records alike: the output holds text.

Decoding follows the HTML standard's order: byte-order mark, then the charset of the HTTP
Content-Type, then the ``<meta>`` prescan, then detection (uchardet), all through resiliparse's
WHATWG label mapping. Every HTML body is parsed once with lexbor (resiliparse) to bound its
nesting depth before an extractor sees it: both of resiliparse's extractions take time
quadratic in the depth (measured: 100k nested ``<div>`` took 155 s with ``main_content``,
50k nested ``<ul><li>`` 26 s without), which a size cap alone does not prevent.
docs/extraction.md has the measurements behind the defaults.
"""

from __future__ import annotations

import codecs
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np
import pyarrow as pa
from resiliparse.extract.html2text import extract_plain_text
from resiliparse.parse.encoding import detect_encoding, map_encoding_to_html5
from resiliparse.parse.html import HTMLTree

from transforms.stage import COUNT, FRACTION, Drop, Record, SignalRules, Stage
from transforms.text_blocks import COUNT_COLUMNS, PageBlocks, block_texts, features, page_blocks
from transforms.tree_ensemble import TreeEnsemble

EXTRACTORS = ("resiliparse", "trafilatura")
# Gradient-boosted trees over resiliparse's text blocks, rebuilt by benchmarks/train_extractor.py.
BOILERPLATE_MODEL = Path(__file__).with_name("data") / "boilerplate_trees.json"

_BOMS = (
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)
# C0 control bytes that text does not contain; tab, LF, FF, CR and ESC (ISO-2022-JP) excluded.
_CONTROL = frozenset(range(0x20)) - {0x09, 0x0A, 0x0C, 0x0D, 0x1B}
_NOT_CONTROL = bytes(b for b in range(256) if b not in _CONTROL)
REPLACEMENT_CHAR = "\ufffd"
BOM_CHAR = "\ufeff"


class _TooDeep(Exception):
    pass


@cache
def boilerplate_model() -> TreeEnsemble:
    return TreeEnsemble.load(BOILERPLATE_MODEL)


def minimal_html_of(html: str | HTMLTree, main_content: bool) -> str:
    return extract_plain_text(
        html,
        preserve_formatting="minimal_html",
        links=True,
        main_content=main_content,
        alt_texts=False,
        comments=False,
    )


def page_blocks_of(html: str | HTMLTree, main_content: bool = False) -> PageBlocks:
    """Every text block of the page (of its main content with ``main_content``), links marked."""
    return page_blocks(minimal_html_of(html, main_content))


def classifier_input(html: str | HTMLTree) -> tuple[PageBlocks, np.ndarray]:
    """The page's blocks and their features, whether resiliparse's main content keeps each
    block among them: the classifier keeps main_content's recall and adds its precision."""
    tree = html if isinstance(html, HTMLTree) else HTMLTree.parse(html)
    blocks = page_blocks_of(tree)
    main_content = block_texts(minimal_html_of(tree, main_content=True))
    return blocks, features(blocks, main_content)


def kept_text(blocks: PageBlocks, keep) -> str:
    """The kept blocks joined by a blank line, a ``<br>`` continuation by a line break."""
    continues = blocks.counts[:, COUNT_COLUMNS.index("continues_block")]
    parts: list[str] = []
    for text, kept, joined in zip(blocks.texts, keep, continues, strict=True):
        if kept:
            if parts:
                parts.append("\n" if joined else "\n\n")
            parts.append(text)
    return _tidy("".join(parts))


@dataclass(frozen=True)
class ExtractConfig:
    enabled: bool = True
    # resiliparse by default, with its blocks kept or dropped by a small boilerplate classifier
    # (transforms/data/boilerplate_trees.json) that reads resiliparse's main-content choice as
    # one of its features. On the held-out half of the six wceb benchmark datasets (987 pages;
    # docs/extraction.md) it scores F1 0.880 against trafilatura's 0.871 and main_content's
    # 0.849. resiliparse_classifier false gives main_content alone, faster and less precise.
    extractor: str = "resiliparse"
    resiliparse_classifier: bool = True
    # Probability of main text at which a block is kept: 0.4, the best of 0.2-0.6 in two-fold
    # cross-validation over the training pages only (`python -m benchmarks.train_extractor
    # --cross-validate`: F1 0.873/0.877/0.878/0.877/0.874).
    boilerplate_threshold: float = 0.4
    # 5 MiB: three times the largest real article page of the benchmark (1.49 MB; the median is
    # 115 KB); bigger bodies are data dumps or inlined media. It bounds one record's time: a
    # 5 MiB page of plain paragraphs takes 0.35 s with resiliparse main_content, 10 s with
    # trafilatura, 3.6 s with the default classifier (against 0.26 s for main_content, same run).
    max_body_bytes: int = 5 * 1024 * 1024
    binary_sample_bytes: int = 8192
    # Share of C0 control bytes in the first binary_sample_bytes: none in any benchmark page,
    # 8-13% in the same pages gzipped (27 of 256 byte values count).
    max_binary_ratio: float = 0.01
    # Share of U+FFFD in the extracted text; above it the bytes were not in the declared charset.
    max_replacement_ratio: float = 0.01
    min_text_chars: int = 1
    # Chromium's HTML parser stops nesting at 512 levels (kMaximumHTMLParserDOMTreeDepth: deeper
    # elements become siblings), so such a page does not render as written; the deepest
    # benchmark page is 52 levels.
    max_dom_depth: int = 512
    html_types: tuple[str, ...] = ("text/html", "application/xhtml+xml")
    plain_types: tuple[str, ...] = ("text/plain",)
    resiliparse_main_content: bool = True
    # Off, unlike resiliparse's defaults: image alt texts and comment sections are not the
    # page's prose, and leaving them out raised F1 from 0.898 to 0.927 on the benchmark.
    resiliparse_alt_texts: bool = False
    resiliparse_comments: bool = False
    trafilatura_favor_precision: bool = False
    # Skips trafilatura's fallback extractors (readability, jusText): faster, lower recall.
    trafilatura_fast: bool = False
    trafilatura_include_comments: bool = False
    trafilatura_include_tables: bool = True

    def __post_init__(self) -> None:
        if self.extractor not in EXTRACTORS:
            raise ValueError(f"extractor must be one of {EXTRACTORS}, got {self.extractor!r}")
        if not 0 < self.max_body_bytes < 2**31:
            raise ValueError(f"max_body_bytes must be in (0, 2**31), got {self.max_body_bytes}")
        if self.binary_sample_bytes < 1:
            raise ValueError(f"binary_sample_bytes must be >= 1, got {self.binary_sample_bytes}")
        for name in ("max_binary_ratio", "max_replacement_ratio"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {getattr(self, name)}")
        if not 0.0 <= self.boilerplate_threshold <= 1.0:
            raise ValueError(
                f"boilerplate_threshold must be in [0, 1], got {self.boilerplate_threshold}"
            )
        if self.min_text_chars < 1:
            raise ValueError(f"min_text_chars must be >= 1, got {self.min_text_chars}")
        if self.max_dom_depth < 1:
            raise ValueError(f"max_dom_depth must be >= 1, got {self.max_dom_depth}")


def parse_content_type(value: str | None) -> tuple[str, str | None]:
    """The lower-cased MIME type and the charset parameter (``None`` when absent)."""
    if not value:
        return "", None
    mime, _, params = value.partition(";")
    charset = None
    for param in params.split(";"):
        key, _, val = param.partition("=")
        if key.strip().lower() == "charset":
            charset = val.strip().strip("\"'") or None
    return mime.strip().lower(), charset


def control_byte_ratio(sample: bytes) -> float:
    if not sample:
        return 0.0
    return len(sample.translate(None, _NOT_CONTROL)) / len(sample)


def replacement_ratio(text: str) -> float:
    return text.count(REPLACEMENT_CHAR) / len(text) if text else 0.0


def _tidy(text: str) -> str:
    # A BOM after the first byte (pages assembled from files saved with one) reads as U+FEFF.
    return text.replace(BOM_CHAR, "").strip()


def declared_encoding(body: bytes, charset: str | None) -> tuple[str | None, int]:
    """The encoding named by a byte-order mark (with its length) or else by ``charset``.

    Names are Python codec names from the WHATWG label mapping (``iso-8859-1`` reads as
    ``cp1252``, as browsers do); an unknown label counts as none.
    """
    for bom, encoding in _BOMS:
        if body.startswith(bom):
            return encoding, len(bom)
    if charset:
        return map_encoding_to_html5(charset, fallback_utf8=False), 0
    return None, 0


class Extract(Stage):
    name = "extract"
    config_class = ExtractConfig
    reasons = (
        "too_large",
        "unsupported_content_type",
        "binary_content",
        "too_deep",
        "parse_error",
        "empty_text",
        "bad_encoding",
    )
    signal_rules = SignalRules(
        nullable=("html_bytes", "encoding"),
        ranges={"html_bytes": COUNT, "text_chars": COUNT, "replacement_char_ratio": FRACTION},
        value_sets={"extractor": ("none", "plain", "resiliparse", "trafilatura")},
    )
    signal_fields = (
        pa.field("extractor", pa.string()),
        pa.field("html_bytes", pa.int64()),
        pa.field("text_chars", pa.int32()),
        pa.field("encoding", pa.string()),
        pa.field("replacement_char_ratio", pa.float32()),
    )

    def __init__(self, config: ExtractConfig = ExtractConfig()):
        self.config = config
        # Matches an element with max_dom_depth element ancestors: lexbor evaluates it in C,
        # about 0.2 ms on a typical page.
        self._too_deep_selector = "*" + " > *" * config.max_dom_depth
        self._trafilatura_extract: Callable[..., str | None] | None = None

    def setup(self) -> None:
        if self.config.extractor == "resiliparse" and self.config.resiliparse_classifier:
            boilerplate_model()
        if self.config.extractor == "trafilatura":
            from trafilatura import extract  # slow to import: once per worker

            self._trafilatura_extract = extract

    def process_batch(self, records: list[Record]) -> list[Drop | None]:
        if self.config.extractor == "trafilatura" and self._trafilatura_extract is None:
            raise RuntimeError("Extract.setup() was not called")
        drops: list[Drop | None] = []
        for record in records:
            try:
                drops.append(self._process(record))
            except Exception as exc:  # noqa: BLE001 - see below
                # Handled here rather than by the wrapper's retry: ``body`` is gone from the
                # records already processed, so the batch cannot run again.
                drops.append(Drop("error", f"{type(exc).__name__}: {exc}"))
            finally:
                record.pop("body", None)
                record.pop("http_headers", None)  # read by the consent and licence stages
        return drops

    def _process(self, record: Record) -> Drop | None:
        body = record.get("body")
        text = record.get("text")
        if body is None and text is not None:
            record.update(
                extractor="none",
                html_bytes=None,
                text_chars=len(text),
                encoding=None,
                replacement_char_ratio=replacement_ratio(text),
            )
            return None

        config = self.config
        body = body or b""
        mime, charset = parse_content_type(record.get("content_type"))
        is_plain = mime in config.plain_types
        record.update(
            extractor="plain" if is_plain else config.extractor,
            html_bytes=len(body),
            text_chars=None,
            encoding=None,
            replacement_char_ratio=None,
        )
        if len(body) > config.max_body_bytes:
            return Drop("too_large", f"{len(body)} bytes > max_body_bytes {config.max_body_bytes}")
        if not is_plain and mime and mime not in config.html_types:
            return Drop("unsupported_content_type", mime)

        encoding, bom_length = declared_encoding(body, charset)
        # UTF-16 text is half NUL bytes: only a BOM or a declared charset can say so.
        if not (encoding or "").startswith("utf-16"):
            ratio = control_byte_ratio(body[: config.binary_sample_bytes])
            if ratio > config.max_binary_ratio:
                return Drop(
                    "binary_content", f"control bytes {ratio:.3f} > {config.max_binary_ratio}"
                )
        if encoding is None:
            encoding = detect_encoding(body, from_html_meta=not is_plain)
        decoded = body[bom_length:].decode(encoding, "replace")
        record["encoding"] = encoding

        # The boilerplate classifier may drop all of a mis-decoded page's text: its U+FFFD
        # share is then read from all of the page's text blocks.
        page_ratio = 0.0
        if is_plain:
            text = _tidy(decoded)
        else:
            try:
                text, page_ratio = self._extract_html(decoded)
            except _TooDeep:
                return Drop(
                    "too_deep", f"elements nested over max_dom_depth {config.max_dom_depth}"
                )
            except Exception as exc:  # noqa: BLE001 - lexbor, lxml, trafilatura raise many types
                return Drop("parse_error", f"{type(exc).__name__}: {exc}")

        ratio = max(replacement_ratio(text), page_ratio)
        record.update(text=text, text_chars=len(text), replacement_char_ratio=ratio)
        if ratio > config.max_replacement_ratio:
            return Drop(
                "bad_encoding",
                f"U+FFFD share {ratio:.3f} > {config.max_replacement_ratio} decoding as {encoding}",
            )
        if len(text) < config.min_text_chars:
            return Drop("empty_text", f"{len(text)} chars < min_text_chars {config.min_text_chars}")
        return None

    def _extract_html(self, html: str) -> tuple[str, float]:
        """The text, and the U+FFFD share of all the page's text blocks (0 without them)."""
        config = self.config
        tree = HTMLTree.parse(html)
        if tree.document is not None and tree.document.query_selector(self._too_deep_selector):
            raise _TooDeep
        if config.extractor == "resiliparse" and config.resiliparse_classifier:
            return self._main_text_blocks(tree)
        if config.extractor == "resiliparse":
            text = extract_plain_text(
                tree,
                preserve_formatting=True,
                main_content=config.resiliparse_main_content,
                alt_texts=config.resiliparse_alt_texts,
                comments=config.resiliparse_comments,
            )
            return _tidy(text), 0.0
        text = self._trafilatura_extract(
            html,
            favor_precision=config.trafilatura_favor_precision,
            include_comments=config.trafilatura_include_comments,
            include_tables=config.trafilatura_include_tables,
            fast=config.trafilatura_fast,
        )
        return _tidy(text or ""), 0.0

    def _main_text_blocks(self, tree: HTMLTree) -> tuple[str, float]:
        blocks, x = classifier_input(tree)
        page_ratio = replacement_ratio("".join(blocks.texts))
        if not blocks.texts:
            return "", page_ratio
        probabilities = boilerplate_model().predict_proba(x)
        return kept_text(blocks, probabilities >= self.config.boilerplate_threshold), page_ratio
