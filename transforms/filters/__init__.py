"""Filters: one per file, each a ``transforms.stage.Filter`` with its frozen config beside it."""
