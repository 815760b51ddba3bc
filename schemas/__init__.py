"""pyarrow schemas of the records at each stage (and, later, their validation suites)."""
