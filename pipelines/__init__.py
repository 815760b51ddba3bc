"""Beam jobs assembled from ``transforms``: one module per job, plus the CLI."""
