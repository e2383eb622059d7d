"""Export: ONNX (through onnxruntime) and TorchScript give PyTorch's logits within 1e-4."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from modalfuse.cli import main
from modalfuse.export import example_inputs, export_run, load_onnx_scorer, load_run_model
from modalfuse.training.run import train

pytest.importorskip("onnxruntime")

TOL = 1e-4  # float32 kernels of two runtimes: ~1e-7 seen; 1e-4 is the bar

# A sentiment-style model: sequences with padding, transformer encoders, attention fusion.
SENTIMENT = {
    "data": {"name": "synthetic", "task": "regression", "n_train": 64, "n_valid": 16, "n_test": 16, "seq_len": 6},
    "model": {"name": "fusion", "encoder": {"name": "transformer", "d_model": 8, "heads": 2, "ff_dim": 16, "layers": 1},
              "fusion": {"name": "attention", "d_model": 8, "heads": 2}},
}
# A YouTube-8M model (Attend-Fusion) on video-level vectors, multi-label; `video` stands in for rgb,
# and `text` is left out to check that only the modalities a model reads become inputs.
YT8M = {
    "data": {"name": "synthetic", "task": "multilabel", "n_train": 64, "n_valid": 16, "n_test": 16,
             "dims": {"text": 4, "audio": 16, "video": 32}},
    "model": {"name": "attend-fusion", "modalities": ["audio", "video"], "branch_dims": [16], "tokens": 4,
              "heads": 2, "head_dims": [16]},
}
TRAIN = {"train": {"epochs": 1, "batch_size": 32, "progress": "none"}, "eval": {"splits": ["valid"]}}


def _run(tmp_path: Path, cfg: dict) -> Path:
    return train({**cfg, **TRAIN}, out=tmp_path / "runs", quiet=True)


def _reference(run_dir: Path, batch: int = 7) -> tuple[dict, dict, np.ndarray]:
    """Fresh inputs (another batch size than the traced one) and PyTorch's logits for them."""
    model, modalities, _, _ = load_run_model(run_dir)
    features, masks = example_inputs(modalities, batch=batch, seed=11)
    for m in masks:  # one sample with no valid step at all
        masks[m][-1] = False
        features[m][-1] = 0.0
    with torch.no_grad():
        logits = model(features, masks)["logits"].numpy()
    return features, masks, logits


@pytest.mark.parametrize("cfg", [SENTIMENT, YT8M], ids=["sentiment-transformer-attention", "yt8m-attend-fusion"])
def test_onnx_matches_pytorch(tmp_path, cfg):
    run_dir = _run(tmp_path, cfg)
    path = export_run(run_dir, "onnx", tmp_path / "model.onnx")
    assert Path(path).is_file() and not list(tmp_path.glob(".*.tmp"))  # written atomically

    scorer = load_onnx_scorer(path)
    wanted = sorted(cfg["model"].get("modalities") or ["audio", "text", "video"])
    assert scorer.modalities == wanted
    features, masks, expected = _reference(run_dir)
    got = scorer({m: f.numpy() for m, f in features.items()}, {m: k.numpy() for m, k in masks.items()})
    assert got.shape == expected.shape
    assert np.abs(got - expected).max() <= TOL


def test_torchscript_matches_pytorch_and_carries_its_inputs(tmp_path):
    run_dir = _run(tmp_path, SENTIMENT)
    path = export_run(run_dir, "torchscript", tmp_path / "model.pt")
    extra = {"modalfuse.json": ""}
    module = torch.jit.load(path, _extra_files=extra)
    meta = json.loads(extra["modalfuse.json"])
    features, masks, expected = _reference(run_dir)
    args = [features[i["modality"]] if i["kind"] == "features" else masks[i["modality"]] for i in meta["inputs"]]
    with torch.no_grad():
        got = module(*args).numpy()
    assert np.abs(got - expected).max() <= TOL


def test_cli_export_and_errors(tmp_path, capsys):
    run_dir = _run(tmp_path, YT8M)
    out = tmp_path / "served" / "m.onnx"
    assert main(["export", str(run_dir), "--format", "onnx", "--out", str(out)]) == 0
    assert out.is_file()
    assert main(["export", str(tmp_path), "--out", str(tmp_path / "x.onnx")]) == 2  # not a run folder
    assert "not a finished run folder" in capsys.readouterr().err


def test_predict_from_onnx_matches_predict_from_the_run(tmp_path):
    """`modalfuse predict model.onnx` (onnxruntime) gives the run folder's top-k, scores within 1e-4,
    on the bundled YouTube-8M shard."""
    from importlib import resources

    shard = str(resources.files("modalfuse") / "data_files" / "yt8m" / "validate0033.tfrecord")
    run_dir = tmp_path / "run"
    train({"data": {"name": "yt8m"}, "model": {"name": "attend-fusion", "branch_dims": [16], "tokens": 4, "heads": 2,
                                                "head_dims": [16]},
           "train": {"epochs": 1, "batch_size": 256, "progress": "none"}, "eval": {"splits": ["valid"]}},
          run_dir=run_dir, quiet=True)
    onnx_path = tmp_path / "served" / "attend.onnx"
    assert main(["export", str(run_dir), "--out", str(onnx_path)]) == 0
    assert main(["predict", str(run_dir), "--input", shard, "--out", str(tmp_path / "a.jsonl"), "--format", "jsonl",
                 "--top-k", "5"]) == 0
    assert main(["predict", str(onnx_path), "--input", shard, "--out", str(tmp_path / "b.jsonl"), "--format", "jsonl",
                 "--top-k", "5"]) == 0
    rows_a = [json.loads(line) for line in (tmp_path / "a.jsonl").read_text().splitlines()]
    rows_b = [json.loads(line) for line in (tmp_path / "b.jsonl").read_text().splitlines()]
    assert len(rows_a) == len(rows_b) > 0
    for a, b in zip(rows_a, rows_b):
        assert a["id"] == b["id"]
        sa, sb = [p["score"] for p in a["predictions"]], [p["score"] for p in b["predictions"]]
        assert np.abs(np.array(sa) - np.array(sb)).max() <= TOL
        # the same classes, unless two scores are closer than the tolerance (then order may swap)
        if min(np.diff(sorted(sa))) > TOL:
            assert [p["name"] for p in a["predictions"]] == [p["name"] for p in b["predictions"]]
