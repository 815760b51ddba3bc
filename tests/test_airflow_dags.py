"""The daily Airflow DAGs, for real: Airflow 3 in its own venv, ``airflow dags test`` against moto's S3.

The venv comes from ``infra/airflow/setup_venv.sh`` (a no-op once built); if it cannot be built
these tests fail, they are never skipped. The DAGs call the ``dataprep`` of the venv that runs
pytest, with the in-process runner. The gate's own checks (``check_partition.py``) are tested on a
local run folder in ``test_airflow_gate.py``.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import threading
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from conftest import SHARED_DATA, aeb_pages, assert_conserved, write_warc

REPO = Path(__file__).resolve().parents[1]
AIRFLOW_DIR = REPO / "infra" / "airflow"
DAGS = AIRFLOW_DIR / "dags"
DATAPREP = Path(sys.executable).parent / "dataprep"
CC_WARC = SHARED_DATA / "cc-warc-resiliparse" / "warcfile.warc.gz"
DATE = "2024-01-02"
DAGS_TEST_TIMEOUT = 600

pytestmark = pytest.mark.slow


# --- Airflow ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def airflow_bin() -> Path:
    """Airflow's venv, built by the script the test command also calls (a no-op once built)."""
    result = subprocess.run(
        [str(AIRFLOW_DIR / "setup_venv.sh")], capture_output=True, text=True, timeout=1200
    )
    assert result.returncode == 0, f"could not build Airflow's venv:\n{result.stderr[-4000:]}"
    venv = Path(result.stdout.strip().splitlines()[-1])
    return venv / "bin"


@pytest.fixture(scope="module")
def bucket(s3_server):
    return s3_server.create_bucket()


@pytest.fixture(scope="module")
def airflow_env(airflow_bin, tmp_path_factory, s3_server, bucket) -> dict[str, str]:
    """A fresh Airflow home (SQLite, migrated), the DAGs folder, dataprep and S3 settings."""
    home = tmp_path_factory.mktemp("airflow_home")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "AWS_", "DATAPREP_"))}
    env.update(s3_server.aws_environment())
    env.update(
        {
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
            "DATAPREP_BIN": str(DATAPREP),
            # Fail fast here: a failed task would otherwise wait out minutes of backoff
            # (the retry settings themselves are checked on the parsed DAGs).
            "DATAPREP_TASK_RETRIES": "0",
            "DATAPREP_TEXT_INPUT_TEMPLATE": f"s3://{bucket}/raw/{{{{ ds }}}}/*.warc.gz",
            "DATAPREP_TEXT_OUTPUT": f"s3://{bucket}/out",
            "DATAPREP_TEXT_DEDUP_INDEX": f"s3://{bucket}/dedup-index/text",
            "DATAPREP_IMAGES_INPUT_TEMPLATE": f"s3://{bucket}/raw-images/{{{{ ds }}}}/*.jsonl",
            "DATAPREP_IMAGES_OUTPUT": f"s3://{bucket}/images",
        }
    )
    migrate = subprocess.run(
        [str(airflow_bin / "airflow"), "db", "migrate"], env=env, capture_output=True, text=True, timeout=300
    )
    assert migrate.returncode == 0, migrate.stdout[-3000:] + migrate.stderr[-3000:]
    return env


