"""A page's text blocks and their features, for the boilerplate classifier of ``extract``.

resiliparse's extraction with ``preserve_formatting="minimal_html"`` and ``links=True`` writes
each text block (paragraph, heading, list item, preformatted text, loose text) on its own
line(s) with its links still marked. That, and the same output with ``main_content=True``
(read by ``block_texts``: which blocks resiliparse's own heuristics keep), is all of the DOM
the classifier needs, at the cost of two C calls. ``page_blocks`` reads the lines in one pass
with C-level string operations only (the per-page Python budget at 250 pages/s is a few
microseconds per block), and ``features`` derives the model's inputs, neighbours included,
with numpy.
"""

from __future__ import annotations

import html
import re
from collections import Counter
from dataclasses import dataclass

import numpy as np

_TAG = re.compile(r"<[^>]*>")
_LINK_TEXT = re.compile(r"<a\b[^>]*>([^<]*)")
_PUNCT = re.compile(r"[.,;:!?]")
_DIGIT = re.compile(r"[0-9]")  # ASCII digits only, as str.isdigit is not
_SENTENCE_END = frozenset('.!?:;"”’\')»…')
# The "tag" count: 0 text outside p, h1-h6, li and pre; 1 p, 2 heading, 3 li, 4 pre.
_TAGS = {"<p": 1, "<h": 2, "<li": 3, "<pr": 4}
# Words of navigation, sharing, legal and teaser widgets; lower case, whole words.
_BOILERPLATE_WORDS = frozenset(
    "advertisement advertise copyright reserved cookie cookies privacy subscribe newsletter "
    "login log sign share tweet facebook twitter pinterest linkedin whatsapp email print "
    "comment comments reply related recommended popular trending tags tagged posted "
    "updated published photo image getty credit follow menu search home next previous "
    "prev more read skip terms contact sponsored".split()
)
# The commonest function words of English, German, French, Spanish, Italian, Dutch and
# Portuguese: running prose is about half function words, menus and bylines are not.
_STOP_WORDS = frozenset(
    "the of and to a in is that it for was on are as with be by at this have from or an "
    "not but which were they their has had been we you he she his her its would there will "
    "can all if so than them who what when one also into more our your about these may "
    "der die das und ist den zu von mit sich des auf für nicht ein eine als auch es "
    "le la les de et un une est du des en que qui dans pour pas sur au il elle ce sont "
    "el los las y por con para una su se lo como más pero sus del al "
    "di che e non per sono della gli nel het een van ik te dat op je zijn "
    "o os um uma do da em não com".split()
)
# Columns of PageBlocks.counts, one row per block.
COUNT_COLUMNS = (
    "chars",
    "words",
    "link_chars",
    "links",
    "tag",
    "list_depth",
    "continues_block",
    "sentence_end",
    "punctuation",
    "digits",
    "capitalised",
    "stop_words",
    "boilerplate_words",
)


@dataclass(frozen=True)
class PageBlocks:
    texts: list[str]
    counts: np.ndarray  # float64, (blocks, len(COUNT_COLUMNS))


def page_blocks(minimal_html: str) -> PageBlocks:
    """The non-empty lines of resiliparse's minimal-HTML output, with their counts."""
    texts: list[str] = []
    rows: list[tuple] = []
    tag = 0
    depth = 0
    for line in minimal_html.split("\n"):
        line = line.strip()
        if not line:
            continue
        continues = 0
        if line[0] == "<":
            head = line[:3]
            if head in ("<ul", "<ol"):
                depth += 1
                continue
            if head in ("</u", "</o"):
                depth = max(0, depth - 1)
                continue
            opened = _TAGS.get(head) or _TAGS.get(line[:2])
            if opened and head != "<a " and head != "<br":
                tag = opened
            else:
                continues = int(tag != 0)
        else:
            continues = int(tag != 0)
        if "<" in line:
            link_texts = _LINK_TEXT.findall(line) if "<a" in line else ()
            text = _TAG.sub("", line)
        else:
            link_texts = ()
            text = line
        if "&" in text:
            text = html.unescape(text)
        words = text.split()
        if words:
            text = " ".join(words)
            lower = text.lower().split()
            n_chars = len(text)
            link_chars = sum(map(len, link_texts))
            texts.append(text)
            rows.append(
                (
                    n_chars,
                    len(words),
                    min(link_chars, n_chars),
                    len(link_texts),
                    tag,
                    depth,
                    continues,
                    text[-1] in _SENTENCE_END,
                    len(_PUNCT.findall(text)),
                    len(_DIGIT.findall(text)),
                    sum(map(str.istitle, words)),
                    sum(map(_STOP_WORDS.__contains__, lower)),
                    not _BOILERPLATE_WORDS.isdisjoint(lower),
                )
            )
        if tag and (line.endswith(("</p>", "</li>", "</pre>")) or line[-5:-2] == "</h"):
            tag = 0
    counts = np.array(rows, dtype=np.float64).reshape(-1, len(COUNT_COLUMNS))
    return PageBlocks(texts, counts)


_TAG_IN_LINE = re.compile(r"<[^>\n]*>")


