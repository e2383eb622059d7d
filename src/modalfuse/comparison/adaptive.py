"""``compare --seeds auto``: train seeds in rounds until the primary comparisons are settled.

The looks are ``stats.sequential.looks(max_seeds)`` (3, 5, 10, ... seeds), planned before the first;
each tests the primary metric's Holm family at ``alpha / looks`` (Bonferroni over the looks), so the
false-positive rate over all looks stays at most ``alpha`` (``bench/stats_calibration.py`` measures
it). After each look a primary comparison is *decided* (better/worse), *small* (nothing found, but its
minimum detectable effect is below ``--min-effect``) or *open*; only the models of open comparisons get
the next look's seeds. The rounds stop when nothing is open or after the last look. The report is
rendered at the per-look level and says how many seeds each model got and why it stopped.
"""

from __future__ import annotations

import shlex
from dataclasses import replace
from pathlib import Path
from typing import Any

from ..errors import UserError
from ..stats import sequential
from ..stats.verdicts import ALPHA
from ..training.runfolder import ComparisonFolder
from .plan import Plan, plan
from .runner import default_jobs, run_plan

DEFAULT_MAX_SEEDS = 10


def _settle(folder: Path, primary: str, reference: str | None, alpha: float,
            min_effect: float | None) -> dict[tuple[str, str], str]:
    """The state of each primary comparison from the runs trained so far."""
    from ..report import evidence
    from ..report.runs import collect, monitor_of, report_split

    records, info, _ = collect([str(folder)])
    labels = [lab for lab in info["labels"] if any(r.label == lab for r in records)]
    split = report_split(records)
    p = evidence.paired(records, labels, split, monitor_of(records, split), reference, primary=primary or None,
                        alpha=alpha)
    if p is None:
        raise UserError(f"{folder}: some runs have no predictions.npz, so --seeds auto cannot test them; "
                        f"retrain them or give --seeds N")
    return {(c.model, c.reference): sequential.state(c.verdict, c.mde, min_effect)
            for c in p.rows if c.metric == p.primary}


def _record(full: Plan, seeds_of: dict[str, int], command: str, overrides: list[str], configs: list[str],
            auto: dict[str, Any]) -> tuple[Plan, dict[str, Any]]:
    """The plan of the runs so far and the compare.json that describes it."""
    sub = replace(full, seeds=list(range(max(seeds_of.values()))),
                  runs=[r for r in full.runs if r.seed < seeds_of[r.label]])
    return sub, {"name": full.name, "description": full.description, "command": command, "configs": configs,
                 "seeds": sub.seeds, "overrides": overrides, "labels": full.labels, "primary": full.primary,
                 "reference": full.reference,
                 "alpha": auto["alpha"], "adaptive": auto,
                 "runs": [{"label": r.label, "seed": r.seed, "folder": f"runs/{r.name}"} for r in sub.runs]}


def compare_auto(configs: list[str], *, max_seeds: int = DEFAULT_MAX_SEEDS, min_effect: float | None = None,
                 out: str | None = None, overrides: list[str] | None = None, jobs: int | None = 1,
                 reference: str | None = None, stream: Any = None) -> Path:
    """Train a comparison's seeds in rounds (see the module docstring); returns the comparison folder.

    Args:
        configs: comparison presets and/or training configs, as ``compare``.
        max_seeds: the last look's seeds per model.
        min_effect: stop testing a comparison once its minimum detectable effect is below this.
        out, overrides, jobs, reference, stream: as ``runner.compare``.
    """
    from ..report.render import render_report, summary_table

    if min_effect is not None and not min_effect > 0:
        raise UserError(f"--min-effect {min_effect}: expected a positive difference in the primary metric's units")
    jobs = default_jobs() if jobs is None else max(1, int(jobs))
    looks = sequential.looks(max_seeds)
    alpha = sequential.look_alpha(ALPHA, len(looks))
    overrides = list(overrides or [])
    full = plan(configs, max_seeds, overrides)  # validates every run of every look first
    folder = Path(out) if out is not None else Path("runs") / f"compare-{full.name}-auto"
    command = shlex.join(["modalfuse", "compare", *configs, "--seeds", "auto", "--max-seeds", str(max_seeds),
                          *(["--min-effect", str(min_effect)] if min_effect is not None else []),
                          *(["--out", out] if out is not None else []), *[f"--set={o}" for o in overrides]])
    comparison = ComparisonFolder(folder)
    seeds_of = {label: 0 for label in full.labels}
    active, states = set(full.labels), {}
    auto: dict[str, Any] = {"looks": looks, "alpha": alpha, "min_effect": min_effect, "history": [], "stopped": "",
                            "seeds": seeds_of}
    with comparison.lock():
        for n in looks:
            seeds_of.update({label: n for label in active})
            sub, info = _record(full, seeds_of, command, overrides, list(configs), auto)
            comparison.write_plan(info)
            run_plan(sub, folder, jobs=jobs, stream=stream, command=command)
            states = _settle(folder, full.primary, reference or full.reference or None, alpha, min_effect)
            opened = [pair for pair, s in states.items() if s == "open"]
            auto["history"].append({"seeds": dict(seeds_of), **{s: sum(v == s for v in states.values())
                                                                 for s in ("decided", "small", "open")}})
            if not opened:
                auto["stopped"] = ("every primary comparison is decided"
                                   + (f" or could have found a difference of {min_effect}" if min_effect else ""))
                break
            active = {m for pair in opened for m in pair}
        else:
            auto["stopped"] = (f"--max-seeds {max_seeds} reached with {sum(v == 'open' for v in states.values())} "
                               f"primary comparisons still open")
        comparison.write_plan(_record(full, seeds_of, command, overrides, list(configs), auto)[1])
        report = render_report([str(folder)], reference=reference)
        print(summary_table(comparison.report_dir / "summary.csv"))
        print(f"\nseeds in rounds: {auto['stopped']}\nreport: {report}")
    return folder
