"""Alignment stage: an open_clip checkpoint from a local path or s3://, scored as open_clip scores.

The model is a tiny CLIP made here (open_clip's own architecture code, a small config added with
``open_clip.add_model_config``, random weights saved with ``torch.save``); nothing is downloaded
(``HF_HUB_OFFLINE=1``). Its scores mean nothing about alignment: the tests check loading,
scoring against open_clip computed directly, the decision, the errors and the pipeline run.
"""

from __future__ import annotations

import io
import json
import os
import tarfile

import pyarrow.parquet as pq
import pytest
from image_fixtures import photo, variant
from PIL import Image

from pipelines import images
from pipelines.config import from_dict
from transforms.images.alignment import AlignmentConfig, AlignmentFilter, import_open_clip
from transforms.images.decode import DecodeConfig, normalise_bytes

os.environ["HF_HUB_OFFLINE"] = "1"  # before open_clip / huggingface_hub are imported

TINY = "dataprep-tiny-clip"
TINY_CONFIG = {
    "embed_dim": 16,
    "vision_cfg": {"image_size": 32, "layers": 1, "width": 32, "head_width": 16, "patch_size": 16},
    "text_cfg": {"context_length": 16, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 1},
}
PAIRS = [
    ("china", None, "the roof of a temple in china"),
    ("flower", None, "a pink flower in a garden"),
    ("china", (0, 0, 320, 427), "left half of a temple photograph"),
    ("flower", (0, 0, 320, 427), "a close view of a flower on the left"),
]


def _image(name, box):
    return photo(name) if box is None else variant(name, box=box)


def _decoded(name, box):
    """The image bytes the decode stage hands on (default config), as the pipeline sees them."""
    return normalise_bytes(_image(name, box), DecodeConfig())["image"]


@pytest.fixture(scope="module")
def tiny_clip(tmp_path_factory):
    import torch

    folder = tmp_path_factory.mktemp("tiny_clip")
    (folder / f"{TINY}.json").write_text(json.dumps(TINY_CONFIG))
    open_clip = import_open_clip()
    open_clip.add_model_config(folder / f"{TINY}.json")
    torch.manual_seed(0)
    model = open_clip.create_model(TINY, pretrained=None)
    checkpoint = folder / "tiny.pt"
    torch.save(model.state_dict(), checkpoint)
    return checkpoint


def _reference(checkpoint, images_bytes, captions):
    """open_clip alone: its own loading of a local file (``pretrained=<path>``), transform,
    tokenizer; cosine of the normalised embeddings."""
    import torch

    open_clip = import_open_clip()
    model, _, preprocess = open_clip.create_model_and_transforms(TINY, pretrained=str(checkpoint))
    model.eval()
    tokenizer = open_clip.get_tokenizer(TINY)
    scores = []
    with torch.no_grad():
        for data, caption in zip(images_bytes, captions, strict=True):
            image = model.encode_image(preprocess(Image.open(io.BytesIO(data))).unsqueeze(0))[0]
            text = model.encode_text(tokenizer([caption]))[0]
            scores.append(float(image @ text / (image.norm() * text.norm())))
    return scores


def _records():
    return [{"image": _decoded(name, box), "caption": caption} for name, box, caption in PAIRS]


def _scored(checkpoint, threshold=-1.0, batch_size=32):
    stage = AlignmentFilter(
        AlignmentConfig(
            enabled=True, model=TINY, checkpoint=str(checkpoint), threshold=threshold, batch_size=batch_size
        )
    )
    stage.setup()
    records = _records()
    drops = stage.process_batch(records)
    return [r["alignment_score"] for r in records], drops


def test_local_checkpoint_scores_as_open_clip_does(tiny_clip):
    scores, drops = _scored(tiny_clip)
    expected = _reference(tiny_clip, [r["image"] for r in _records()], [c for _, _, c in PAIRS])
    assert scores == pytest.approx(expected, abs=1e-5)
    assert all(-1.0 <= s <= 1.0 for s in scores) and len(set(scores)) == len(scores)
    assert drops == [None] * len(PAIRS)  # threshold -1 keeps every cosine
    one_by_one, _ = _scored(tiny_clip, batch_size=1)
    assert one_by_one == pytest.approx(scores, abs=1e-5)


