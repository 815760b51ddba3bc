"""Takedown: records a blocklist names (URL, URL prefix, domain, id, image sha256/pHash) never
reach ``data/``. First in the text job, so a listed page costs nothing more; in the images job
after decode, where the image's hashes exist. A listed record is accounted for in ``rejected/``
(id, URL, reason) without its content: text, body, caption and image are cleared. ``dataprep retract`` applies the same file to runs
already published (``pipelines/retract.py``).
"""

from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa

from transforms.consent.blocklist import KINDS as TAKEDOWN_KINDS
from transforms.consent.blocklist import Blocklist, load_blocklist
from transforms.stage import Drop, Filter, Record, SignalRules


@dataclass(frozen=True)
class TakedownConfig:
    enabled: bool = True
    blocklist_path: str | None = None  # None: nothing listed (the stage keeps everything)
    # 0: the listed image's pHash exactly. Raise it to catch re-encodes (the images job's
    # near dedup uses 10 of 64 bits, imagededup's default).
    phash_max_distance: int = 0


class TakedownFilter(Filter):
    name = "takedown"
    config_class = TakedownConfig
    reasons = TAKEDOWN_KINDS
    signal_rules = SignalRules(must_be_null=("takedown_match",))
    signal_fields = (pa.field("takedown_match", pa.string()),)

    def __init__(self, config: TakedownConfig = TakedownConfig()):
        self.config = config
        self._blocklist = Blocklist()

    def setup(self) -> None:
        if self.config.blocklist_path:
            self._blocklist = load_blocklist(self.config.blocklist_path, self.config.phash_max_distance)

    def score(self, record: Record) -> Record:
        match = self._blocklist.match(record) if len(self._blocklist) else None
        return {"takedown_match": None if match is None else f"{match[0]}: {match[1]}"}

    def decide(self, record: Record) -> Drop | None:
        if record["takedown_match"] is None:
            return None
        kind, detail = record["takedown_match"].split(": ", 1)
        return Drop(kind, detail)

    def process_batch(self, records: list[Record]) -> list[Drop | None]:
        drops = super().process_batch(records)
        for record, drop in zip(records, drops, strict=True):
            if drop is not None:  # accounted for in rejected/, its content not kept
                for content in ("text", "body", "caption", "image"):
                    if content in record:
                        record[content] = None
        return drops
