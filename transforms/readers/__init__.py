"""Readers: one file format per module, each a plain generator of ``(record, drop)`` pairs over
one file, and ``ReadInputs``, the Beam transform that matches inputs and runs the readers."""

from transforms.readers.read_config import ReadConfig
from transforms.readers.read_inputs import ReadInputs, read_file

__all__ = ["ReadConfig", "ReadInputs", "read_file"]
