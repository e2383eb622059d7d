"""The mosi-words results table, read back from a ``modalfuse compare mosi-words`` folder.

    modalfuse compare mosi-words --seeds 5 --out runs/compare-mosi-words-5
    python bench/words_table.py runs/compare-mosi-words-5

One row per model, mean ± std (ddof 1) over the finished seeds, test split: Acc-3 and weighted F1 of
the 3-class classifier, and Acc-2 / weighted F1 *read off the same 3-class predictions*:

- has0: negative (``s < 0``) against non-negative, all test segments; predicted negative = the
  argmax is ``negative`` (a ``neutral`` or ``positive`` prediction counts as non-negative);
- non0: negative against positive on the segments whose score is not exactly 0 (truth ``neutral``
  dropped), with the same reading of the predictions.

Also the validation Acc-3 (what selected the epoch for validation-selected presets), the mean best
epoch, and a majority-class baseline row (the training split's most frequent class). Prints Markdown,
then one JSON object as the last line.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from modalfuse.metrics.classification import accuracy, f1_weighted

NEGATIVE, NEUTRAL = 0, 1  # 3class ids: negative, neutral, positive


def scores(pred: np.ndarray, truth: np.ndarray) -> dict[str, float]:
    """``pred``, ``truth``: 3-class ids ``[N]`` -> the table's metrics."""
    out = {"acc3": accuracy(pred, truth), "f1w3": f1_weighted(pred, truth, 3)}
    p2, t2 = (pred != NEGATIVE).astype(int), (truth != NEGATIVE).astype(int)
    out["acc2_has0"], out["f1_has0"] = accuracy(p2, t2), f1_weighted(p2, t2, 2)
    keep = truth != NEUTRAL
    out["acc2_non0"], out["f1_non0"] = accuracy(p2[keep], t2[keep]), f1_weighted(p2[keep], t2[keep], 2)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("compare_dir", type=Path)
    a = ap.parse_args()
    info = json.loads((a.compare_dir / "compare.json").read_text())
    rows: dict[str, dict[str, list[float]]] = {}
    majority = None
    for label in info["labels"]:
        for seed in info["seeds"]:
            run = a.compare_dir / "runs" / f"{label}-seed{seed}"
            if not (run / "metrics.json").is_file():
                continue
            with np.load(run / "predictions.npz") as z:
                truth, pred = z["test/labels"], z["test/scores"].argmax(1)
                if majority is None:
                    majority = scores(np.full_like(truth, np.bincount(z["train/labels"]).argmax()), truth)
                vtruth, vpred = z["valid/labels"], z["valid/scores"].argmax(1)
            r = rows.setdefault(label, {})
            for k, v in scores(pred, truth).items():
                r.setdefault(k, []).append(v)
            r.setdefault("valid_acc3", []).append(accuracy(vpred, vtruth))
            r.setdefault("best_epoch", []).append(json.loads((run / "run.json").read_text())["best_epoch"])
    cols = [("acc3", "Acc-3"), ("f1w3", "F1-w (3)"), ("acc2_has0", "Acc-2 has0"), ("f1_has0", "F1 has0"),
            ("acc2_non0", "Acc-2 non0"), ("f1_non0", "F1 non0"), ("valid_acc3", "valid Acc-3")]
    fmt = lambda v: f"{100 * np.mean(v):.1f} ± {100 * np.std(v, ddof=1) if len(v) > 1 else 0:.1f}"
    print("| model | seeds | " + " | ".join(c[1] for c in cols) + " | best epoch |")
    print("|---|---|" + "---|" * len(cols) + "---|")
    for label, r in rows.items():
        print(f"| {label} | {len(r['acc3'])} | " + " | ".join(fmt(r[k]) for k, _ in cols)
              + f" | {np.mean(r['best_epoch']):.1f} |")
    if majority:
        print("| majority class (train) | – | " + " | ".join(f"{100 * majority[k]:.1f}" if k in majority else "–"
                                                          for k, _ in cols) + " | – |")
    print(json.dumps({label: {k: round(float(np.mean(v)), 4) for k, v in r.items()} | {"seeds": len(r["acc3"])}
                      for label, r in rows.items()}))


if __name__ == "__main__":
    main()
