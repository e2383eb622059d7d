"""The report's line about where the runs ran, from each run folder's ``scheduler.json`` (written by
``compare --launcher slurm``'s tasks): job ids, nodes, GPUs, CPUs and wall time."""

from __future__ import annotations

from pathlib import Path

from ..training.runfolder import SCHEDULER, RunFolder


def scheduler_lines(folders: list[Path]) -> list[str]:
    """One set-up bullet summarising the runs' scheduler facts; none when no run has them."""
    facts = [f for f in (RunFolder(folder).read_scheduler() for folder in folders) if isinstance(f, dict)]
    if not facts:
        return []
    nodes = sorted({str(f.get("node")) for f in facts})
    gpus = sorted({len(f.get("gpus") or []) for f in facts})
    cpus = sorted({f.get("cpus") for f in facts if f.get("cpus")})
    walls = sorted(float(f["wall_seconds"]) for f in facts if isinstance(f.get("wall_seconds"), (int, float)))
    arrays = sorted({str(a).split("_")[0] for f in facts for a in (f.get("attempts") or [f.get("job_id")])})
    again = sum(len(f.get("attempts") or []) > 1 for f in facts)
    wall = (f"; wall time per task {walls[len(walls) // 2]:.0f} s median, {walls[-1]:.0f} s longest (the last attempt)"
            if walls else "")
    return [f"- **Scheduler**: {len(facts)} of {len(folders)} runs ran as Slurm array tasks (job arrays "
            f"{', '.join(arrays)}; nodes {', '.join(nodes)}; {'/'.join(map(str, gpus))} GPU(s) and "
            f"{'/'.join(map(str, cpus)) or '?'} CPU(s) per task{wall}); {again} needed more than one attempt "
            f"(cancelled, pre-empted or failed, then resubmitted). Facts per run: `runs/*/{SCHEDULER}`."]
