"""The report's figures, drawn with matplotlib (Agg) from what run folders hold.

Each ``plot_*`` function takes the runs, writes one PNG atomically and returns its file name, or
``None`` when it does not apply (confusion matrices need a multiclass task; attention needs a model
that returns attention weights).
"""

from __future__ import annotations

import math
import textwrap
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..metrics import direction
from ..training.runfolder import atomic_write
from .runs import Run, by_label, seeds_text

if TYPE_CHECKING:
    from .evidence import Paired

LABELS = {
    "accuracy": "accuracy (fraction correct)", "f1_weighted": "weighted F1 (0–1)", "f1_macro": "macro F1 (0–1)",
    "acc2_has0": "binary accuracy, zeros non-negative (fraction)", "acc2_non0": "binary accuracy, zeros excluded (fraction)",
    "f1_has0": "binary weighted F1, zeros non-negative (0–1)", "f1_non0": "binary weighted F1, zeros excluded (0–1)",
    "acc5": "5-class accuracy (fraction)", "acc7": "7-class accuracy (fraction)",
    "mae": "mean absolute error (label units)", "corr": "Pearson correlation (−1–1)",
    "acc3_band": "3-class accuracy, neutral band (fraction)",
    "gap": "GAP@k (0–1)", "map": "mean average precision (0–1)", "hit_at_1": "Hit@1 (fraction)", "perr": "PERR (fraction)",
}
MAX_BAR_METRICS = 9


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
    try:
        atomic_write(folder / name, lambda tmp: fig.savefig(tmp, format="png", dpi=120, bbox_inches="tight"))
    finally:
        _plt().close(fig)
    return name


def _by_label(runs: list[Run], labels: list[str]) -> dict[str, list[Run]]:
    return by_label(runs, labels)


def _xticks(ax: Any, labels: list[str]) -> None:
    ax.set_xticks(range(len(labels)))
    long = max(len(x) for x in labels) > 6 or len(labels) > 5
    ax.set_xticklabels(labels, rotation=35 if long else 0, ha="right" if long else "center")


def _seeds_text(runs: list[Run]) -> str:
    n = len({r.seed for r in runs})
    return f"{n} seed{'s' if n > 1 else ''}"


def _values(runs: list[Run], split: str) -> dict[Path, dict[str, float]]:
    from .evidence import run_values

    return {r.folder: run_values(r, split) for r in runs}


BASELINE_STYLES = ("--", ":")


# ---------------------------------------------------------------------------------------------
# The figures
# ---------------------------------------------------------------------------------------------

def plot_metric_bars(runs: list[Run], labels: list[str], split: str, metrics: list[str], folder: Path,
                     baselines: list[dict[str, Any]] | None = None) -> str:
    """One panel per metric: bars from zero (mean over seeds; error bars = std when there are several),
    baselines as horizontal lines."""
    plt = _plt()
    groups = _by_label(runs, labels)
    vals = _values(runs, split)
    names = list(groups)
    metrics = metrics[:MAX_BAR_METRICS]
    cols = min(3, len(metrics))
    rows = math.ceil(len(metrics) / cols)
    width = max(4.0, 0.55 * len(names) + 1.5)
    fig, axes = plt.subplots(rows, cols, figsize=(width * cols, 3.8 * rows), squeeze=False, layout="constrained")
    colors = _colors(labels)
    several = max(len(g) for g in groups.values()) > 1
    for ax, m in zip(axes.flat, metrics):
        values = [[vals[r.folder][m] for r in groups[n] if m in vals[r.folder]] for n in names]
        means = [np.mean(v) if v else np.nan for v in values]
        stds = [np.std(v, ddof=1) if len(v) > 1 else 0.0 for v in values]
        ax.bar(range(len(names)), means, yerr=stds if several else None, capsize=4, color=[colors[n] for n in names],
               error_kw={"elinewidth": 1.2, "ecolor": "black"})
        for b, style in zip(baselines or [], BASELINE_STYLES):
            if m in b and np.isfinite(b[m]):
                ax.axhline(b[m], color="black", ls=style, lw=1, label=b["model"])
        ax.axhline(0, color="black", lw=0.6)
        ax.set_title(f"{split} {m} ({'higher' if direction(m) == 'max' else 'lower'} is better)")
        ax.set_ylabel(metric_label(m))
        _xticks(ax, names)
        ax.grid(axis="y", alpha=0.3)
    for ax in list(axes.flat)[len(metrics):]:
        ax.axis("off")
    n = max(len(g) for g in groups.values())
    if baselines:  # one legend for every panel
        from matplotlib.lines import Line2D

        fig.legend(handles=[Line2D([], [], color="black", ls=style, lw=1, label=b["model"])
                            for b, style in zip(baselines, BASELINE_STYLES)], loc="outside lower center",
                   ncol=len(baselines), fontsize=8, title="baselines")
    fig.suptitle(f"Metrics per model ({split} split, {seeds_text(n)}{'; error bars: std' if several else ''})")
    return _save(fig, folder, "metrics.png")


