"""Licence: each page's stated licence as a column, and optionally only listed licences kept.

Reads the ``Link`` header and the HTML (``transforms/consent/licenses.py``), so it runs before
extraction; records without HTML (JSONL, Parquet, WET) get no licence. ``license`` is an SPDX id
(or ``LicenseRef-``) or null; ``license_form`` says where it was stated and ``license_value``
what was stated. Keeps every record unless ``keep_only`` lists licences.
"""

from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa

from transforms.consent.licenses import FORMS as LICENSE_FORMS
from transforms.consent.licenses import find_license
from transforms.consent.signals import HTTP_HEADERS
from transforms.filters.consent import is_html
from transforms.stage import Drop, Filter, Record, SignalRules


@dataclass(frozen=True)
class LicenseConfig:
    enabled: bool = True
    # SPDX ids to keep (e.g. CC-BY-4.0, CC0-1.0); empty keeps every record, licensed or not.
    keep_only: tuple[str, ...] = ()
    # A plain link to a CC licence (no rel="license") names the page's licence in most pages
    # but is also how photo credits are written: measured precision of this form in
    # docs/consent.md. False reads only the explicit forms.
    plain_cc_links: bool = True


class LicenseFilter(Filter):
    name = "license"
    config_class = LicenseConfig
    reasons = ("unlicensed", "not_listed")
    signal_rules = SignalRules(
        nullable=("license", "license_form", "license_value"), value_sets={"license_form": LICENSE_FORMS}
    )
    signal_fields = (
        pa.field("license", pa.string()),
        pa.field("license_form", pa.string()),
        pa.field("license_value", pa.string()),
    )

    def __init__(self, config: LicenseConfig = LicenseConfig()):
        self.config = config

    def score(self, record: Record) -> Record:
        if "license_form" in record:  # an image pair: its page's licence, found by the reader
            return {k: record[k] for k in ("license", "license_form", "license_value")}
        body = record.get("body") if is_html(record.get("content_type")) else None
        found = find_license(record.get(HTTP_HEADERS), body, self.config.plain_cc_links)
        if found is None:
            return {"license": None, "license_form": None, "license_value": None}
        return {"license": found.spdx, "license_form": found.form, "license_value": found.value}

    def decide(self, record: Record) -> Drop | None:
        if not self.config.keep_only or record["license"] in self.config.keep_only:
            return None
        if record["license"] is None:
            return Drop("unlicensed", record["license_value"] or "no licence stated")
        return Drop("not_listed", record["license"])
