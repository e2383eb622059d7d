"""The report's figures, drawn with matplotlib (Agg) from what run folders hold.

Each ``plot_*`` function takes the runs, writes one PNG atomically and returns its file name, or
``None`` when it does not apply (confusion matrices need a multiclass task; attention needs a model
that returns attention weights).
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..metrics import direction

if TYPE_CHECKING:
    from .render import Run

LABELS = {
    "accuracy": "accuracy (fraction correct)", "f1_weighted": "weighted F1 (0–1)", "f1_macro": "macro F1 (0–1)",
    "acc2_has0": "binary accuracy, zeros non-negative (fraction)", "acc2_non0": "binary accuracy, zeros excluded (fraction)",
    "f1_has0": "binary weighted F1, zeros non-negative (0–1)", "f1_non0": "binary weighted F1, zeros excluded (0–1)",
    "acc5": "5-class accuracy (fraction)", "acc7": "7-class accuracy (fraction)",
    "mae": "mean absolute error (label units)", "corr": "Pearson correlation (−1–1)",
    "gap": "GAP@k (0–1)", "map": "mean average precision (0–1)", "hit_at_1": "Hit@1 (fraction)", "perr": "PERR (fraction)",
}
MAX_BAR_METRICS = 6


def metric_label(name: str) -> str:
    """Axis label with units; names not listed say which way is better."""
    return LABELS.get(name, f"{name} ({'higher' if direction(name) == 'max' else 'lower'} is better)")


def _plt() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _colors(labels: list[str]) -> dict[str, Any]:
    plt = _plt()
    cmap = plt.get_cmap("tab10" if len(labels) <= 10 else "tab20")
    return {lab: cmap(i % cmap.N) for i, lab in enumerate(labels)}


def _save(fig: Any, folder: Path, name: str) -> str:
    tmp = folder / f".{name}.{os.getpid()}.tmp"
    fig.savefig(tmp, format="png", dpi=120, bbox_inches="tight")
    _plt().close(fig)
    os.replace(tmp, folder / name)
    return name


def _by_label(runs: list[Run], labels: list[str]) -> dict[str, list[Run]]:
    return {lab: [r for r in runs if r.label == lab] for lab in labels if any(r.label == lab for r in runs)}


def _xticks(ax: Any, labels: list[str]) -> None:
    ax.set_xticks(range(len(labels)))
    long = max(len(x) for x in labels) > 6 or len(labels) > 5
    ax.set_xticklabels(labels, rotation=35 if long else 0, ha="right" if long else "center")


def _seeds_text(runs: list[Run]) -> str:
    n = len({r.seed for r in runs})
    return f"{n} seed{'s' if n > 1 else ''}"


# ---------------------------------------------------------------------------------------------
# The figures
# ---------------------------------------------------------------------------------------------

def plot_metric_bars(runs: list[Run], labels: list[str], split: str, metrics: list[str], folder: Path) -> str:
    """One panel per metric: mean over seeds per model, error bars = standard deviation."""
    plt = _plt()
    groups = _by_label(runs, labels)
    names = list(groups)
    metrics = metrics[:MAX_BAR_METRICS]
    cols = min(3, len(metrics))
    rows = math.ceil(len(metrics) / cols)
    width = max(4.0, 0.55 * len(names) + 1.5)
    fig, axes = plt.subplots(rows, cols, figsize=(width * cols, 3.8 * rows), squeeze=False, layout="constrained")
    colors = _colors(labels)
    for ax, m in zip(axes.flat, metrics):
        values = [[r.metrics[split][m] for r in groups[n] if m in r.metrics[split]] for n in names]
        means = [np.mean(v) if v else np.nan for v in values]
        stds = [np.std(v, ddof=1) if len(v) > 1 else 0.0 for v in values]
        ax.bar(range(len(names)), means, yerr=stds, capsize=4, color=[colors[n] for n in names],
               error_kw={"elinewidth": 1.2, "ecolor": "black"}, label="mean ± std over seeds")
        finite = [x for x in means if not np.isnan(x)]
        if finite and direction(m) == "max" and min(finite) >= 0:
            top = max(mu + s for mu, s in zip(means, stds) if not np.isnan(mu))
            lo = max(0.0, min(mu - s for mu, s in zip(means, stds) if not np.isnan(mu)) - 0.1 * (top or 1))
            ax.set_ylim(lo, top + 0.08 * (top - lo or 1))  # differences, not the distance from zero
        ax.set_title(f"{split} {m} ({'higher' if direction(m) == 'max' else 'lower'} is better)")
        ax.set_ylabel(metric_label(m))
        _xticks(ax, names)
        ax.grid(axis="y", alpha=0.3)
    for ax in list(axes.flat)[len(metrics):]:
        ax.axis("off")
    fig.suptitle(f"Metrics per model ({split} split, mean ± std over {_seeds_text(runs)})")
    return _save(fig, folder, "metrics.png")


def _loss_name(run: Run) -> str:
    loss = run.config["train"].get("loss", "auto")
    if loss == "auto":
        loss = {"multiclass": "cross_entropy", "multilabel": "bce", "regression": "l1"}[run.data["task"]["kind"]]
    return {"cross_entropy": "cross-entropy (nats)", "bce": "binary cross-entropy (nats)", "l1": "L1 (label units)",
            "mse": "MSE (label units²)"}[loss]


def plot_training_curves(runs: list[Run], labels: list[str], monitor: str, folder: Path) -> str:
    """Training loss and validation ``monitor`` per epoch: mean over seeds, band = min..max."""
    plt = _plt()
    groups = _by_label(runs, labels)
    colors = _colors(labels)
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.2), layout="constrained")
    for label, group in groups.items():
        for ax, key in zip(axes, ("train_loss", f"valid_{monitor}")):
            epochs = sorted({row["epoch"] for r in group for row in r.history if key in row})
            per = [[row[key] for r in group for row in r.history if row["epoch"] == e and key in row] for e in epochs]
            mean = np.array([np.mean(v) for v in per])
            ax.plot(epochs, mean, color=colors[label], label=label, marker="o" if len(epochs) < 8 else None, ms=3)
            if len(group) > 1:
                ax.fill_between(epochs, [min(v) for v in per], [max(v) for v in per], color=colors[label], alpha=0.15)
    axes[0].set_title("Training loss as optimised (late fusion: sum over modalities)"
                      if any(r.config["model"].get("fusion", {}).get("name") == "late" for r in runs) else "Training loss")
    axes[0].set_ylabel(f"training loss, {_loss_name(runs[0])}")
    axes[1].set_title(f"Validation {monitor}")
    axes[1].set_ylabel(f"validation {metric_label(monitor)}")
    for ax in axes:
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
        ax.xaxis.get_major_locator().set_params(integer=True)
    axes[1].legend(title="model", loc="center left", bbox_to_anchor=(1.02, 0.5), fontsize=8)
    band = "; band: min–max over seeds" if len({r.seed for r in runs}) > 1 else ""
    fig.suptitle(f"Training curves (mean over {_seeds_text(runs)}{band})")
    return _save(fig, folder, "training_curves.png")


def plot_confusion(runs: list[Run], labels: list[str], split: str, folder: Path) -> str | None:
    """Row-normalised confusion matrix per model, counts summed over seeds."""
    if runs[0].data["task"]["kind"] != "multiclass":
        return None
    plt = _plt()
    groups = _by_label(runs, labels)
    k = runs[0].data["task"]["num_classes"]
    classes = runs[0].data["task"].get("class_names") or [str(c) for c in range(k)]
    cols = min(3, len(groups))
    rows = math.ceil(len(groups) / cols)
    side = max(3.2, 0.55 * k + 2.2)
    fig, axes = plt.subplots(rows, cols, figsize=(side * cols + 1.2, side * rows), squeeze=False, layout="constrained")
    image = None
    for ax, (label, group) in zip(axes.flat, groups.items()):
        cm = sum(np.asarray(r.metrics[split]["confusion_matrix"], dtype=float) for r in group)
        pct = 100 * cm / np.maximum(cm.sum(1, keepdims=True), 1)
        image = ax.imshow(pct, vmin=0, vmax=100, cmap="Blues")
        if k <= 12:
            for i in range(k):
                for j in range(k):
                    ax.text(j, i, f"{pct[i, j]:.0f}", ha="center", va="center", fontsize=8,
                            color="white" if pct[i, j] > 60 else "black")
        ax.set_title(label)
        ax.set_xticks(range(k))
        ax.set_yticks(range(k))
        ax.set_xticklabels(classes, rotation=35, ha="right", fontsize=8)
        ax.set_yticklabels(classes, fontsize=8)
        ax.set_xlabel("predicted class")
        ax.set_ylabel("true class")
    for ax in list(axes.flat)[len(groups):]:
        ax.axis("off")
    fig.colorbar(image, ax=axes, shrink=0.8, label="% of the true class")
    fig.suptitle(f"Confusion matrices ({split} split, summed over {_seeds_text(runs)}, % per row)")
    return _save(fig, folder, "confusion_matrices.png")


def _log_axis(ax: Any) -> None:
    """Log x axis with ticks at 1, 2, 5 x 10^k in engineering notation (3k, 20M): no crowded labels."""
    from matplotlib.ticker import EngFormatter, LogLocator, NullFormatter

    ax.set_xscale("log")
    ax.xaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    ax.xaxis.set_major_formatter(EngFormatter(sep=""))
    ax.xaxis.set_minor_formatter(NullFormatter())


def _frontier(points: list[tuple[float, float]], better: str) -> list[tuple[float, float]]:
    """Pareto-optimal points: no other model is at least as small *and* scores better."""
    sign = 1 if better == "max" else -1
    best, front = -math.inf, []
    for x, y in sorted(points, key=lambda p: (p[0], -sign * p[1])):
        if sign * y > best:
            best = sign * y
            front.append((x, y))
    return front


def plot_efficiency(runs: list[Run], labels: list[str], split: str, monitor: str, folder: Path) -> str:
    """Score against parameters, FLOPs per sample and inference throughput, with the frontier."""
    plt = _plt()
    groups = _by_label(runs, labels)
    colors = _colors(labels)
    panels = (("parameters", "parameters (count, log scale)", "min"),
              ("flops_per_sample", "FLOPs per sample (log scale)", "min"),
              ("inference_samples_per_s", "inference throughput (samples/s at batch 256, log scale)", "max"))
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.4), layout="constrained")
    markers = "osD^vP*Xh<>p"
    for ax, (key, xlabel, cheap) in zip(axes, panels):
        points = []
        for i, (label, group) in enumerate(groups.items()):
            x = float(np.mean([r.analysis["efficiency"][key] for r in group]))
            ys = [r.metrics[split][monitor] for r in group]
            y = float(np.mean(ys))
            ax.errorbar(x, y, yerr=np.std(ys, ddof=1) if len(ys) > 1 else None, fmt=markers[i % len(markers)],
                        color=colors[label], capsize=3, ms=7, label=label)
            points.append((x if cheap == "min" else -x, y))
        front = _frontier(points, direction(monitor))
        fx = [p[0] if cheap == "min" else -p[0] for p in front]
        ax.plot(fx, [p[1] for p in front], "--", color="grey", lw=1, zorder=0, label="efficiency frontier")
        if all(p[0] != 0 for p in points):
            _log_axis(ax)
        ax.set_xlabel(xlabel)
        ax.set_ylabel(f"{split} {metric_label(monitor)}")
        ax.grid(alpha=0.3, which="both")
    axes[0].set_title("Score vs size")
    axes[1].set_title("Score vs compute")
    axes[2].set_title("Score vs speed")
    axes[2].legend(title="model", loc="center left", bbox_to_anchor=(1.02, 0.5), fontsize=8)
    fig.suptitle(f"Efficiency: {split} {monitor} (mean ± std over {_seeds_text(runs)}) against cost")
    return _save(fig, folder, "efficiency.png")


def plot_attention(runs: list[Run], labels: list[str], folder: Path) -> str | None:
    """Mean attention weight per modality (columns) and class (rows), one heatmap per model."""
    groups = {lab: [r for r in g if r.analysis.get("attention")] for lab, g in _by_label(runs, labels).items()}
    groups = {lab: g for lab, g in groups.items() if g}
    if not groups:
        return None
    plt = _plt()
    cols = min(3, len(groups))
    rows = math.ceil(len(groups) / cols)
    first = next(iter(groups.values()))[0].analysis["attention"]
    n_rows, n_cols = len(first["groups"]), len(first["keys"])
    fig, axes = plt.subplots(rows, cols, figsize=(max(3.6, 1.1 * n_cols + 2.6) * cols + 1.2,
                                                  max(2.8, 0.45 * n_rows + 1.8) * rows),
                             squeeze=False, layout="constrained")
    image = None
    for ax, (label, group) in zip(axes.flat, groups.items()):
        att = group[0].analysis["attention"]
        w = np.mean([r.analysis["attention"]["weights"] for r in group], axis=0)
        image = ax.imshow(w, vmin=0, vmax=max(1.0, float(w.max())), cmap="viridis", aspect="auto")
        for i in range(w.shape[0]):
            for j in range(w.shape[1] if w.shape[1] <= 8 else 0):  # many keys (tokens): colour only
                ax.text(j, i, f"{w[i, j]:.2f}", ha="center", va="center", fontsize=8,
                        color="black" if w[i, j] > 0.6 else "white")
        ax.set_xticks(range(len(att["keys"])))
        ax.set_xticklabels(att["keys"], rotation=0 if len(att["keys"]) <= 8 else 90)
        ax.set_yticks(range(len(att["groups"])))
        ax.set_yticklabels([f"{g} (n={c})" for g, c in zip(att["groups"], att["counts"])], fontsize=8)
        tokens = any(k.startswith("key ") for k in att["keys"])
        ax.set_xlabel("token (attention key; averaged over modalities and queries)" if tokens
                      else "modality (attention key)")
        ax.set_ylabel("true class")
        ax.set_title(label)
    for ax in list(axes.flat)[len(groups):]:
        ax.axis("off")
    fig.colorbar(image, ax=axes, shrink=0.8, label="mean attention weight (rows sum to 1)")
    fig.suptitle(f"Attention weights per key, averaged per true class (test split, mean over {_seeds_text(runs)})")
    return _save(fig, folder, "attention.png")


def ablation_drops(runs: list[Run], labels: list[str], monitor: str) -> dict[str, dict[str, list[float]]]:
    """``{model: {modality: [drop per seed]}}``; a drop is positive when zeroing makes the score worse."""
    sign = 1 if direction(monitor) == "max" else -1
    out: dict[str, dict[str, list[float]]] = {}
    for label, group in _by_label(runs, labels).items():
        per: dict[str, list[float]] = {}
        for r in group:
            ab = r.analysis["ablation"]
            for m, metrics in ab["zeroed"].items():
                per.setdefault(m, []).append(sign * (ab["full"][monitor] - metrics[monitor]))
        out[label] = per
    return out


def plot_ablation(runs: list[Run], labels: list[str], split: str, monitor: str, folder: Path) -> str:
    """Grouped bars: per model, the score drop when each modality is zeroed at test time."""
    plt = _plt()
    drops = ablation_drops(runs, labels, monitor)
    names = list(drops)
    modalities = sorted({m for per in drops.values() for m in per})
    fig, ax = plt.subplots(figsize=(max(6.0, 0.25 * len(names) * len(modalities) + 2.5), 4.4), layout="constrained")
    width = 0.8 / max(len(modalities), 1)
    cmap = plt.get_cmap("Set2")
    for j, m in enumerate(modalities):
        x = np.arange(len(names)) + (j - (len(modalities) - 1) / 2) * width
        mean = [np.mean(drops[n][m]) if m in drops[n] else 0.0 for n in names]
        std = [np.std(drops[n][m], ddof=1) if len(drops[n].get(m, [])) > 1 else 0.0 for n in names]
        ax.bar(x, mean, width, yerr=std, capsize=2, label=f"{m} zeroed", color=cmap(j))
    ax.axhline(0, color="black", lw=0.8)
    _xticks(ax, names)
    ax.set_ylabel(f"drop in {split} {monitor} ({metric_label(monitor).split('(')[-1].rstrip(')')})")
    ax.set_xlabel("model")
    ax.grid(axis="y", alpha=0.3)
    ax.legend(title="modality", loc="center left", bbox_to_anchor=(1.01, 0.5), fontsize=8)
    ax.set_title(f"Modality ablation: {split} {monitor} lost when one modality is zeroed at test time\n"
                 f"(positive = the model relies on it; mean ± std over {_seeds_text(runs)})")
    return _save(fig, folder, "ablation.png")


def render_all(runs: list[Run], labels: list[str], split: str, monitor: str, folder: Path) -> list[tuple[str, str]]:
    """Every figure that applies: ``[(file name, caption), ...]``."""
    from .render import metric_names

    names = metric_names(runs, split)
    metrics = [monitor, *[m for m in names if m != monitor]]
    figures = [
        (plot_metric_bars(runs, labels, split, metrics, folder), "Metrics per model (error bars: std over seeds)"),
        (plot_training_curves(runs, labels, monitor, folder), "Training curves"),
        (plot_confusion(runs, labels, split, folder), "Confusion matrices"),
        (plot_efficiency(runs, labels, split, monitor, folder), "Efficiency frontier"),
        (plot_attention(runs, labels, folder), "Attention weights per modality and class"),
        (plot_ablation(runs, labels, split, monitor, folder), "Modality ablation"),
    ]
    return [(name, caption) for name, caption in figures if name is not None]