def airflow_python(airflow_bin: Path, env: dict[str, str], code: str, *args: str) -> dict:
    result = subprocess.run(
        [str(airflow_bin / "python"), "-c", code, *args], env=env, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr[-4000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def dags_test(airflow_bin: Path, env: dict[str, str], dag_id: str, date: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(airflow_bin / "airflow"), "dags", "test", dag_id, date],
        env=env,
        capture_output=True,
        text=True,
        timeout=DAGS_TEST_TIMEOUT,
    )


DAGBAG = """
import json, sys
from pathlib import Path
from airflow.dag_processing.dagbag import BundleDagBag

folder = Path(sys.argv[1])
bag = BundleDagBag(dag_folder=folder, bundle_path=folder, bundle_name="dags-folder")
heavy = sorted({m.split(".")[0] for m in sys.modules} & {"apache_beam", "pyarrow", "pandas", "boto3",
                                                         "pipelines", "transforms", "numpy"})
dags = {}
for dag_id, dag in bag.dags.items():
    dags[dag_id] = {
        "timetable": type(dag.timetable).__name__, "catchup": dag.catchup,
        "max_active_runs": dag.max_active_runs, "params": sorted(dag.params),
        "tasks": {t.task_id: {"upstream": sorted(t.upstream_task_ids), "retries": t.retries,
                              "backoff": t.retry_exponential_backoff,
                              "outlets": [a.name for a in t.outlets]} for t in dag.tasks},
    }
print(json.dumps({"errors": bag.import_errors, "dags": dags, "heavy": heavy}))
"""


def test_dags_import_without_errors_or_heavy_modules(airflow_bin, airflow_env):
    # Unconfigured (no DATAPREP_* settings) the DAGs still parse, with their default retries.
    bare = {k: v for k, v in airflow_env.items() if not k.startswith("DATAPREP_")}
    bag = airflow_python(airflow_bin, bare, DAGBAG, str(DAGS))
    assert bag["errors"] == {}
    assert set(bag["dags"]) == {"dataprep_text_daily", "dataprep_images_daily"}
    assert bag["heavy"] == []
    for job, dag in (
        ("text", bag["dags"]["dataprep_text_daily"]),
        ("images", bag["dags"]["dataprep_images_daily"]),
    ):
        assert dag["timetable"] == "CronDataIntervalTimetable" and dag["max_active_runs"] == 1
        assert dag["params"] == ["accept_drift", "beam_args", "config", "input_template"]
        tasks = dag["tasks"]
        assert tasks["validate"]["upstream"] == ["run"]
        assert tasks["check_dedup_index"]["upstream"] == ["validate"]
        assert sorted(tasks["publish"]["upstream"]) == ["check_dedup_index", "validate"]
        assert tasks["publish"]["outlets"] == [f"dataprep_{job}"]
        assert tasks["run"]["retries"] >= 2 and tasks["run"]["backoff"] > 1


def test_a_dag_with_an_import_error_is_reported(airflow_bin, airflow_env, tmp_path):
    for helper in ("dataprep_common.py", "check_partition.py", ".airflowignore"):
        shutil.copy(DAGS / helper, tmp_path / helper)
    (tmp_path / "broken_dag.py").write_text("from airflow.sdk import DAG\nimport no_such_module\n")
    bag = airflow_python(airflow_bin, airflow_env, DAGBAG, str(tmp_path))
    assert list(bag["errors"]) == ["broken_dag.py"]
    assert "no_such_module" in next(iter(bag["errors"].values()))


RUN_STATE = """
import json, sys
from sqlalchemy import select
from airflow.models.asset import AssetEvent, AssetModel
from airflow.models.dagrun import DagRun
from airflow.models.taskinstance import TaskInstance
from airflow.utils.session import create_session

dag_id = sys.argv[1]
with create_session() as session:
    run = session.scalars(select(DagRun).where(DagRun.dag_id == dag_id).order_by(DagRun.id.desc())).first()
    tis = session.scalars(select(TaskInstance).where(TaskInstance.dag_id == dag_id,
                                                     TaskInstance.run_id == run.run_id)).all()
    events = session.execute(select(AssetEvent, AssetModel).join(AssetModel, AssetModel.id == AssetEvent.asset_id)
                             .where(AssetEvent.source_dag_id == dag_id).order_by(AssetEvent.id)).all()
    print(json.dumps({
        "logical_date": run.logical_date.isoformat(), "state": str(run.state),
        "tasks": {ti.task_id: str(ti.state) for ti in tis},
        "events": [{"asset": a.name, "uri": a.uri, "partition_key": e.partition_key, "extra": e.extra,
                    "run_id": e.source_run_id} for e, a in events],
    }, default=str))
"""


def run_state(airflow_bin, env, dag_id) -> dict:
    """The DAG's latest run (state, logical date, task states) and all its Asset events."""
    return airflow_python(airflow_bin, env, RUN_STATE, dag_id)


def data_files(s3_server, bucket: str, prefix: str) -> dict[str, str]:
    client = s3_server.client()
    keys = [o["Key"] for o in client.list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", [])]
    return {
        k: hashlib.sha256(client.get_object(Bucket=bucket, Key=k)["Body"].read()).hexdigest()
        for k in sorted(keys)
        if k.startswith(prefix + "data/")
    }


def upload_text_inputs(s3_server, bucket: str, date: str, folder: Path) -> None:
    """The shared Common Crawl WARC and 30 real article pages, as that day's raw partition."""
    articles = write_warc(folder / "articles.warc.gz", [(url, html) for url, html, _ in aeb_pages(30)])
    for path in (CC_WARC, articles):
        s3_server.upload(path, bucket, f"raw/{date}/{path.name}")


@pytest.fixture(scope="module")
def first_text_run(airflow_bin, airflow_env, s3_server, bucket, tmp_path_factory):
    upload_text_inputs(s3_server, bucket, DATE, tmp_path_factory.mktemp("raw"))
    result = dags_test(airflow_bin, airflow_env, "dataprep_text_daily", DATE)
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-6000:]
    return result, data_files(s3_server, bucket, f"out/dt={DATE}/")


def test_text_daily_commits_validates_and_publishes_the_partition(
    first_text_run, airflow_bin, airflow_env, s3_server, bucket
):
    result, files = first_text_run
    assert f"--dedup-index s3://{bucket}/dedup-index/text" in result.stdout
    marker = f"s3://{bucket}/dedup-index/text/_runs/dt={DATE}.json"
    assert f"dt={DATE} is in dedup index s3://{bucket}/dedup-index/text: {marker}" in result.stdout
    client = s3_server.client()
    prefix = f"out/dt={DATE}/"
    keys = {o["Key"] for o in client.list_objects_v2(Bucket=bucket, Prefix=prefix)["Contents"]}
    assert prefix + "_SUCCESS" in keys and files
    manifest = json.loads(client.get_object(Bucket=bucket, Key=prefix + "manifest.json")["Body"].read())
    assert manifest["run_id"] == f"dt={DATE}"
    assert manifest["inputs"] == [f"s3://{bucket}/raw/{DATE}/*.warc.gz"]
    c = assert_conserved(f"s3://{bucket}/out/dt={DATE}", s3_server)["conservation"]
    assert c["input"] == c["kept"] + c["rejected"] and c["kept"] > 0
    assert {prefix + "report/report.json", prefix + "report/index.html"} <= keys

    state = run_state(airflow_bin, airflow_env, "dataprep_text_daily")
    assert state["state"] == "success" and state["logical_date"].startswith(DATE)
    assert set(state["tasks"].values()) == {"success"}
    (event,) = state["events"]
    assert event["asset"] == "dataprep_text" and event["uri"] == f"s3://{bucket}/out"
    assert event["partition_key"] == DATE
    assert event["extra"]["uri"] == f"s3://{bucket}/out/dt={DATE}"
    assert (
        event["extra"]["conservation"]["kept"] == c["kept"]
        and event["extra"]["report"] == "report/report.json"
    )
    manifest_bytes = client.get_object(Bucket=bucket, Key=prefix + "manifest.json")["Body"].read()
    assert event["extra"]["manifest_sha256"] == hashlib.sha256(manifest_bytes).hexdigest()


def test_rerun_of_the_same_date_leaves_identical_data(
    first_text_run, airflow_bin, airflow_env, s3_server, bucket
):
    _, before = first_text_run
    client = s3_server.client()
    stale = f"out/dt={DATE}/data/part-00099-of-00100.parquet"
    client.put_object(Bucket=bucket, Key=stale, Body=b"left by an earlier attempt")
    result = dags_test(airflow_bin, airflow_env, "dataprep_text_daily", DATE)
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-6000:]
    assert data_files(s3_server, bucket, f"out/dt={DATE}/") == before
    events = run_state(airflow_bin, airflow_env, "dataprep_text_daily")["events"]
    assert [e["partition_key"] for e in events] == [DATE, DATE]
    assert events[1]["extra"]["conservation"] == events[0]["extra"]["conservation"]


