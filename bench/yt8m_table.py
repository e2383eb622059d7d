"""Read finished YouTube-8M run folders and print the results table of docs/results.md.

    python bench/yt8m_table.py RUNS_DIR [RUNS_DIR ...] [--split test] [--json]

Every folder under the given roots that holds a finished run (``metrics.json``) of the ``yt8m``
dataset is read. Runs are grouped by their whole saved config except the seed, the data globs and
the settings that do not change results (threads, progress, workers, device); the seeds of a group
give mean +- std (ddof 1; a single seed shows no std). Each group is named by its preset (the run
folder's name without its timestamp) and the settings in which its config differs from that preset
(``--set`` overrides, read back from ``config.yaml``). Columns: parameters,
seeds, epochs run (best epoch), training seconds (mean), valid GAP, and GAP, mAP, Hit@1, PERR and
micro-F1 on ``--split``. Unfinished runs are listed on stderr with their last logged epoch, so a
table never silently drops a run that is still going.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np
import yaml

IGNORED = {"train.seed", "train.threads", "train.progress", "train.num_workers", "train.device",
           "data.train", "data.valid", "data.test"}
METRICS = (("gap", "GAP"), ("map", "mAP"), ("hit_at_1", "Hit@1"), ("perr", "PERR"), ("f1_micro", "F1"))
STAMP = re.compile(r"-\d{8}-\d{6}(-\d+)?$")


def _flat(d: dict, prefix: str = "") -> dict[str, object]:
    out: dict[str, object] = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        out.update(_flat(v, key + ".") if isinstance(v, dict) else {key: v})
    return out


def _preset(name: str, model: str) -> dict[str, object]:
    """The preset a run folder's name points at, with defaults filled in as the run saved it."""
    from modalfuse.config import build_config, load_yaml
    from modalfuse.listing import PRESET_DIR

    stem = name[: -len(model) - 1] if name.endswith("-" + model) and name != model else name
    found = [p for p in (PRESET_DIR / "yt8m" / f"{stem}.yaml", PRESET_DIR / f"{stem}.yaml") if p.is_file()]
    return _flat(build_config(load_yaml(found[0])).to_dict()) if found else {}


def _overrides(cfg: dict, name: str) -> str:
    preset = _preset(name, cfg["model"]["name"])
    if not preset:
        return "(no preset)"
    return " ".join(f"{k}={v}" for k, v in _flat(cfg).items() if k not in IGNORED and preset.get(k) != v)


def _read(run: Path) -> dict:
    from modalfuse.config import build_config

    # Rebuilt through the current schema, so that runs saved before a key existed get its default.
    cfg = build_config(yaml.safe_load((run / "config.yaml").read_text())).to_dict()
    info = json.loads((run / "data.json").read_text())
    return {"cfg": cfg, "params": info["parameters"], "metrics": json.loads((run / "metrics.json").read_text()),
            "run": json.loads((run / "run.json").read_text()), "name": _name(STAMP.sub("", run.name), cfg["model"]["name"])}


def _name(stem_model: str, model: str) -> str:
    """``fc-early-fc-early`` (preset and model) -> ``fc-early``; ``yt8m-sample-attend-fusion`` stays."""
    return model if stem_model == f"{model}-{model}" else stem_model


def _fmt(values: list[float], digits: int = 4) -> str:
    if len(values) == 1:
        return f"{values[0]:.{digits}f}"
    return f"{np.mean(values):.{digits}f} ± {np.std(values, ddof=1):.{digits}f}"


def _unfinished(roots: list[Path]) -> list[str]:
    out = []
    for cfg in sorted(p for r in roots for p in r.rglob("config.yaml")):
        run = cfg.parent
        if (run / "metrics.json").exists() or not (run / "metrics.jsonl").exists():
            continue
        rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines() if line.strip()]
        if rows:
            best = max(rows, key=lambda r: r.get("valid_gap", -1))
            out.append(f"{run}: unfinished, {len(rows)} epochs logged, best valid GAP {best.get('valid_gap', 0):.4f} "
                       f"at epoch {best['epoch']}")
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("roots", nargs="+", type=Path)
    ap.add_argument("--split", default="test", choices=["valid", "test"])
    ap.add_argument("--json", action="store_true", help="one JSON object per group instead of Markdown")
    args = ap.parse_args()
    groups: dict[tuple, list[dict]] = defaultdict(list)
    for m in sorted(p for r in args.roots for p in r.rglob("metrics.json")):
        r = _read(m.parent)
        if r["cfg"]["data"]["name"] != "yt8m":
            continue
        key = json.dumps({k: v for k, v in _flat(r["cfg"]).items() if k not in IGNORED}, sort_keys=True, default=str)
        groups[(r["name"], key)].append(r)
    rows = []
    for (name, _), runs in sorted(groups.items()):
        split = [r["metrics"][args.split] for r in runs]
        rows.append({
            "preset": name, "settings": _overrides(runs[0]["cfg"], name), "parameters": runs[0]["params"],
            "seeds": sorted(r["cfg"]["train"]["seed"] for r in runs),
            "epochs_run": [r["run"]["epochs_run"] for r in runs], "best_epoch": [r["run"]["best_epoch"] for r in runs],
            "train_seconds": float(np.mean([r["run"]["train_seconds"] for r in runs])),
            "valid_gap": [r["metrics"]["valid"]["gap"] for r in runs],
            **{k: [s[k] for s in split] for k, _ in METRICS},
        })
    if args.json:
        for row in rows:
            print(json.dumps(row))
    else:
        head = ["preset", "settings (vs preset)", "parameters", "seeds", "epochs run (best)", "train s", "valid GAP",
                *[f"{args.split} {label}" for _, label in METRICS]]
        print("| " + " | ".join(head) + " |")
        print("|" + "|".join(["---"] * 5 + ["---:"] * (len(head) - 5)) + "|")
        for row in rows:
            epochs = ", ".join(f"{a} ({b})" for a, b in zip(row["epochs_run"], row["best_epoch"]))
            print("| " + " | ".join([
                row["preset"], row["settings"] or "as shipped", f"{row['parameters'] / 1e6:.1f}M",
                ",".join(map(str, row["seeds"])), epochs, f"{row['train_seconds']:.0f}", _fmt(row["valid_gap"]),
                *[_fmt(row[k]) for k, _ in METRICS]]) + " |")
    for line in _unfinished(args.roots):
        print(line, file=sys.stderr)


if __name__ == "__main__":
    main()
