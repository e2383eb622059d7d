"""Robustness curves: how each model degrades under noisy, missing, misaligned or degraded modalities.

``modalfuse robustness RUN_DIR...|COMPARE_DIR`` (also ``compare --robustness``) evaluates every run's
test split under graded corruptions (``corruptions``) of each modality and of all together
(``evaluate``), and writes, into ``--out`` (default ``<comparison>/robustness``):

- ``robustness.csv``: ``model, modality, corruption, level, metric, value, ci_low, ci_high, seeds,
  examples`` (intervals: the comparison report's, seed-level t with the paired test-set variance);
- ``robustness_auc.csv``: per model and curve the area under the curve and the degradation from the
  clean score, with intervals and verdicts against the reference (``summary``);
- ``robustness-<corruption>.png``: the metric against the level, one line per model with its band;
- ``robustness.md`` (the section the comparison report includes) and ``robustness.json`` (settings,
  the pass's seconds beside the runs' training seconds).

The same corruptions train models robustly with ``train.augment`` (``augment``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .corruptions import ALL, CORRUPTIONS, Corruption, parse_spec, validate_augment

ROBUSTNESS_DIR = "robustness"

__all__ = ["ALL", "CORRUPTIONS", "Corruption", "ROBUSTNESS_DIR", "parse_spec", "robustness", "validate_augment"]


def robustness(paths: list[str], out: str | Path | None = None, *, corruptions: list[str] | None = None,
               modalities: list[str] | None = None, reference: str | None = None, metrics: list[str] | None = None,
               seed: int = 0, resamples: int | None = None, batch_size: int = 1024, device: str | None = None,
               threads: int | None = None, log: Any = print) -> Path:
    """Evaluate runs under corruptions and write the robustness folder.

    Args:
        paths: finished run folders, or one comparison folder.
        out: the output folder (default: ``<comparison>/robustness``, or beside the run folders).
        corruptions: ``NAME`` or ``NAME=L1,L2,..`` each (default: by data, see
            ``corruptions.default_corruptions``).
        modalities: modality names and/or ``all`` (default: each modality, then ``all``).
        reference: the model verdicts compare with (default: the report's, the best unimodal model).
        metrics: bootstrappable metrics (default: the runs' monitored metric).
        seed: the corruption and bootstrap seed.
        resamples: example resamples for the test-set variance (default: the report's,
            ``summary.DEFAULT_RESAMPLES``).
        batch_size: the evaluation batch (the same for every model: draws are per batch).
        device: ``cpu``/``cuda`` (default: CUDA when present).
        threads: CPU threads for torch (``None``: torch's default; 1 is fastest for small models on
            a busy machine, as for training).

    Returns:
        The output folder.
    """
    import time

    from ..errors import UserError
    from ..report.robustness import section_lines
    from ..report.runs import by_label, collect, monitor_of, report_split
    from ..training.runfolder import atomic_write, write_json
    from .evaluate import Plan, evaluate_runs
    from .summary import DEFAULT_RESAMPLES, auc_rows, bootstrap, choose_metrics, point_rows

    t_start = time.perf_counter()
    parsed = _check_options(corruptions, resamples, batch_size, threads)
    runs, info, report_dir = collect(list(paths))
    labels = list(dict.fromkeys(r.label for r in runs))
    folder = Path(out) if out is not None else report_dir.parent / ROBUSTNESS_DIR
    if reference is not None and reference not in labels:
        raise UserError(f"--reference {reference}: no such model; models: {', '.join(labels)}")
    if reference is None:
        from ..report import evidence

        split = report_split(runs)
        reference = (evidence.pick_reference(runs, labels, monitor_of(runs, split), declared=info.get("reference"))[0]
                     if evidence.has_predictions(runs, split) else labels[0])
    ordered = [(r.label, r.seed, r.folder) for lab, rs in by_label(runs, labels).items() for r in rs]
    results, meta = evaluate_runs(ordered, Plan(parsed, modalities), seed=seed, batch_size=batch_size,
                                  device=device, log=log)
    chosen = choose_metrics(results, metrics)
    t_boot = time.perf_counter()
    if resamples is None:
        resamples = DEFAULT_RESAMPLES
    reps = bootstrap(results, chosen, resamples=resamples, seed=seed)
    points, aucs = point_rows(reps, results, chosen), auc_rows(reps, results, chosen, reference)
    boot_seconds = time.perf_counter() - t_boot

    plots = _write_tables_and_plots(folder, points, aucs, chosen)
    command = _command(paths, out, corruptions, modalities, metrics, reference, seed,
                       resamples if resamples != DEFAULT_RESAMPLES else None, batch_size, threads)
    write_json(folder / "robustness.json", {
        "command": command, "models": labels, "reference": reference, "metrics": chosen,
        "seeds": {lab: sorted(r.seed for r in runs if r.label == lab) for lab in labels},
        "examples": len(results[0].ids), "resamples": resamples, "seed": seed, "batch_size": batch_size,
        "device": meta["device"], "curves": meta["curves"],
        "evaluation_seconds": meta["seconds"], "bootstrap_seconds": boot_seconds,
        "seconds": time.perf_counter() - t_start,
        "train_seconds": sum(r.train_seconds for r in results), "plots": plots,
    })
    atomic_write(folder / "robustness.md", "\n".join(section_lines(folder, image_prefix="", level=1)) + "\n")
    log(f"robustness: {folder} ({len(points)} points, {time.perf_counter() - t_start:.1f}s; "
        f"training took {sum(r.train_seconds for r in results):.1f}s)")
    return folder


def _check_options(corruptions: list[str] | None, resamples: int | None, batch_size: int,
                   threads: int | None) -> list[Any] | None:
    """Refuse bad options before any run is read (one line each); set torch's threads; parse the
    corruption specs (``None``: the defaults by data)."""
    from ..errors import UserError

    if threads is not None:
        if threads < 1:
            raise UserError(f"--threads {threads}: expected at least 1")
        import torch

        torch.set_num_threads(threads)
    if resamples is not None and resamples < 100:
        raise UserError(f"--resamples {resamples}: expected at least 100 (they estimate the test-set variance)")
    if batch_size < 1:
        raise UserError(f"--batch-size {batch_size}: expected at least 1")
    parsed = [parse_spec(c) for c in corruptions] if corruptions else None
    seen: set[str] = set()
    for c, _ in parsed or []:
        if c.name in seen:
            raise UserError(f"--corruption {c.name}: given twice; give each corruption once with all its levels")
        seen.add(c.name)
    return parsed


def _command(paths: list[str], out: str | Path | None, corruptions: list[str] | None, modalities: list[str] | None,
             metrics: list[str] | None, reference: str | None, seed: int, resamples: int | None, batch_size: int,
             threads: int | None) -> str:
    """The command line that reproduces this robustness folder (options at their defaults left out)."""
    import shlex

    return shlex.join(["modalfuse", "robustness", *map(str, paths)] + (["--out", str(out)] if out else [])
                      + sum((["--corruption", c] for c in corruptions or []), [])
                      + sum((["--modality", m] for m in modalities or []), [])
                      + sum((["--metric", m] for m in metrics or []), [])
                      + (["--reference", reference] if reference else []) + (["--seed", str(seed)] if seed else [])
                      + (["--resamples", str(resamples)] if resamples is not None else [])
                      + (["--batch-size", str(batch_size)] if batch_size != 1024 else [])
                      + (["--threads", str(threads)] if threads is not None else []))


def _write_tables_and_plots(folder: Path, points: list[dict[str, Any]], aucs: list[dict[str, Any]],
                            metrics: list[str]) -> list[str]:
    """``robustness.csv``, ``robustness_auc.csv`` and one plot per corruption (and metric); returns
    the plots' file names."""
    from ..training.runfolder import atomic_write
    from .summary import AUC_COLUMNS, POINT_COLUMNS, csv_text, plot_curves

    folder.mkdir(parents=True, exist_ok=True)
    atomic_write(folder / "robustness.csv", csv_text(points, POINT_COLUMNS))
    atomic_write(folder / "robustness_auc.csv", csv_text(aucs, AUC_COLUMNS))
    plots = []
    for c in dict.fromkeys(p["corruption"] for p in points):
        for metric in metrics:
            name = f"robustness-{c}.png" if len(metrics) == 1 else f"robustness-{c}-{metric}.png"
            plot_curves(points, c, metric, folder / name)
            plots.append(name)
    return plots