def test_failed_gate_fails_the_run_and_publishes_nothing(
    first_text_run, airflow_bin, airflow_env, s3_server, bucket
):
    # The date's committed partition, damaged in storage; the DAG run marks `run` done (as after
    # a run that committed) and leaves the rest to the gate. Runs last: it unpublishes DATE.
    client = s3_server.client()
    prefix, index_marker = f"out/dt={DATE}/", f"dedup-index/text/_runs/dt={DATE}.json"
    assert client.list_objects_v2(Bucket=bucket, Prefix=index_marker)["KeyCount"] == 1
    data_key = next(iter(data_files(s3_server, bucket, prefix)))
    damaged = client.get_object(Bucket=bucket, Key=data_key)["Body"].read() + b"x"
    client.put_object(Bucket=bucket, Key=data_key, Body=damaged)
    events_before = len(run_state(airflow_bin, airflow_env, "dataprep_text_daily")["events"])

    command = ["dags", "test", "dataprep_text_daily", DATE, "--mark-success-pattern", "^run$"]
    result = subprocess.run(
        [str(airflow_bin / "airflow"), *command],
        env=airflow_env,
        capture_output=True,
        text=True,
        timeout=DAGS_TEST_TIMEOUT,
    )
    assert result.returncode != 0
    log = result.stdout + result.stderr
    assert "failed the gate, _SUCCESS and its dedup index entry removed" in log
    assert "bytes, the manifest says" in log
    state = run_state(airflow_bin, airflow_env, "dataprep_text_daily")
    assert state["state"] == "failed" and state["logical_date"].startswith(DATE)
    assert state["tasks"]["run"] == "success" and state["tasks"]["validate"] == "failed"
    assert state["tasks"]["check_dedup_index"] == state["tasks"]["publish"] == "upstream_failed"
    assert len(state["events"]) == events_before
    keys = {o["Key"] for o in client.list_objects_v2(Bucket=bucket, Prefix=prefix)["Contents"]}
    assert prefix + "manifest.json" in keys and prefix + "_SUCCESS" not in keys
    assert client.list_objects_v2(Bucket=bucket, Prefix=index_marker)["KeyCount"] == 0


