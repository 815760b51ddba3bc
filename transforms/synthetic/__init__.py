"""Synthetic data: LLM-generated records that pass the same gates as crawled ones.

See ``docs/synthetic.md``. ``GenerateSynthetic`` is the Beam entry point; ``SyntheticConfig``
its config section; ``SyntheticReport`` the report's synthetic section.
"""

from transforms.synthetic.branch import SyntheticBranch, account_for, preflight
from transforms.synthetic.config import SyntheticConfig, add_synthetic_options, with_synthetic_options
from transforms.synthetic.generate import SIGNAL_FIELDS, STAGE, GenerateSynthetic, generate_once
from transforms.synthetic.report import SyntheticReport, load_synthetic_stats

__all__ = [
    "SIGNAL_FIELDS",
    "STAGE",
    "GenerateSynthetic",
    "SyntheticBranch",
    "SyntheticConfig",
    "SyntheticReport",
    "account_for",
    "add_synthetic_options",
    "generate_once",
    "load_synthetic_stats",
    "preflight",
    "with_synthetic_options",
]