def plot_forest(p: Paired, folder: Path, max_metrics: int = 9) -> str:
    """Each model's difference from the reference with its 95 % interval, one panel per metric."""
    plt = _plt()
    metrics = p.metrics[:max_metrics]
    models = list(dict.fromkeys(c.model for c in p.rows if c.reference == p.reference))
    cols = min(3, len(metrics))
    rows = math.ceil(len(metrics) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.6 * cols, 0.42 * len(models) * rows + 1.6 * rows),
                             squeeze=False, layout="constrained")
    color = {"better": "tab:green", "worse": "tab:red", "indistinguishable": "grey"}
    for ax, m in zip(axes.flat, metrics):
        cell = {c.model: c for c in p.rows if c.metric == m and c.reference == p.reference}
        for i, model in enumerate(models):
            c = cell.get(model)
            if c is None or not np.isfinite(c.ci_low):
                continue
            ax.errorbar(c.delta, i, xerr=[[c.delta - c.ci_low], [c.ci_high - c.delta]], fmt="o", capsize=3,
                        color=color[c.verdict], ms=5)
        ax.axvline(0, color="black", lw=0.8)
        ax.set_yticks(range(len(models)))
        ax.set_yticklabels(models, fontsize=8)
        ax.invert_yaxis()
        better = "right" if direction(m) == "max" else "left"
        ax.set_title(f"{m}: model − {p.reference}\n({better} is better)", fontsize=9)
        ax.grid(axis="x", alpha=0.3)
    for ax in list(axes.flat)[len(metrics):]:
        ax.axis("off")
    from matplotlib.lines import Line2D

    alpha = getattr(p, "alpha", 0.05)
    meaning = {"better": f"better (Holm-adjusted p < {alpha:g})", "worse": f"worse (Holm-adjusted p < {alpha:g})",
               "indistinguishable": f"indistinguishable: Holm-adjusted p ≥ {alpha:g}, or too few seeds for a verdict "
                                    "(report.md says which); so a grey interval can still exclude 0"}
    handles = [Line2D([], [], marker="o", ls="", color=v, label=meaning[k]) for k, v in color.items()]
    fig.legend(handles=handles, loc="outside lower center", ncol=1 if cols < 3 else 3, fontsize=8,
               title="colour = verdict (the interval is per comparison, not adjusted for multiple comparisons)")
    fig.suptitle(f"Differences from {p.reference} with 95 % t intervals (seed + paired test-set variance; "
                 f"{p.examples} test examples)")
    return _save(fig, folder, "forest.png")


def _loss_name(run: Run) -> str:
    loss = run.config["train"].get("loss", "auto")
    if loss == "auto":
        loss = {"multiclass": "cross_entropy", "multilabel": "bce", "regression": "l1"}[run.data["task"]["kind"]]
    return {"cross_entropy": "cross-entropy (nats)", "bce": "binary cross-entropy (nats)", "l1": "L1 (label units)",
            "mse": "MSE (label units²)"}.get(loss, loss)


def _stopped_at(run: Run) -> int | None:
    """The last epoch of a run that early stopping ended before ``train.epochs``, else None."""
    epochs = [int(row["epoch"]) for row in run.history if "epoch" in row]
    planned = run.config["train"].get("epochs")
    if not epochs or not isinstance(planned, int) or max(epochs) >= planned:
        return None
    return max(epochs)