def block_texts(minimal_html: str) -> frozenset[str]:
    """The texts of ``page_blocks`` (and at most the empty string besides), without counts."""
    text = _TAG_IN_LINE.sub("", minimal_html)
    if "&" in text:
        text = html.unescape(text)
    return frozenset(" ".join(line.split()) for line in text.split("\n"))


FEATURE_NAMES = (
    "log_words",
    "log_chars",
    "link_ratio",
    "log_links",
    "tag",
    "in_list",
    "continues_block",
    "sentence_end",
    "punctuation_per_word",
    "digit_ratio",
    "capitalised_ratio",
    "stop_word_ratio",
    "boilerplate_words",
    "mean_word_length",
    "repeated",
    "position",
    "words_before_share",
    "words_after_share",
    "page_log_words",
    "page_link_ratio",
    "prev_log_words",
    "next_log_words",
    "prev_link_ratio",
    "next_link_ratio",
    "prev_stop_word_ratio",
    "next_stop_word_ratio",
    "window_link_ratio",
    "window_log_words",
    "window_stop_word_ratio",
    "prev_tag",
    "next_tag",
    "page_log_blocks",
    "words_share_of_longest",
    "in_main_content",
    "window_in_main_content",
)


_COLUMN = {name: index for index, name in enumerate(FEATURE_NAMES)}


def _set_neighbours(x: np.ndarray, name: str, values: np.ndarray, fill: float) -> None:
    """Columns ``prev_<name>`` and ``next_<name>``: the previous / next block's value, ``fill``
    at the page's ends."""
    previous, following = x[:, _COLUMN[f"prev_{name}"]], x[:, _COLUMN[f"next_{name}"]]
    previous[0] = fill
    previous[1:] = values[:-1]
    following[-1] = fill
    following[:-1] = values[1:]


def _window_means(values: np.ndarray, radius: int = 2) -> np.ndarray:
    """Column by column, each row's mean over the rows within ``radius`` of it."""
    n = len(values)
    sums = np.zeros((n + 1, values.shape[1]))
    np.cumsum(values, axis=0, out=sums[1:])
    rows = np.arange(n)
    low = np.maximum(rows - radius, 0)
    high = np.minimum(rows + radius + 1, n)
    return (sums[high] - sums[low]) / (high - low)[:, None]


def features(page: PageBlocks, main_content: frozenset[str]) -> np.ndarray:
    """One row per block, columns in FEATURE_NAMES order; ``main_content`` holds the texts of
    the blocks that resiliparse's main-content heuristics keep."""
    c = page.counts
    n = len(c)
    x = np.empty((n, len(FEATURE_NAMES)))
    if n == 0:
        return x
    chars, words = c[:, 0], c[:, 1]
    link_ratio = c[:, 2] / chars
    stop_ratio = c[:, 11] / words
    log_words = np.log1p(words)
    total_words = words.sum()
    before = np.cumsum(words) - words
    counts = Counter(page.texts)
    repeated = np.fromiter((counts[t] > 1 for t in page.texts), dtype=np.float64, count=n)
    in_main = np.fromiter(map(main_content.__contains__, page.texts), dtype=np.float64, count=n)
    column = _COLUMN
    x[:, column["log_words"]] = log_words
    x[:, column["log_chars"]] = np.log1p(chars)
    x[:, column["link_ratio"]] = link_ratio
    x[:, column["log_links"]] = np.log1p(c[:, 3])
    x[:, column["tag"]] = c[:, 4]
    x[:, column["in_list"]] = c[:, 5] > 0
    x[:, column["continues_block"]] = c[:, 6]
    x[:, column["sentence_end"]] = c[:, 7]
    x[:, column["punctuation_per_word"]] = c[:, 8] / words
    x[:, column["digit_ratio"]] = c[:, 9] / chars
    x[:, column["capitalised_ratio"]] = c[:, 10] / words
    x[:, column["stop_word_ratio"]] = stop_ratio
    x[:, column["boilerplate_words"]] = c[:, 12]
    x[:, column["mean_word_length"]] = (chars - words + 1) / words
    x[:, column["repeated"]] = repeated
    x[:, column["position"]] = np.arange(n) / n
    x[:, column["words_before_share"]] = before / total_words
    x[:, column["words_after_share"]] = (total_words - before - words) / total_words
    x[:, column["page_log_words"]] = np.log1p(total_words)
    x[:, column["page_link_ratio"]] = c[:, 2].sum() / chars.sum()
    _set_neighbours(x, "log_words", log_words, 0.0)
    _set_neighbours(x, "link_ratio", link_ratio, 1.0)
    _set_neighbours(x, "stop_word_ratio", stop_ratio, 0.0)
    _set_neighbours(x, "tag", c[:, 4], -1.0)
    windows = _window_means(np.column_stack((link_ratio, log_words, stop_ratio, in_main)))
    x[:, column["window_link_ratio"]] = windows[:, 0]
    x[:, column["window_log_words"]] = windows[:, 1]
    x[:, column["window_stop_word_ratio"]] = windows[:, 2]
    x[:, column["window_in_main_content"]] = windows[:, 3]
    x[:, column["page_log_blocks"]] = np.log1p(n)
    x[:, column["words_share_of_longest"]] = words / words.max()
    x[:, column["in_main_content"]] = in_main
    return x
