"""Our image-caption job against img2dataset, over the same URL + caption table, on loopback.

    .venv/bin/python -m benchmarks.images [--images 300] [--photo-size 480x360]
                                          [--img2dataset PATH/bin/img2dataset]

1. Makes ``--images`` distinct JPEGs (random crops of the two real photos scikit-learn ships,
   resized to ``--photo-size``, 480x360 by default; 1920x1280 is the usual web photo, where
   decoding dominates) and serves them from a threaded HTTP server on 127.0.0.1.
2. Writes one CSV (``url``, ``caption``).
3. Runs, each as a subprocess: img2dataset 1.47.0 in its own venv (``.venv-img2dataset``, made
   once from ``benchmarks/requirements-img2dataset.txt`` unless ``--img2dataset`` names an
   executable; border resize to 256, JPEG q95, parquet output, 1 process x 16 threads); ours
   as a user runs it (no Beam flags: the images job's default, in-process), with the same resize and
   download only (``minimal``: caption filters, NSFW and dedup off);
   ours with every default stage on, NSFW included (``full``). Prints images kept, wall seconds,
   images/s, CPU seconds (user + sys of the process tree), images per CPU second and peak RSS
   (the largest process of the tree, from ``wait4``), then ours over img2dataset as ratios.
"""

from __future__ import annotations

import argparse
import csv
import http.server
import io
import json
import os
import random
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

from PIL import Image

from benchmarks.text_pipeline import Measured, measure

REPO = Path(__file__).resolve().parents[1]
DEFAULT_SIZE = (480, 360)
LARGE_DISTINCT = 64
IMG2DATASET_VENV = REPO / ".venv-img2dataset"
IMG2DATASET_REQUIREMENTS = Path(__file__).with_name("requirements-img2dataset.txt")

_OURS = """
import json, sys
from dataclasses import replace
from pipelines import images
from transforms.crawl.config import IMAGE_CONTENT_TYPES, CrawlConfig
from transforms.images.download import DownloadConfig
table, out, mode = sys.argv[1:4]
crawl = CrawlConfig(content_types=IMAGE_CONTENT_TYPES, per_host_rate=10000.0, per_host_concurrency=16,
                    allow_private_addresses=True, max_retries=0)
config = images.Config(download=DownloadConfig(crawl=crawl))
if mode == "minimal":
    off = {"enabled": False}
    config = replace(config, caption_length=replace(config.caption_length, **off),
                     caption_boilerplate=replace(config.caption_boilerplate, **off),
                     caption_language=replace(config.caption_language, **off),
                     url_dedup=replace(config.url_dedup, **off), placeholder=replace(config.placeholder, **off),
                     image_filter=replace(config.image_filter, **off), nsfw=replace(config.nsfw, **off),
                     dedup_exact=replace(config.dedup_exact, **off), dedup_near=replace(config.dedup_near, **off))
manifest = images.run([table], out, "bench", config, ["--runner=FnApiRunner"])
print(json.dumps({"kept": manifest["conservation"]["kept"]}))
"""


def _photos() -> list[Image.Image]:
    import importlib.util

    spec = importlib.util.find_spec("sklearn")
    folder = Path(spec.submodule_search_locations[0]) / "datasets" / "images"
    return [Image.open(folder / name).convert("RGB") for name in ("china.jpg", "flower.jpg")]


def make_images(count: int, seed: int = 0, size: tuple[int, int] = DEFAULT_SIZE) -> list[bytes]:
    """``count`` distinct JPEGs of ``size``: random crops of the two photos. Photos larger than
    the default come from ``LARGE_DISTINCT`` crops (encoding thousands of them would take minutes
    and gigabytes), each URL's bytes made unique by a JPEG comment (its own sha256, same pixels)."""
    rng = random.Random(seed)
    photos = _photos()
    distinct = count if size == DEFAULT_SIZE else min(count, LARGE_DISTINCT)
    pool = []
    for i in range(distinct):
        photo = photos[i % 2]
        w, h = rng.randint(240, 640), rng.randint(200, 427)
        x, y = rng.randint(0, 640 - w), rng.randint(0, 427 - h)
        image = photo.crop((x, y, x + w, y + h)).resize(size, Image.Resampling.BILINEAR)
        buf = io.BytesIO()
        image.save(buf, "JPEG", quality=90)
        pool.append(buf.getvalue())
    if distinct == count:
        return pool
    return [_with_comment(pool[i % distinct], f"benchmark image {i}".encode()) for i in range(count)]


def _with_comment(jpeg: bytes, text: bytes) -> bytes:
    """``jpeg`` with a COM segment after its SOI marker: other bytes, the same image."""
    return jpeg[:2] + b"\xff\xfe" + (len(text) + 2).to_bytes(2, "big") + text + jpeg[2:]