def _mark_early_stops(ax: Any, group: list[Run]) -> None:
    """A dotted line where seeds stopped early, labelled with how many seeds stopped there."""
    stops: dict[int, list[int]] = {}
    for r in group:
        e = _stopped_at(r)
        if e is not None:
            stops.setdefault(e, []).append(r.seed)
    for e, seeds in sorted(stops.items()):
        ax.axvline(e, color="grey", ls=":", lw=1)
        text = f"seed {seeds[0]} stopped" if len(seeds) == 1 else f"{len(seeds)} seeds stopped"
        ax.text(e, 0.98, f" {text}", transform=ax.get_xaxis_transform(), rotation=90, va="top", ha="right",
                fontsize=6, color="dimgrey")


def plot_training_curves(runs: list[Run], labels: list[str], monitor: str, folder: Path) -> str:
    """One small panel per model (own y scales: a summed multi-term loss does not squash the others):
    training loss (left axis) and validation ``monitor`` (right axis) per epoch, mean over seeds,
    band = min..max over seeds when there are several."""
    plt = _plt()
    groups = _by_label(runs, labels)
    cols = min(3, len(groups))
    rows = math.ceil(len(groups) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.4 * cols, 3.0 * rows), squeeze=False, layout="constrained")
    for ax, (label, group) in zip(axes.flat, groups.items()):
        right = ax.twinx()
        for axis, key, color in ((ax, "train_loss", "tab:blue"), (right, f"valid_{monitor}", "tab:orange")):
            epochs = sorted({row["epoch"] for r in group for row in r.history if key in row})
            if not epochs:
                continue
            per = [[row[key] for r in group for row in r.history if row["epoch"] == e and key in row] for e in epochs]
            axis.plot(epochs, [np.mean(v) for v in per], color=color, marker="o" if len(epochs) < 12 else None, ms=3)
            if len(group) > 1:
                axis.fill_between(epochs, [min(v) for v in per], [max(v) for v in per], color=color, alpha=0.2)
            axis.tick_params(axis="y", labelcolor=color, labelsize=7)
        _mark_early_stops(ax, group)
        head = (group[0].config.get("model") or {}).get("head", {})
        summed = isinstance(head, dict) and head.get("name") == "vote"  # one loss term per modality
        ax.set_title(label + (" (loss: sum of per-modality losses)" if summed else ""), fontsize=9)
        ax.set_xlabel("epoch", fontsize=8)
        ax.grid(alpha=0.3)
        ax.xaxis.get_major_locator().set_params(integer=True)
    for ax in list(axes.flat)[len(groups):]:
        ax.axis("off")
    band = "; band: min–max over seeds" if len({r.seed for r in runs}) > 1 else ""
    stops = ("\ngrey dotted line: a seed stopped early there (patience); later epochs average the seeds still "
             "training" if any(_stopped_at(r) is not None for r in runs) else "")
    fig.suptitle(f"Training curves: blue = training loss, {_loss_name(runs[0])} (left axis); orange = validation "
                 f"{monitor} (right axis); mean over {_seeds_text(runs)}{band}{stops}", fontsize=10)
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


MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*", "<", ">")


def _markers(labels: list[str]) -> dict[str, str]:
    """A marker shape per model besides its colour: points that coincide stay distinguishable."""
    return {lab: MARKERS[i % len(MARKERS)] for i, lab in enumerate(labels)}


def _efficiency_point(group: list[Run], vals: dict[Path, dict[str, float]], key: str, monitor: str
                      ) -> tuple[float, float, Any, list[float]]:
    """(x, y, x error bar, y per seed) of one model in one efficiency panel."""
    x = float(np.mean([r.analysis["efficiency"][key] for r in group]))
    ys = [vals[r.folder][monitor] for r in group]
    xerr = None
    if key == "inference_samples_per_s":
        rounds = [v for r in group for v in r.analysis["efficiency"].get("inference_samples_per_s_rounds", [])]
        if rounds:
            x = float(np.median(rounds))
            xerr = [[x - min(rounds)], [max(rounds) - x]]
    return x, float(np.mean(ys)), xerr, ys