def serve_files(folder: Path) -> ThreadingHTTPServer:
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(QuietFiles, directory=str(folder)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


class QuietFiles(SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass


def test_images_daily_commits_the_partition(airflow_bin, airflow_env, s3_server, bucket, tmp_path):
    from image_fixtures import photo

    site = tmp_path / "site"
    site.mkdir()
    for name in ("china", "flower"):
        (site / f"{name}.jpg").write_bytes(photo(name))
    # Loopback is a private address: allowed here only. A `crawl` section replaces the image
    # crawl defaults whole, so the media types are named again.
    config = tmp_path / "images.yaml"
    config.write_text(
        "download:\n  crawl:\n    allow_private_addresses: true\n    per_host_rate: 500.0\n"
        "    content_types: [image/jpeg]\nnsfw:\n  enabled: false\n"
    )
    server = serve_files(site)
    try:
        base = f"http://127.0.0.1:{server.server_address[1]}"
        pairs = [
            {"url": f"{base}/china.jpg", "caption": "the roof of a temple in china"},
            {"url": f"{base}/flower.jpg", "caption": "a pink flower in a garden"},
        ]
        (tmp_path / "pairs.jsonl").write_text("".join(json.dumps(row) + "\n" for row in pairs))
        s3_server.upload(tmp_path / "pairs.jsonl", bucket, f"raw-images/{DATE}/pairs.jsonl")
        result = dags_test(
            airflow_bin, {**airflow_env, "DATAPREP_IMAGES_CONFIG": str(config)}, "dataprep_images_daily", DATE
        )
    finally:
        server.shutdown()
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-6000:]
    client = s3_server.client()
    prefix = f"images/dt={DATE}/"
    keys = {o["Key"] for o in client.list_objects_v2(Bucket=bucket, Prefix=prefix)["Contents"]}
    assert prefix + "_SUCCESS" in keys
    manifest = json.loads(client.get_object(Bucket=bucket, Key=prefix + "manifest.json")["Body"].read())
    assert manifest["job"] == "images" and manifest["conservation"]["kept"] >= 1
    assert_conserved(f"s3://{bucket}/images/dt={DATE}", s3_server)
    state = run_state(airflow_bin, airflow_env, "dataprep_images_daily")
    assert [(e["asset"], e["partition_key"]) for e in state["events"]] == [("dataprep_images", DATE)]
