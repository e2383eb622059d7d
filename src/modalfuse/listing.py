"""``modalfuse list``: registered entries and shipped presets, one line each."""

from __future__ import annotations

from pathlib import Path

PRESET_DIR = Path(__file__).resolve().parent / "configs"


def preset_names() -> list[str]:
    """Training presets (``modalfuse train NAME``); comparison presets live in ``configs/compare/``."""
    names = (str(p.relative_to(PRESET_DIR).with_suffix("")) for p in PRESET_DIR.rglob("*.yaml"))
    return sorted(n for n in names if not n.startswith("compare/"))


def compare_preset_names() -> list[str]:
    """Comparison presets (``modalfuse compare NAME``)."""
    return sorted(p.stem for p in (PRESET_DIR / "compare").glob("*.yaml"))


def _model_lines(task: str | None) -> list[str]:
    from .registry import MODELS

    lines = []
    for name in MODELS.names():
        info = MODELS.info(name)
        if task and info.get("task") not in (task, "any"):
            continue
        size = ""
        count = info.get("count_parameters")  # a function giving the exact count in the paper setting
        if count is not None:
            n = count()
            size = f"{n / 1e6:.1f}M ({n:,})"
        lines.append(f"{name:<24} {size:<24} {info.get('description', '')}".rstrip())
    return lines


def list_entries(kind: str, task: str | None = None) -> list[str]:
    from . import plugins
    from .registry import DATASETS, ENCODERS, FUSIONS, METRICS

    plugins.load()
    if kind == "models":
        return _model_lines(task)
    if kind == "presets":
        train = [f"train    {p}" for p in preset_names() if not task or p.startswith(task)]
        comp = [f"compare  {p}" for p in compare_preset_names() if not task or p.startswith(task)]
        return train + comp
    registry = {"fusions": FUSIONS, "encoders": ENCODERS, "datasets": DATASETS, "metrics": METRICS}[kind]
    lines = []
    for name in registry.names():
        info = registry.info(name)
        if task and info.get("task") not in (task, "any", None):
            continue
        extra = f"[{info['direction']}imise] " if "direction" in info else ""
        lines.append(f"{name:<24} {extra}{info.get('description', '')}".rstrip())
    return lines
