"""Export: torch.export (.pt2) and ONNX (through onnxruntime) give PyTorch's logits within 1e-4;
``predict`` reads both; bad metadata and non-finite weights are refused with one line."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from modalfuse.cli import main
from modalfuse.errors import UserError
from modalfuse.serving.export import example_inputs, export_run, load_exported, load_run_model
from modalfuse.training.run import train

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
    "model": {"name": "fusion", "modalities": ["audio", "video"], "encoder": {"name": "mlp", "hidden_dims": [16]},
              "fusion": {"name": "attend", "tokens": 4, "heads": 2}, "head": {"name": "mlp", "hidden_dims": [16]}},
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


@pytest.mark.slow
@pytest.mark.parametrize("fmt", ["pt2", "onnx"])
@pytest.mark.parametrize("cfg", [SENTIMENT, YT8M], ids=["sentiment-transformer-attention", "yt8m-attend-fusion"])
def test_export_matches_pytorch(tmp_path, cfg, fmt):
    if fmt == "onnx":
        pytest.importorskip("onnxruntime")
    run_dir = _run(tmp_path, cfg)
    path = export_run(run_dir, out=tmp_path / f"model.{fmt}")  # the format from the suffix
    assert Path(path).is_file() and not list(tmp_path.glob(".*.tmp"))  # written atomically

    scorer = load_exported(path)
    wanted = sorted(cfg["model"].get("modalities") or ["audio", "text", "video"])
    assert scorer.modalities == wanted
    features, masks, expected = _reference(run_dir)
    got = scorer({m: f.numpy() for m, f in features.items()}, {m: k.numpy() for m, k in masks.items()})
    assert got.shape == expected.shape
    assert np.abs(got - expected).max() <= TOL


@pytest.mark.slow
def test_pt2_is_a_plain_torch_export_program_carrying_its_inputs(tmp_path):
    """Anyone can load the .pt2 with torch alone; its extra file says which input is which."""
    run_dir = _run(tmp_path, SENTIMENT)
    path = export_run(run_dir, "pt2", tmp_path / "model.pt2")
    extra = {"modalfuse.json": ""}
    program = torch.export.load(path, extra_files=extra)
    meta = json.loads(extra["modalfuse.json"])
    features, masks, expected = _reference(run_dir)
    args = [features[i["modality"]] if i["kind"] == "features" else masks[i["modality"]] for i in meta["inputs"]]
    with torch.no_grad():
        got = program.module()(*args).numpy()
    assert np.abs(got - expected).max() <= TOL


def test_torchscript_is_refused_with_the_replacement(tmp_path):
    run_dir = _run(tmp_path, YT8M)
    with pytest.raises(UserError, match="use --format pt2"):
        export_run(run_dir, "torchscript", tmp_path / "model.pt")
    with pytest.raises(UserError, match="name it .pt2 or .onnx"):
        export_run(run_dir, out=tmp_path / "model.bin")


def test_non_finite_weights_are_not_exported(tmp_path):
    """export itself refuses a model with a NaN weight (the checkpoint loader refuses such a
    checkpoint earlier still), and writes nothing."""
    from modalfuse.serving.export import export_model

    run_dir = _run(tmp_path, YT8M)
    model, modalities, task, _ = load_run_model(run_dir)
    name, weight = next((k, v) for k, v in model.state_dict().items() if v.is_floating_point())
    weight.view(-1)[0] = float("nan")
    out = tmp_path / "bad.pt2"
    with pytest.raises(UserError, match=f"refusing to export: non-finite weights in {name}"):
        export_model(model, modalities, task, "pt2", out)
    assert not out.exists() and not list(tmp_path.glob(".*"))


def test_metadata_that_is_not_json_is_one_line_error(tmp_path):
    onnx = pytest.importorskip("onnx")
    pytest.importorskip("onnxruntime")
    run_dir = _run(tmp_path, YT8M)
    path = Path(export_run(run_dir, out=tmp_path / "model.onnx"))
    proto = onnx.load(str(path))
    for entry in proto.metadata_props:
        if entry.key == "modalfuse":
            entry.value = "{not json"
    onnx.save(proto, str(path))
    with pytest.raises(UserError, match="metadata is not the JSON"):
        load_exported(path)
    # and a .pt2 whose extra file was replaced
    import zipfile

    pt2 = Path(export_run(run_dir, out=tmp_path / "model.pt2"))
    broken = tmp_path / "broken.pt2"
    with zipfile.ZipFile(pt2) as src, zipfile.ZipFile(broken, "w") as dst:
        for item in src.infolist():
            data = src.read(item.filename)
            dst.writestr(item, b"[1, 2" if item.filename.endswith("modalfuse.json") else data)
    with pytest.raises(UserError, match="metadata is not the JSON"):
        load_exported(broken)


def test_cli_export_and_errors(tmp_path, capsys):
    run_dir = _run(tmp_path, YT8M)
    out = tmp_path / "served" / "m.pt2"
    assert main(["export", str(run_dir), "--out", str(out)]) == 0
    assert out.is_file()
    assert main(["export", str(tmp_path), "--out", str(tmp_path / "x.onnx")]) == 2  # not a run folder
    assert "not a finished run folder" in capsys.readouterr().err


@pytest.mark.slow
@pytest.mark.parametrize("fmt", ["pt2", "onnx"])
def test_predict_from_export_matches_predict_from_the_run(tmp_path, fmt):
    """`modalfuse predict model.pt2|model.onnx` gives the run folder's top-k, scores within 1e-4,
    on the bundled YouTube-8M shard."""
    if fmt == "onnx":
        pytest.importorskip("onnxruntime")
    from importlib import resources

    shard = str(resources.files("modalfuse") / "data_files" / "yt8m" / "validate0033.tfrecord")
    run_dir = tmp_path / "run"
    train({"data": {"name": "yt8m"}, "model": {"name": "fusion", "encoder": {"name": "mlp", "hidden_dims": [16]},
                                                "fusion": {"name": "attend", "tokens": 4, "heads": 2},
                                                "head": {"name": "mlp", "hidden_dims": [16]}},
           "train": {"epochs": 1, "batch_size": 256, "progress": "none"}, "eval": {"splits": ["valid"]}},
          run_dir=run_dir, quiet=True)
    exported = tmp_path / "served" / f"attend.{fmt}"
    assert main(["export", str(run_dir), "--out", str(exported)]) == 0
    assert main(["predict", str(run_dir), "--input", shard, "--out", str(tmp_path / "a.jsonl"), "--format", "jsonl",
                 "--top-k", "5"]) == 0
    assert main(["predict", str(exported), "--input", shard, "--out", str(tmp_path / "b.jsonl"), "--format", "jsonl",
                 "--top-k", "5"]) == 0
    import modalfuse  # the Python API writes what the command line writes

    assert modalfuse.predict(exported, [shard], tmp_path / "c.jsonl", top_k=5, fmt="jsonl") > 0
    assert (tmp_path / "c.jsonl").read_text() == (tmp_path / "b.jsonl").read_text()
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


@pytest.mark.slow
def test_predict_from_an_export_imports_the_plugins_it_recorded(tmp_path):
    """An exported model records its run's plugin modules; predict imports them (the config it
    carries names their entries) and names one that is missing."""
    from modalfuse.serving.export import export_model
    from modalfuse.serving.predict import predict

    run_dir = _run(tmp_path, YT8M)
    meta = load_exported(export_run(run_dir, out=tmp_path / "m.pt2")).meta
    assert meta["plugins"] == []
    model, modalities, task, cfg = load_run_model(run_dir)
    path = export_model(model, modalities, task, "pt2", tmp_path / "p.pt2",
                        extra={**{k: meta[k] for k in ("config", "modalities")}, "plugins": ["gone_plugin_mod"]})
    with pytest.raises(UserError, match=r"p.pt2 \(exported from a run trained with plugin 'gone_plugin_mod'\): "
                                        r"plugin module 'gone_plugin_mod' is not installed"):
        predict(path, [str(path)], tmp_path / "out.csv")
