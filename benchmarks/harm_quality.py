"""Precision and recall of the text harm filter (``transforms/filters/harm.py``) on HateCheck.

Data: ``benchmarks/data/hatecheck_sample.tsv``, 290 HateCheck templates (Röttger et al., 2021;
MIT) from 21 of its 29 functional tests, expanded over HateCheck's own placeholder values
(7 protected groups, 18 slurs) into 1,325 short labelled cases, 904 hateful. Each case is one
``HarmFilter`` record (one chunk: the score is the model's own probability).

Two views, per threshold on ``toxicity_score``:

- ``gold``: HateCheck's labels as they are (hateful vs non-hateful);
- ``hate vs benign``: without HateCheck's non-hateful *abuse* (``profanity_nh``,
  ``target_obj_nh``, ``target_indiv_nh``, ``target_group_nh``: swearing and insults aimed at
  no protected group), which an offensive-language filter is meant to drop. Its negatives are
  neutral or positive mentions of groups, counter-speech and negated hate.

Also the share of each functional test that drops at the configured threshold.

    python -m benchmarks.harm_quality
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

DATA = Path(__file__).resolve().parent / "data" / "hatecheck_sample.tsv"
PLACEHOLDERS = {  # HateCheck's template_placeholders.csv
    "[IDENTITY_S]": "woman, trans person, gay person, black person, disabled person, Muslim, immigrant",
    "[IDENTITY_P]": "women, trans people, gay people, black people, disabled people, Muslims, immigrants",
    "[IDENTITY_A]": "female, trans, gay, black, disabled, Muslim, immigrant",
    "[SLUR_S]": "bitch, slut, whore, tranny, shemale, faggot, fag, queer, nigger, coon, retard, cripple, "
    "mong, muzzie, Jihadi, camel fucker, wetback, rapefugee",
    "[SLUR_P]": "bitches, sluts, whores, trannies, shemales, faggots, fags, queer, niggers, coons, retards, "
    "cripples, mongs, muzzies, Jihadis, camel fuckers, wetbacks, rapefugees",
}
ABUSE_NOT_HATE = {"profanity_nh", "target_obj_nh", "target_indiv_nh", "target_group_nh"}
THRESHOLDS = [round(0.3 + 0.05 * i, 2) for i in range(14)]


def expand(template: str) -> list[str]:
    """One case per placeholder value (identities in step: S, P and A of one group together)."""
    used = [p for p in PLACEHOLDERS if p in template]
    if not used:
        return [template]
    values = [PLACEHOLDERS[p].split(", ") for p in used]
    cases = []
    for row in zip(*values, strict=True):
        case = template
        for placeholder, value in zip(used, row, strict=True):
            case = case.replace(placeholder, value)
        cases.append(case.replace(" a immigrant", " an immigrant").replace("A immigrant", "An immigrant"))
    return cases


def load_cases() -> list[tuple[str, bool, str]]:
    lines = [line for line in DATA.read_text(encoding="utf-8").splitlines() if not line.startswith("#")]
    cases = []
    for line in lines[1:]:
        functionality, label, template = line.split("\t")
        cases += [(functionality, label == "hateful", case) for case in expand(template)]
    return cases


def precision_recall(scores: list[float], hateful: list[bool], threshold: float) -> dict:
    dropped = [s > threshold for s in scores]
    tp = sum(d and h for d, h in zip(dropped, hateful, strict=True))
    drops, positives = sum(dropped), sum(hateful)
    precision, recall = tp / drops if drops else 0.0, tp / positives
    f1 = 2 * precision * recall / (precision + recall) if tp else 0.0
    return {"threshold": threshold, "precision": round(precision, 3), "recall": round(recall, 3),
            "f1": round(f1, 3), "dropped": drops}


def main() -> None:
    from transforms.filters.harm import HarmFilter

    stage = HarmFilter()
    stage.setup()
    cases = load_cases()
    scores = [s["toxicity_score"] for s in stage.score_batch([{"text": text} for _, _, text in cases])]
    hateful = [h for _, h, _ in cases]
    benign = [i for i, (f, _, _) in enumerate(cases) if f not in ABUSE_NOT_HATE]
    per_test: dict[str, list[bool]] = defaultdict(list)
    for (functionality, _, _), score in zip(cases, scores, strict=True):
        per_test[functionality].append(score > stage.config.max_toxicity)
    print(json.dumps({
        "cases": len(cases), "hateful": sum(hateful), "configured_max_toxicity": stage.config.max_toxicity,
        "gold": [precision_recall(scores, hateful, t) for t in THRESHOLDS],
        "hate_vs_benign": [
            precision_recall([scores[i] for i in benign], [hateful[i] for i in benign], t) for t in THRESHOLDS
        ],
        "dropped_share_per_test": {f: round(sum(d) / len(d), 2) for f, d in sorted(per_test.items())},
    }, indent=1))


if __name__ == "__main__":
    main()