def plot_efficiency(runs: list[Run], labels: list[str], split: str, monitor: str, folder: Path,
                    baselines: list[dict[str, Any]] | None = None) -> str | None:
    """Score against parameters, FLOPs per sample and inference throughput (median over timed rounds,
    bar = the rounds' range): each model a colour and a marker shape named in one legend (no lines
    that could read as trends), no frontier (timing noise is not a trade-off)."""
    groups = {lab: [r for r in g if r.analysis] for lab, g in _by_label(runs, labels).items()}
    groups = {lab: g for lab, g in groups.items() if g}
    if not groups:
        return None
    plt = _plt()
    vals = _values(runs, split)
    colors = _colors(labels)
    panels = (("parameters", "parameters (count, log scale)"),
              ("flops_per_sample", "FLOPs per sample (log scale)"),
              ("inference_samples_per_s", "inference samples/s at batch 256 (log scale)"))
    fig, axes = plt.subplots(1, 3, figsize=(17, 5.2), layout="constrained")
    several = max(len(g) for g in groups.values()) > 1
    markers = _markers(labels)
    for ax, (key, xlabel) in zip(axes, panels):
        xs = []
        for label, group in groups.items():
            x, y, xerr, ys = _efficiency_point(group, vals, key, monitor)
            # hollow markers: a point drawn over another leaves the other visible
            ax.errorbar(x, y, yerr=np.std(ys, ddof=1) if len(ys) > 1 else None, xerr=xerr, fmt=markers[label],
                        color=colors[label], mfc="none", mew=1.5, capsize=3, ms=8, label=label)
            xs.append(x)
        for b, style in zip(baselines or [], BASELINE_STYLES):
            if monitor in b and np.isfinite(b[monitor]):
                ax.axhline(b[monitor], color="black", ls=style, lw=0.8, label=f"baseline: {b['model']}")
        if all(x > 0 for x in xs):
            _log_axis(ax)
        ax.set_xlabel(xlabel)
        ax.set_ylabel(f"{split} {metric_label(monitor)}")
        ax.grid(alpha=0.3, which="both")
    axes[0].set_title("Score vs size")
    axes[1].set_title("Score vs compute")
    axes[2].set_title("Score vs speed (bar: range over timed rounds)")
    handles, names = axes[0].get_legend_handles_labels()
    fig.legend(handles, names, loc="outside right center", fontsize=8, title="model (colour and shape)")
    n = max(len(g) for g in groups.values())
    fig.suptitle(f"Efficiency: {split} {monitor} ({seeds_text(n)}{'; bars: std' if several else ''}) against cost")
    return _save(fig, folder, "efficiency.png")


