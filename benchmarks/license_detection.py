"""Licence detection measured on real pages: precision and recall of ``find_license``.

Pages: the shared Common Crawl WARC's HTML responses, the 181 article-benchmark pages and the
Web Content Extraction Benchmark's 1,990 pages (blogs, news, portals), all by their relative
path ``../shared/data``. Labels (``benchmarks/data/license_labels.json``, written by hand
from the page itself: the licence the page states for its own content, ``null`` when a mention
is not one, e.g. a photo credit or a software licence discussed in the text) cover every page
whose HTML mentions a licence in one of the forms below; a page without any such mention is
taken to state none.

    python -m benchmarks.license_detection [--no-plain-cc-links]   # precision / recall per corpus
    python -m benchmarks.license_detection --candidates > candidates.jsonl   # to label

Precision: detections whose SPDX id equals the label, over all detections with an id.
Recall: pages whose label is a licence and whose detection equals it, over labelled licences.
"""

from __future__ import annotations

import argparse
import gzip
import json
import re
from collections.abc import Iterator
from pathlib import Path

from fastwarc.warc import ArchiveIterator, WarcRecordType

from transforms.consent.licenses import find_license

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
LABELS = Path(__file__).resolve().parent / "data" / "license_labels.json"
MENTION = re.compile(
    rb"creativecommons\.org/(?:licenses|publicdomain)|rel=[\"']?[^\"'>]*\blicense|creative\s+commons|"
    rb"licen[cs]ed\s+under|gnu\s+free\s+documentation|\"license\"\s*:|name=[\"']?(?:dcterms\.)?licen[cs]e",
    re.IGNORECASE,
)


def pages() -> Iterator[tuple[str, str, bytes]]:
    """(corpus, page id, HTML) of every real page."""
    with open(DATA / "cc-warc-resiliparse" / "warcfile.warc.gz", "rb") as handle:
        for record in ArchiveIterator(handle, record_types=WarcRecordType.response, parse_http=True):
            yield "cc-warc", record.headers.get("WARC-Record-ID"), record.reader.read()
    gold = json.loads((DATA / "scrapinghub-aeb" / "ground-truth.json").read_text())
    for sha in sorted(gold):
        yield "aeb", sha, gzip.decompress((DATA / "scrapinghub-aeb" / "html" / f"{sha}.html.gz").read_bytes())
    for path in sorted((DATA / "wceb").glob("*.jsonl.gz")):
        if path.name.startswith("scrapinghub"):
            continue  # the same 181 pages as the article benchmark
        with gzip.open(path, "rt", encoding="utf-8") as lines:
            for line in lines:
                row = json.loads(line)
                yield f"wceb-{row['dataset']}", row["id"], row["html"].encode("utf-8", "surrogatepass")


def candidates() -> None:
    """Every page that mentions a licence, with the detection and the mentions' context."""
    for corpus, page_id, html in pages():
        mentions = [m.start() for m in MENTION.finditer(html)]
        if not mentions:
            continue
        found = find_license(None, html)
        print(json.dumps({
            "corpus": corpus, "id": page_id,
            "detected": found and {"spdx": found.spdx, "form": found.form, "value": found.value},
            "context": [html[max(0, at - 160): at + 200].decode("utf-8", "replace") for at in mentions[:6]],
        }))


def measure(plain_cc_links: bool) -> None:
    labels = json.loads(LABELS.read_text())
    totals: dict[str, dict[str, int]] = {}
    forms: dict[str, list[int]] = {}  # form -> [detections, correct]
    for corpus, page_id, html in pages():
        found = find_license(None, html, plain_cc_links)
        detected = found.spdx if found else None
        key = f"{corpus}/{page_id}"
        if MENTION.search(html) and key not in labels:
            raise SystemExit(f"{key} mentions a licence but has no label: label it first")
        label = labels.get(key)
        if detected is not None:
            tally = forms.setdefault(found.form, [0, 0])
            tally[0] += 1
            tally[1] += detected == label
        row = totals.setdefault(corpus, {"pages": 0, "labelled": 0, "detected": 0, "correct": 0, "found": 0})
        row["pages"] += 1
        row["labelled"] += label is not None
        row["detected"] += detected is not None
        row["correct"] += detected is not None and detected == label
        row["found"] += label is not None and detected == label
    everything = {k: sum(r[k] for r in totals.values()) for k in ("pages", "labelled", "detected", "correct", "found")}
    print(f"{'corpus':<24}{'pages':>7}{'licensed':>9}{'detected':>9}{'precision':>10}{'recall':>8}")
    for corpus, r in sorted(totals.items()) + [("all", everything)]:
        precision = r["correct"] / r["detected"] if r["detected"] else float("nan")
        recall = r["found"] / r["labelled"] if r["labelled"] else float("nan")
        print(f"{corpus:<24}{r['pages']:>7}{r['labelled']:>9}{r['detected']:>9}{precision:>10.3f}{recall:>8.3f}")
    print("\nby the form that decided: detections, precision")
    for form, (n, correct) in sorted(forms.items()):
        print(f"{form:<24}{n:>7}{correct / n:>10.3f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--candidates", action="store_true", help="print the pages to label, as JSONL")
    parser.add_argument("--no-plain-cc-links", action="store_true", help="license.plain_cc_links: false")
    args = parser.parse_args()
    candidates() if args.candidates else measure(not args.no_plain_cc_links)


if __name__ == "__main__":
    main()
