"""Where the default extractor's time goes, step by step, on the held-out wceb pages.

``benchmarks/extraction_quality.py`` times whole variants; this splits the default (resiliparse
blocks + boilerplate classifier) into its steps, each timed over every page and reported as
the best of ``--repeat`` passes, beside the steps of ``resiliparse_classifier: false``
(main_content alone), in the same process. Times are this process's CPU time
(``time.process_time``), so that other processes on a shared machine inflate them less than
wall time (caches and frequency still move them: compare ratios within one run). It then prints what the steps imply: the pages/s
that the C steps alone allow (parse, depth check, resiliparse's extractions), with both
extractions and with only the full-page one, so a speed target can be checked against the
floor that no Python change can move.

    python -m benchmarks.extraction_profile [--repeat 3] [--limit 0] [--wceb DIR]
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from pathlib import Path

from resiliparse.extract.html2text import extract_plain_text
from resiliparse.parse.html import HTMLTree

from benchmarks.extraction_quality import load_held_out
from benchmarks.wceb import DEFAULT_DATA
from transforms.extract import Extract, boilerplate_model, kept_text, minimal_html_of
from transforms.text_blocks import block_texts, features, page_blocks

# The steps of the default, in order; C marks resiliparse's (lexbor's) work.
STEPS = (
    ("parse (C)", "tree"),
    ("depth check (C)", None),
    ("full-page extraction (C)", "full"),
    ("main-content extraction (C)", "main"),
    ("page_blocks (Python)", "blocks"),
    ("block_texts (Python)", "main_texts"),
    ("features (numpy)", "x"),
    ("trees (numpy)", "probabilities"),
    ("kept_text (Python)", None),
)


def _steps(stage: Extract, threshold: float) -> dict[str, Callable[[dict], object]]:
    model = boilerplate_model()
    selector = stage._too_deep_selector
    return {
        "parse (C)": lambda s: HTMLTree.parse(s["html"]),
        "depth check (C)": lambda s: s["tree"].document.query_selector(selector),
        "full-page extraction (C)": lambda s: minimal_html_of(s["tree"], main_content=False),
        "main-content extraction (C)": lambda s: minimal_html_of(s["tree"], main_content=True),
        "page_blocks (Python)": lambda s: page_blocks(s["full"]),
        "block_texts (Python)": lambda s: block_texts(s["main"]),
        "features (numpy)": lambda s: features(s["blocks"], s["main_texts"]),
        "trees (numpy)": lambda s: model.predict_proba(s["x"]),
        "kept_text (Python)": lambda s: kept_text(s["blocks"], s["probabilities"] >= threshold),
    }


def profile(htmls: list[str], repeat: int) -> tuple[dict[str, float], float]:
    """Seconds per step over all pages (best of ``repeat`` passes), and main_content's
    extraction as ``resiliparse_classifier: false`` runs it, on the same trees."""
    stage = Extract()
    steps = _steps(stage, stage.config.boilerplate_threshold)
    best = {name: float("inf") for name, _ in STEPS}
    main_content_alone = float("inf")
    for _ in range(repeat):
        spent = dict.fromkeys(best, 0.0)
        trees = []
        for html in htmls:
            state = {"html": html}
            for name, key in STEPS:
                started = time.process_time()
                value = steps[name](state)
                spent[name] += time.process_time() - started
                if key:
                    state[key] = value
            trees.append(state["tree"])
        best = {name: min(best[name], spent[name]) for name in best}
        started = time.process_time()
        for tree in trees:
            extract_plain_text(
                tree, preserve_formatting=True, main_content=True, alt_texts=False, comments=False
            )
        main_content_alone = min(main_content_alone, time.process_time() - started)
    return best, main_content_alone


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--wceb", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--repeat", type=int, default=3, help="passes; each step's best counts")
    parser.add_argument(
        "--limit", type=int, default=0, help="every k-th page so that at most this many (0: all)"
    )
    args = parser.parse_args()

    htmls = [b.decode("utf-8") for pages, _ in load_held_out(args.wceb).values() for b in pages.values()]
    if args.limit and len(htmls) > args.limit:
        htmls = htmls[:: -(-len(htmls) // args.limit)]
    n = len(htmls)
    best, main_content_alone = profile(htmls, args.repeat)
    total = sum(best.values())
    print(f"{n} held-out wceb pages, best of {args.repeat} passes per step, one process")
    print(f"{'step':<30} {'ms/page':>8} {'share':>6}")
    for name, _ in STEPS:
        print(f"{name:<30} {1000 * best[name] / n:>8.3f} {best[name] / total:>6.1%}")
    print(f"{'all steps':<30} {1000 * total / n:>8.3f}  -> {n / total:.1f} pages/s")

    c_both = sum(best[name] for name, _ in STEPS if name.endswith("(C)"))
    c_full = c_both - best["main-content extraction (C)"]
    main_only = best["parse (C)"] + best["depth check (C)"] + main_content_alone
    print("\npages/s that the C steps alone allow (no Python at all):")
    print(f"  parse + depth + both extractions (the default's floor): {n / c_both:.1f}")
    print(f"  parse + depth + full-page extraction only:              {n / c_full:.1f}")
    print(f"  resiliparse main_content (parse + depth + extraction):  {n / main_only:.1f}")
    print(
        f"ratios to main_content alone, same run: default {main_only / total:.2f}, "
        f"its C floor {main_only / c_both:.2f}, full-page-only C floor {main_only / c_full:.2f}"
    )


if __name__ == "__main__":
    main()