def serve(bodies: list[bytes]) -> tuple[http.server.ThreadingHTTPServer, str]:
    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            name = self.path.rsplit("/", 1)[-1]
            index = int(name.split(".")[0]) if name.split(".")[0].isdigit() else -1
            body, kind, status = (
                (bodies[index], "image/jpeg", 200) if 0 <= index < len(bodies) else (b"", "text/plain", 404)
            )
            self.send_response(status)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}"


def ensure_img2dataset_venv(venv: Path = IMG2DATASET_VENV) -> Path:
    """Create ``venv`` with the pinned requirements unless it already has them; its executable."""
    python = venv / "bin" / "python"
    stamp = venv / "requirements-img2dataset.installed"
    wanted = IMG2DATASET_REQUIREMENTS.read_text()
    if not (python.exists() and stamp.exists() and stamp.read_text() == wanted):
        print(f"setting up {venv} from {IMG2DATASET_REQUIREMENTS.name} (once)", flush=True)
        if not python.exists():
            subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", "-r", str(IMG2DATASET_REQUIREMENTS)], check=True)
        stamp.write_text(wanted)
    return venv / "bin" / "img2dataset"


def count_img2dataset(folder: Path) -> int:
    total = 0
    for stats in folder.glob("*_stats.json"):
        total += json.loads(stats.read_text())["successes"]
    return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=300)
    parser.add_argument("--photo-size", default="480x360",
                        help="WIDTHxHEIGHT of the served JPEGs (1920x1280: the usual web photo, decode-bound)")
    parser.add_argument("--modes", default="minimal,full", help="our runs: minimal (download + decode), full")
    parser.add_argument("--img2dataset", help="the img2dataset executable (default: .venv-img2dataset, made once)")
    args = parser.parse_args()
    img2dataset = args.img2dataset or str(ensure_img2dataset_venv())
    size = tuple(int(side) for side in args.photo_size.lower().split("x"))
    bodies = make_images(args.images, size=size)
    server, base = serve(bodies)
    rows: list[tuple[str, int, Measured]] = []
    with tempfile.TemporaryDirectory() as tmp:
        table = Path(tmp) / "pairs.csv"
        with open(table, "w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(["url", "caption"])
            for i in range(len(bodies)):
                writer.writerow([f"{base}/img/{i}.jpg", f"a photograph of a temple or a flower, number {i}"])
        out = Path(tmp) / "i2d"
        command = [img2dataset, "--url_list", str(table), "--input_format", "csv", "--url_col", "url",
                   "--caption_col", "caption", "--output_format", "parquet", "--output_folder", str(out),
                   "--image_size", "256", "--resize_mode", "border", "--encode_quality", "95",
                   "--processes_count", "1", "--thread_count", "16", "--enable_wandb", "False"]
        measured = _checked(command, Path(tmp) / "i2d.log")
        rows.append(("img2dataset 1.47.0", count_img2dataset(out), measured))
        for mode in args.modes.split(","):
            folder = Path(tmp) / mode
            measured = _checked([sys.executable, "-c", _OURS, str(table), str(folder), mode],
                                Path(tmp) / f"{mode}.log")
            kept = json.loads((folder / "bench" / "manifest.json").read_text())["conservation"]["kept"]
            rows.append((f"dataprep images ({mode})", kept, measured))
    server.shutdown()
    n = len(bodies)
    print(f"{n} images of {size[0]}x{size[1]} ({sum(map(len, bodies)) / n / 1024:.0f} KB mean) on loopback, "
          f"{os.cpu_count()} CPUs visible, load average {os.getloadavg()[0]:.1f} at the end")
    print(f"{'tool':<28}{'kept':>6}{'wall s':>9}{'img/s':>8}{'cpu s':>8}{'img/cpu-s':>11}{'peak RSS MB':>13}")
    for name, kept, m in rows:
        print(f"{name:<28}{kept:>6}{m.wall_s:>9.1f}{n / m.wall_s:>8.1f}{m.cpu_s:>8.1f}{n / m.cpu_s:>11.1f}"
              f"{m.max_proc_rss_mb:>13.0f}")
    baseline = rows[0][2]
    for name, _kept, m in rows[1:]:
        print(f"{name} / img2dataset: images/s x{baseline.wall_s / m.wall_s:.2f}, "
              f"images per CPU-s x{baseline.cpu_s / m.cpu_s:.2f}, peak RSS x{m.max_proc_rss_mb / baseline.max_proc_rss_mb:.2f}")


def _checked(command: list[str], log: Path) -> Measured:
    """``measure(command)``, or exit with the tail of its log when it failed."""
    measured = measure(command, log)
    if measured.returncode != 0:
        raise SystemExit(f"{command[0]} failed (exit {measured.returncode}):\n{log.read_text()[-3000:]}")
    return measured


if __name__ == "__main__":
    main()
