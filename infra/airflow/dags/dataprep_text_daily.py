"""The Airflow DAG ``dataprep_text_daily``: one day of web text into ``<output>/dt=<ds>/``.

See ``dataprep_common.py`` for the task chain and the settings, docs/operations.md for running it.
"""

from dataprep_common import daily_dag

dag = daily_dag(
    "text",
    "dataprep_text_daily",
    doc_md="""
Cleans one day of web text with `dataprep run text`: input from the `input_template` param
(`DATAPREP_TEXT_INPUT_TEMPLATE`, e.g. `s3://bucket/raw/{{ ds }}/*.warc.gz`), output
`$DATAPREP_TEXT_OUTPUT/dt={{ ds }}/`. Chain: run → validate (the gate) → publish_dedup_index →
publish (Asset `dataprep_text`, partition key = ds). Rerunning a date replaces its partition.
Operations: docs/operations.md.
""",
)
