"""Atheris (libFuzzer) target over the WARC reader and the HTML paths (extraction, img-alt pairs).

    python tests/fuzz/fuzz_warc_html.py -runs=2000 -seed=1 <corpus-folder>

Each input is read as a WARC/WET file (plain, or gzip/zstd when its bytes say so); every record
the reader keeps goes through ``Extract``, and the input itself is also extracted as an HTML
page and scanned for image-alt pairs. Handled outcomes (a record kept, a rejection with a
reason, a file quarantine) are fine; any exception is a crash and libFuzzer stops with the input.
Only our own modules are instrumented (the C parsers underneath are exercised, not traced).
"""

import os
import sys
import tempfile

# Heavy dependencies first, uninstrumented: coverage feedback is for our code.
import apache_beam  # noqa: F401
import atheris
import fastwarc  # noqa: F401
import lxml.html  # noqa: F401
import resiliparse.extract.html2text  # noqa: F401

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", ".."))
with atheris.instrument_imports(include=["transforms"]):
    from transforms.extract import Extract, ExtractConfig
    from transforms.images.html_alt import img_alt_pairs
    from transforms.readers.base import new_record
    from transforms.readers.read_config import ReadConfig
    from transforms.readers.warc import read_warc

EXTRACT = Extract(ExtractConfig(max_dom_depth=64))
CONFIG = ReadConfig(max_record_bytes=1 << 20)
PATH = os.path.join(tempfile.mkdtemp(prefix="atheris-"), "input.warc")


def _check(stage_records):
    drops = EXTRACT.process_batch(stage_records)
    for drop in drops:
        # "error" is Extract catching an exception of its own: a bug, not an outcome.
        if drop is not None and drop.reason == "error":
            raise RuntimeError(f"extract raised: {drop.detail}")


def test_one_input(data: bytes) -> None:
    with open(PATH, "wb") as handle:
        handle.write(data)
    kept = [record for record, drop in read_warc(PATH, CONFIG) if drop is None]
    _check([r for r in kept if "body" in r or r.get("text") is not None])
    page = new_record(PATH, "page", url="http://fuzz.test/a/b.html", content_type="text/html")
    page["body"] = data
    _check([page])
    for url, alt in img_alt_pairs(data, "http://fuzz.test/a/b.html"):
        if not url.startswith(("http://", "https://")) or not alt:
            raise RuntimeError(f"bad pair {url!r} {alt!r}")


if __name__ == "__main__":
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()