def test_s3_checkpoint_gives_the_same_scores(tiny_clip, s3_server, monkeypatch):
    for name, value in s3_server.aws_environment().items():
        monkeypatch.setenv(name, value)
    bucket = s3_server.create_bucket()
    uri = s3_server.upload(tiny_clip, bucket, "models/tiny.pt")
    local, _ = _scored(tiny_clip)
    remote, _ = _scored(uri)
    assert remote == local


def test_threshold_decides_with_a_stable_reason(tiny_clip):
    scores, _ = _scored(tiny_clip)
    cut = sorted(scores)[len(scores) // 2]  # the upper half stays
    _, drops = _scored(tiny_clip, threshold=cut)
    for score, drop in zip(scores, drops, strict=True):
        if score < cut:
            assert drop.reason == "low_score" and drop.detail.startswith(f"{score:.4f} < ")
        else:
            assert drop is None


def test_missing_or_corrupt_checkpoint_names_the_path(tiny_clip, tmp_path, s3_server, monkeypatch):
    missing = tmp_path / "nope.pt"
    with pytest.raises(FileNotFoundError, match=str(missing)):
        _scored(missing)
    corrupt = tmp_path / "corrupt.pt"
    corrupt.write_bytes(b"these bytes are not a torch checkpoint")
    with pytest.raises(ValueError, match=str(corrupt)):
        _scored(corrupt)
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(tiny_clip.read_bytes()[: tiny_clip.stat().st_size // 2])
    with pytest.raises(ValueError, match=str(truncated)):
        _scored(truncated)
    for name, value in s3_server.aws_environment().items():
        monkeypatch.setenv(name, value)
    uri = f"s3://{s3_server.create_bucket()}/models/absent.pt"
    with pytest.raises(OSError, match=uri):
        _scored(uri)


def test_config_is_checked():
    assert AlignmentConfig().enabled is False
    with pytest.raises(ValueError, match="checkpoint"):
        AlignmentConfig(enabled=True)
    with pytest.raises(ValueError, match="threshold"):
        AlignmentConfig(threshold=1.5)
    with pytest.raises(ValueError, match="architecture name"):
        AlignmentConfig(model="hf-hub:laion/CLIP-ViT-B-32-laion2B-s34B-b79K")


@pytest.mark.slow
def test_pipeline_writes_the_score_and_conserves_records(tiny_clip, tmp_path):
    tar = tmp_path / "pairs.tar"
    with tarfile.open(tar, "w") as archive:
        for i, (name, box, caption) in enumerate(PAIRS):
            for member, data in ((f"s{i}.jpg", _image(name, box)), (f"s{i}.txt", caption.encode())):
                info = tarfile.TarInfo(member)
                info.size = len(data)
                archive.addfile(info, io.BytesIO(data))
    expected = _reference(tiny_clip, [_decoded(n, b) for n, b, _ in PAIRS], [c for _, _, c in PAIRS])
    # Halfway between the two middle scores: a cut equal to one score would decide that record by
    # float noise (the pipeline's torch and open_clip's own differ in the 7th digit).
    ordered = sorted(expected)
    cut = (ordered[len(ordered) // 2 - 1] + ordered[len(ordered) // 2]) / 2
    config = from_dict(
        images.Config,
        {
            "nsfw": {"enabled": False},
            "alignment": {"enabled": True, "model": TINY, "checkpoint": str(tiny_clip), "threshold": cut},
        },
    )
    manifest = images.run([str(tar)], str(tmp_path / "out"), "r1", config, ["--runner=FnApiRunner"])
    run_dir = tmp_path / "out" / "r1"
    kept = [r for f in sorted((run_dir / "data").glob("*.parquet")) for r in pq.read_table(f).to_pylist()]
    rejected = [
        r for f in sorted((run_dir / "rejected").rglob("*.parquet")) for r in pq.read_table(f).to_pylist()
    ]
    by_caption = dict(zip([c for _, _, c in PAIRS], expected, strict=True))
    assert len(kept) == sum(s >= cut for s in expected) and len(rejected) == sum(s < cut for s in expected)
    for row in kept + rejected:
        assert row["alignment_score"] == pytest.approx(by_caption[row["caption"]], abs=1e-5)
    assert all(r["alignment_score"] >= cut for r in kept)
    assert {r["reject_reason"] for r in rejected} == {"alignment.low_score"}
    c = manifest["conservation"]
    assert c["input"] == len(PAIRS) == c["kept"] + c["rejected"] and c["kept"] == len(kept)
    assert "alignment" in [row["stage"] for row in manifest["funnel"]]
    assert (run_dir / "_SUCCESS").exists()
