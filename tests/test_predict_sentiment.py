"""``predict`` on sentiment runs scales new inputs with the run's own training statistics."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import torch

from modalfuse.serving.predict import predict
from modalfuse.training import load_run, train
from modalfuse.training.loop import predict_split

MOSI_PACKED = Path(__file__).resolve().parents[1] / "src" / "modalfuse" / "data_files" / "mosi" / "mosi_utterance.h5"


def test_predict_on_the_bundled_file_matches_the_run_on_its_test_split(tmp_path):
    run = train("mosi/early", overrides=["train.epochs=1", "train.progress=none"], run_dir=tmp_path / "run", quiet=True)
    out = tmp_path / "pred.csv"
    n = predict(run, [str(MOSI_PACKED)], out, top_k=3, fmt="csv")
    assert n == 2198  # every segment of the file, once
    rows = list(csv.DictReader(out.open()))
    top = {r["id"]: (int(r["class"]), r["name"], float(r["score"])) for r in rows if r["rank"] == "1"}
    assert {name for _, name, _ in top.values()} <= {"negative", "neutral", "positive"}

    cfg, model, data = load_run(run)
    ref = predict_split(model, data.test, data.task, batch_size=256, device=torch.device("cpu"))
    probs = torch.softmax(torch.from_numpy(ref["scores"]), -1).numpy()
    for i, sid in enumerate(ref["ids"]):
        cls, _, score = top[sid]
        assert cls == int(np.argmax(probs[i])), sid
        assert abs(score - float(probs[i].max())) < 1e-5, sid
