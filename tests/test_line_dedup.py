"""Line dedup on real text: gold article bodies of the article benchmark, wrapped in one real
page's navigation lines (resiliparse's full-page text minus its article), as a site's pages are."""

from __future__ import annotations

import apache_beam as beam
import pytest
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that, equal_to
from resiliparse.extract.html2text import extract_plain_text

from tests.conftest import aeb_pages
from transforms.line_dedup import LineDedup, LineDedupConfig, line_keys, remove_lines


@pytest.fixture(scope="module")
def site():
    pages = aeb_pages(limit=14)
    _, html, article = pages[0]
    full = extract_plain_text(html.decode("utf-8", errors="replace"), main_content=False)
    in_article = {line.strip() for line in article.splitlines()}
    nav = list(
        dict.fromkeys(line for line in full.splitlines() if line.strip() and line.strip() not in in_article)
    )[:15]
    articles = [body for _, _, body in pages[1:]]
    return nav, articles


def _docs(nav: list[str], articles: list[str]) -> list[dict]:
    docs = [
        {"id": f"p{i:02d}", "text": "\n".join(nav[:8]) + "\n" + body + "\n" + "\n".join(nav[8:])}
        for i, body in enumerate(articles)
    ]
    # A page that is nothing but the navigation plus one short line.
    docs.append({"id": "stub", "text": "\n".join(nav) + "\nSubscribe today."})
    return docs


def test_repeated_lines_removed_short_left_rejected(site):
    nav, articles = site
    docs = _docs(nav, articles)
    expected_lines = len(nav)
    with TestPipeline(runner="FnApiRunner") as p:
        out = p | beam.Create(docs) | LineDedup(LineDedupConfig(enabled=True, max_occurrences=10))
        assert_that(
            out.kept | beam.Map(lambda r: (r["id"], r["text"].strip(), r["dup_lines_removed"])),
            equal_to([(f"p{i:02d}", body.strip(), expected_lines) for i, body in enumerate(articles)]),
        )
        assert_that(
            out.rejected | beam.Map(lambda r: (r["id"], r["reject_reason"], r["text"])),
            equal_to([("stub", "line_dedup.too_short", "Subscribe today.")]),
            label="Rejected",
        )


def test_lines_under_the_limit_stay(site):
    nav, articles = site
    docs = _docs(nav, articles[:5])
    with TestPipeline(runner="FnApiRunner") as p:
        out = p | beam.Create(docs) | LineDedup(LineDedupConfig(enabled=True, max_occurrences=10))
        assert_that(
            out.kept | beam.Map(lambda r: (r["id"], r["dup_lines_removed"], r["dup_line_chars_removed"])),
            equal_to([(d["id"], 0, 0) for d in docs]),
        )
        assert_that(out.rejected, equal_to([]), label="NoneRejected")


def test_remove_lines_keeps_the_rest_verbatim():
    text = "Home\n  Menu \n\nA real paragraph.\r\nHome\n"
    keys = line_keys("Home\nMenu")
    assert remove_lines(text, keys) == ("\nA real paragraph.\r\n", 3, 12)
    assert line_keys(" \n\u3000\n") == set()


def test_config_is_validated():
    with pytest.raises(ValueError, match="max_occurrences"):
        LineDedupConfig(max_occurrences=0)