def plot_attention(runs: list[Run], labels: list[str], folder: Path) -> str | None:
    """Mean attention weight per modality (columns) and class (rows), one heatmap per model."""
    groups = {lab: [r for r in g if r.analysis and r.analysis.get("attention")] for lab, g in _by_label(runs, labels).items()}
    groups = {lab: g for lab, g in groups.items() if g}
    if not groups:
        return None
    plt = _plt()
    cols = min(3, len(groups))
    rows = math.ceil(len(groups) / cols)
    first = next(iter(groups.values()))[0].analysis["attention"]
    n_rows, n_cols = len(first["groups"]), len(first["keys"])
    width = max(8.5, max(3.8, 1.1 * n_cols + 3.0) * cols + 1.6)  # >= 1000 px at the report's dpi
    fig, axes = plt.subplots(rows, cols, figsize=(width, max(3.8, 0.5 * n_rows + 2.4) * rows),
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
    bar = fig.colorbar(image, ax=axes, shrink=0.8, pad=0.04)
    bar.set_label("mean attention weight\n(rows sum to 1)", fontsize=9)
    # wrapped to the figure's width: a title wider than the figure runs over the colour bar's label
    title = (f"Attention weights per key, averaged per true class (test split, mean over {_seeds_text(runs)})"
             + ("; sentiment classes: the 3-class band of acc3_band" if runs[0].kind == "regression" else ""))
    fig.suptitle(textwrap.fill(title, int(width * 12)), fontsize=11)
    return _save(fig, folder, "attention.png")


ABLATION_UNUSED = "—"  # the model does not read the modality: zeroing it cannot change anything
ABLATION_UNDEFINED = "undefined"  # the metric is NaN on the predictions made with the modality zeroed
ABLATION_NOTE = (f"{ABLATION_UNUSED}: the model does not read this modality; {ABLATION_UNDEFINED}: the metric is "
                 f"not a number on the predictions made with it zeroed (a correlation of constant predictions)")


def ablation_drops(runs: list[Run], labels: list[str], monitor: str) -> dict[str, dict[str, list[float]]]:
    """``{model: {modality: [drop per seed]}}`` over the modalities each model reads; a drop is
    positive when zeroing makes the score worse, NaN when the metric is undefined with it zeroed."""
    sign = 1 if direction(monitor) == "max" else -1
    out: dict[str, dict[str, list[float]]] = {}
    for label, group in _by_label(runs, labels).items():
        per: dict[str, list[float]] = {}
        for r in group:
            if not r.analysis:
                continue
            ab = r.analysis["ablation"]
            for m, metrics in ab["zeroed"].items():
                if m not in r.modalities:
                    continue
                value = metrics.get(monitor)
                drop = float("nan") if value is None else sign * (ab["full"][monitor] - value)
                per.setdefault(m, []).append(drop)
        if per:
            out[label] = per
    return out


def plot_ablation(runs: list[Run], labels: list[str], split: str, monitor: str, folder: Path) -> str | None:
    """Grouped bars: per model, the score drop when each modality is zeroed at test time."""
    drops = ablation_drops(runs, labels, monitor)
    if not drops:
        return None
    plt = _plt()
    names = list(drops)
    modalities = sorted({m for per in drops.values() for m in per})
    fig, ax = plt.subplots(figsize=(max(6.0, 0.25 * len(names) * len(modalities) + 2.5), 4.6), layout="constrained")
    width = 0.8 / max(len(modalities), 1)
    cmap = plt.get_cmap("Set2")
    marks = []  # (x, text): a bar that cannot be drawn says why, never silently missing
    for j, m in enumerate(modalities):
        x = np.arange(len(names)) + (j - (len(modalities) - 1) / 2) * width
        finite = [[v for v in drops[n].get(m, []) if np.isfinite(v)] for n in names]
        mean = [np.mean(v) if v else 0.0 for v in finite]
        std = [np.std(v, ddof=1) if len(v) > 1 else 0.0 for v in finite]
        ax.bar(x, mean, width, yerr=std, capsize=2, label=f"{m} zeroed", color=cmap(j))
        marks += [(xi, "not read" if m not in drops[n] else ABLATION_UNDEFINED)
                  for xi, n, v in zip(x, names, finite) if not v]
    for xi, text in marks:
        ax.text(xi, 0, text, rotation=90, ha="center", va="bottom", fontsize=7, color="dimgrey")
    ax.axhline(0, color="black", lw=0.8)
    _xticks(ax, names)
    ax.set_ylabel(f"drop in {split} {monitor} ({metric_label(monitor).split('(')[-1].rstrip(')')})")
    ax.set_xlabel("model")
    ax.grid(axis="y", alpha=0.3)
    ax.legend(title="modality", loc="center left", bbox_to_anchor=(1.01, 0.5), fontsize=8)
    ax.set_title(f"Modality ablation: {split} {monitor} lost when one modality is zeroed at test time\n"
                 f"(positive = the model relies on it; {seeds_text(len({r.seed for r in runs}))})")
    if marks:
        note = ABLATION_NOTE.replace(f"{ABLATION_UNUSED}:", "not read:", 1)
        fig.text(0.01, 0.0, note, fontsize=7, color="dimgrey", ha="left", va="top", wrap=True)
    return _save(fig, folder, "ablation.png")


def render_all(runs: list[Run], labels: list[str], split: str, monitor: str, names: list[str], folder: Path, *,
               paired: Paired | None = None, baselines: list[dict[str, Any]] | None = None) -> list[tuple[str, str]]:
    """Every figure that applies: ``[(file name, caption), ...]``."""
    metrics = [monitor, *[m for m in names if m != monitor]]
    figures = [
        (plot_metric_bars(runs, labels, split, metrics, folder, baselines), "Metrics per model, with baselines"),
        (plot_forest(paired, folder) if paired is not None and paired.rows else None,
         f"Differences from {paired.reference if paired else ''} with 95 % intervals"),
        (plot_training_curves(runs, labels, monitor, folder), "Training curves"),
        (plot_confusion(runs, labels, split, folder), "Confusion matrices"),
        (plot_efficiency(runs, labels, split, monitor, folder, baselines), "Efficiency"),
        (plot_attention(runs, labels, folder), "Attention weights per modality and class"),
        (plot_ablation(runs, labels, split, monitor, folder), "Modality ablation"),
    ]
    return [(name, caption) for name, caption in figures if name is not None]
