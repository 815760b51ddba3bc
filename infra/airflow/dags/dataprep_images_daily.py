"""The Airflow DAG ``dataprep_images_daily``: one day of image-caption pairs into ``<output>/dt=<ds>/``.

Calls ``dataprep run images``; until that job exists in the installed dataprep its ``run`` task
fails at once (dataprep exits 2 on an unknown job). See ``dataprep_common.py``.
"""

from dataprep_common import daily_dag

dag = daily_dag(
    "images",
    "dataprep_images_daily",
    doc_md="""
Cleans one day of image-caption pairs with `dataprep run images`: input from the `input_template`
param (`DATAPREP_IMAGES_INPUT_TEMPLATE`), output `$DATAPREP_IMAGES_OUTPUT/dt={{ ds }}/`. Chain:
run → validate (the gate) → publish_dedup_index → publish (Asset `dataprep_images`, partition
key = ds). Operations: docs/operations.md.
""",
)
