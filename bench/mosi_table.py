"""Train the ``configs/mosi/`` presets over seeds and label schemes and print the results table.

    python bench/mosi_table.py                                  # every mosi preset, seeds 0-4, 3class + both 2class
    python bench/mosi_table.py --presets text early --seeds 0 1 --schemes regression
    python bench/mosi_table.py --group mosi-words --presets text early --valid   # the word-sequence presets

Each run goes to ``<out>/<preset>/<scheme>/seed<k>`` and is skipped when it already finished, so an
interrupted bench resumes where it stopped. The table (Markdown, mean +- std over seeds, test split)
is read back from the run folders: Acc-3 and weighted F1 from the ``3class`` runs, Acc-2 and weighted
F1 from binary classifiers trained on that very task (``2class_has0``: negative vs non-negative,
``2class_non0``: negative vs positive, zeros dropped), and, when asked for, Acc-2 (has0, non0), F1,
MAE and Corr of the ``regression`` runs (marked "(reg)" when binary runs are in the table too), plus
parameters and training seconds.

``--missing`` also evaluates every multimodal run with one modality removed at a time (its encoder
state set to zero, as ``modality_dropout`` does in training; MulT: its input set to zero, as MulT's
own modality dropout does) and prints a degradation table.

Training uses one CPU thread per run (``--threads``): on a shared machine a second thread only adds
contention for models this small.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

PRESETS = ("text", "audio", "video", "late", "late-soft", "early", "attention", "early-moddrop", "context", "mult")
COLUMNS = {  # (scheme, metric key, label, scale)
    "acc3": ("3class", "accuracy", "Acc-3", 100),
    "f1w3": ("3class", "f1_weighted", "F1-w (3)", 100),
    "bin_acc2_has0": ("2class_has0", "accuracy", "Acc-2 has0", 100),
    "bin_f1_has0": ("2class_has0", "f1_weighted", "F1 has0", 100),
    "bin_acc2_non0": ("2class_non0", "accuracy", "Acc-2 non0", 100),
    "bin_f1_non0": ("2class_non0", "f1_weighted", "F1 non0", 100),
    "acc2_has0": ("regression", "acc2_has0", "Acc-2 has0", 100),
    "f1_has0": ("regression", "f1_has0", "F1 has0", 100),
    "acc2_non0": ("regression", "acc2_non0", "Acc-2 non0", 100),
    "f1_non0": ("regression", "f1_non0", "F1 non0", 100),
    "mae": ("regression", "mae", "MAE", 1),
    "corr": ("regression", "corr", "Corr", 1),
}


def run_one(preset: str, scheme: str, seed: int, out: Path, extra: list[str], group: str = "mosi") -> Path:
    from modalfuse.training.run import train

    folder = out / preset / scheme / f"seed{seed}"
    if (folder / "metrics.json").is_file():
        return folder
    if folder.exists():  # an unfinished run: start it again from scratch
        import shutil

        shutil.rmtree(folder)
    overrides = [f"data.label_scheme={scheme}", f"train.seed={seed}", "train.progress=none", *extra]
    train(f"{group}/{preset}", overrides=overrides, run_dir=folder, quiet=True)
    return folder


def missing_modality(folder: Path) -> dict[str, float]:
    """Test accuracy (3class) / MAE (regression) with each modality removed in turn, and with none."""
    import torch

    from modalfuse.training.loop import predict_split, split_metrics
    from modalfuse.training.run import load_run

    cfg, model, data = load_run(folder)
    key = "accuracy" if data.task.kind == "multiclass" else "mae"
    result = {"none": split_metrics(data.task, predict_split(model, data.test, data.task, batch_size=512,
                                                             device=torch.device("cpu")), cfg)[key]}
    mods = sorted(data.modalities) if not hasattr(model, "encoders") else model.modalities
    for m in mods:
        handle, transform = None, None
        if hasattr(model, "encoders"):  # FusionClassifier: zero the state, as modality_dropout does
            handle = model.encoders[m].register_forward_hook(lambda mod, inp, out: torch.zeros_like(out))
        else:  # MulT: zero the input, as its modality_dropout does
            transform = lambda f, m=m: {k: (torch.zeros_like(v) if k == m else v) for k, v in f.items()}
        pred = predict_split(model, data.test, data.task, batch_size=512, device=torch.device("cpu"),
                             transform=transform)
        result[f"no {m}"] = split_metrics(data.task, pred, cfg)[key]
        if handle is not None:
            handle.remove()
    return result


def fmt(values: list[float], scale: float) -> str:
    if not values:
        return "–"
    a = np.asarray(values, float) * scale
    digits = 1 if scale == 100 else 3
    return f"{a.mean():.{digits}f} ± {a.std(ddof=1) if len(a) > 1 else 0.0:.{digits}f}"


def table(out: Path, presets: list[str], seeds: list[int], schemes: list[str], valid: bool = False) -> str:
    """Test metrics per preset; ``valid``: each classification accuracy also on the validation split,
    as ``test (valid)``, and the mean best epoch (for validation-selected presets)."""
    cols = [c for c, v in COLUMNS.items() if v[0] in schemes]
    binary = any(s.startswith("2class") for s in schemes)
    label = lambda c: COLUMNS[c][2] + (" (reg)" if binary and COLUMNS[c][0] == "regression" else "")
    header = ["preset", *[label(c) + (" (valid)" if valid and COLUMNS[c][1] == "accuracy" else "") for c in cols],
              *(["best epoch"] if valid else []), "params", "train s"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for p in presets:
        vals: dict[str, list[float]] = {c: [] for c in cols}
        vvals: dict[str, list[float]] = {c: [] for c in cols}
        params, seconds, epochs = set(), [], []
        for scheme in schemes:
            for s in seeds:
                folder = out / p / scheme / f"seed{s}"
                if not (folder / "metrics.json").is_file():
                    continue
                metrics = json.loads((folder / "metrics.json").read_text())
                test = metrics["test"]
                params.add(json.loads((folder / "data.json").read_text())["parameters"])
                run = json.loads((folder / "run.json").read_text())
                seconds.append(run["train_seconds"])
                epochs.append(run.get("best_epoch", 0))
                for c in cols:
                    if COLUMNS[c][0] == scheme:
                        vals[c].append(test[COLUMNS[c][1]])
                        vvals[c].append(metrics["valid"].get(COLUMNS[c][1], np.nan))
        cells = [fmt(vals[c], COLUMNS[c][3]) + (f" ({fmt(vvals[c], COLUMNS[c][3]).split(' ')[0]})"
                                                  if valid and COLUMNS[c][1] == "accuracy" else "") for c in cols]
        if valid:
            cells.append(f"{np.mean(epochs):.1f}" if epochs else "–")
        par = "/".join(f"{n:,}" for n in sorted(params)) or "–"
        lines.append(f"| {p} | " + " | ".join(cells) + f" | {par} | {np.mean(seconds) if seconds else 0:.0f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--group", default="mosi", help="preset folder: mosi, or mosi-words (the word-sequence presets)")
    ap.add_argument("--valid", action="store_true", help="also show validation accuracy and the best epoch")
    ap.add_argument("--presets", nargs="+", default=list(PRESETS))
    ap.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2, 3, 4])
    ap.add_argument("--schemes", nargs="+", default=["3class", "2class_has0", "2class_non0"])
    ap.add_argument("--out", type=Path, default=Path("runs/mosi-table"))
    ap.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--missing", action="store_true", help="also print the missing-modality table")
    ap.add_argument("--table-only", action="store_true", help="only read existing run folders")
    args = ap.parse_args(argv)

    import torch

    torch.set_num_threads(args.threads)
    if not args.table_only:
        for p in args.presets:
            for scheme in args.schemes:
                for s in args.seeds:
                    folder = run_one(p, scheme, s, args.out, args.overrides, args.group)
                    test = json.loads((folder / "metrics.json").read_text())["test"]
                    key = "accuracy" if scheme != "regression" else "acc2_has0"
                    print(f"{p:<14} {scheme:<12} seed {s}  test {key} {test[key]:.4f}", file=sys.stderr, flush=True)
    print(table(args.out, args.presets, args.seeds, args.schemes, args.valid))
    if args.missing:
        print()
        for scheme in args.schemes:
            key = {"3class": "Acc-3", "regression": "MAE"}.get(scheme, "Acc-2" if scheme.startswith("2class") else "accuracy")
            rows: dict[str, dict[str, list[float]]] = {}
            for p in args.presets:
                for s in args.seeds:
                    folder = args.out / p / scheme / f"seed{s}"
                    if not (folder / "metrics.json").is_file():
                        continue
                    res = missing_modality(folder)
                    if len(res) < 3:  # unimodal: nothing to remove
                        break
                    for k, v in res.items():
                        rows.setdefault(p, {}).setdefault(k, []).append(v)
            if not rows:
                continue
            names = list(next(iter(rows.values())))
            scale = 100 if scheme != "regression" else 1
            print(f"| preset ({scheme}, test {key}) | " + " | ".join(names) + " |")
            print("|" + "---|" * (len(names) + 1))
            for p, r in rows.items():
                print(f"| {p} | " + " | ".join(fmt(r[n], scale) for n in names) + " |")
            print()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
