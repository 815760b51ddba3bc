"""Building blocks of genai-dataprep: readers, stages, dedup, sinks. One concept per module."""
