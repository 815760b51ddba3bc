#!/usr/bin/env bash
# Build Airflow's own venv (default: <repo>/.venv-airflow) from requirements.txt + constraints.txt.
#
# Idempotent: a stamp named after the hash of the pins and of this script marks a finished build;
# with the stamp present it exits at once, and any change of the pins rebuilds from scratch.
# Concurrent callers wait on a lock. Exit status non-zero when the venv cannot be built.
#
#   infra/airflow/setup_venv.sh                        # then .venv-airflow/bin/airflow
#   AIRFLOW_VENV=/opt/airflow-venv PYTHON=python3.11 infra/airflow/setup_venv.sh
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
venv="${AIRFLOW_VENV:-$repo/.venv-airflow}"
python="${PYTHON:-python3.11}"

pins_hash="$(cat "$here/requirements.txt" "$here/constraints.txt" "${BASH_SOURCE[0]}" | sha1sum | cut -c1-12)"
stamp="$venv/.installed-$pins_hash"

build() {
    [ -f "$stamp" ] && [ -x "$venv/bin/airflow" ] && return 0
    echo "setup_venv: building $venv (Airflow pins $pins_hash)" >&2
    rm -rf "$venv"
    "$python" -m venv "$venv"
    "$venv/bin/pip" install -qq --disable-pip-version-check \
        -r "$here/requirements.txt" -c "$here/constraints.txt"
    "$venv/bin/pip" check >&2
    "$venv/bin/airflow" version >/dev/null
    touch "$stamp"
}

mkdir -p "$(dirname "$venv")"
# The lock lives outside the repository, keyed by the venv's path.
exec 9>"${TMPDIR:-/tmp}/setup-venv-$(echo "$venv" | sha1sum | cut -c1-12).lock"
flock 9
build
echo "$venv"
