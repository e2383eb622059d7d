"""``modalfuse list``: registered entries and shipped presets, one line each."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

from .errors import UserError, closest

PRESET_DIR = Path(__file__).resolve().parent / "configs"
DATA_DIR = Path(__file__).resolve().parent / "data_files"

# The one vocabulary of `list --task`: application domains, and the task kinds each one trains.
# Registered entries are tagged with either (``task="yt8m"`` on a model, ``task="multilabel"`` on a
# metric); an entry tagged ``any`` (or untagged) fits every task.
TASKS: dict[str, tuple[str, ...]] = {
    "sentiment": ("multiclass", "regression"),  # MOSI / MOSEI: classes from the score, or the score
    "yt8m": ("multilabel",),  # YouTube-8M: 3862 classes, several per video
    "synthetic": ("multiclass", "multilabel", "regression"),
    "features": ("multiclass", "multilabel", "regression"),  # your own feature tables (data.name: features)
}
KINDS = ("multiclass", "multilabel", "regression")


def task_names() -> list[str]:
    """Every value ``--task`` accepts."""
    return [*TASKS, *KINDS]


def check_task(task: str | None) -> None:
    """An unknown ``--task`` is an error listing the valid ones (not an empty or unfiltered list)."""
    if task is not None and task not in task_names():
        raise UserError(f"--task {task!r}: unknown task{closest(task, task_names())}; tasks: {', '.join(task_names())}")


def fits(tag: str | None, task: str | None) -> bool:
    """Whether an entry tagged ``tag`` belongs under ``--task task``.

    Domains and kinds match each other through ``TASKS``: a ``multilabel`` metric fits ``yt8m``, a
    ``yt8m`` model fits ``multilabel``.
    """
    if task is None or tag in (None, "any", task):
        return True
    if task in TASKS:
        return tag in TASKS[task]
    return task in TASKS.get(tag, ())


def preset_task(name: str) -> str | None:
    """A training preset's task: its dataset's tag (``data.name`` of the YAML), or its domain folder."""
    import yaml

    from .registry import DATASETS

    try:
        data = (yaml.safe_load((PRESET_DIR / f"{name}.yaml").read_text()) or {}).get("data") or {}
        tag = DATASETS.info(data["name"]).get("task") if data.get("name") in DATASETS else None
    except (OSError, yaml.YAMLError, AttributeError):
        tag = None
    if tag is None:  # mosi/*, mosei/*: the sentiment presets; yt8m/*
        folder = name.split("/")[0].removesuffix("-sample")
        tag = "sentiment" if folder in ("mosi", "mosei") else folder
    return tag


def bundled_paths(task: str | None = None) -> list[str]:
    """The data files shipped inside the package, one absolute path a line, per bundled dataset
    (``mosi``, ``yt8m``), for pointing a config or ``predict --input`` at them."""
    check_task(task)
    lines = []
    for folder in sorted(p for p in DATA_DIR.iterdir() if p.is_dir()):
        tag = "sentiment" if folder.name in ("mosi", "mosei") else folder.name
        if fits(tag, task):
            lines += [f"{folder.name:<8} {f}" for f in sorted(folder.iterdir()) if f.is_file()]
    return lines


def preset_names() -> list[str]:
    """Training presets (``modalfuse train NAME``); comparison presets live in ``configs/compare/``, claims
    files in ``configs/claims/``."""
    names = (str(p.relative_to(PRESET_DIR).with_suffix("")) for p in PRESET_DIR.rglob("*.yaml"))
    return sorted(n for n in names if not n.startswith(("compare/", "claims/")))


def compare_preset_names() -> list[str]:
    """Comparison presets (``modalfuse compare NAME``)."""
    return sorted(p.stem for p in (PRESET_DIR / "compare").glob("*.yaml"))


def preset_parameter_count(preset: str | Path) -> int:
    """Exact trainable parameters of a preset's model in the YouTube-8M paper setting (rgb 2048-d,
    audio 256-d MF+STD inputs, 3862 classes). Built on the ``meta`` device: no memory, no init."""
    import torch

    from .config import load_yaml
    from .models import PAPER_SPECS, PAPER_TASK, build_model, count_parameters

    with torch.device("meta"):
        return count_parameters(build_model(load_yaml(preset)["model"], PAPER_SPECS, PAPER_TASK))


def _preset_about(path: Path) -> str:
    """The first sentence of a preset's header comment (the lines after its command line), whole."""
    lines = path.read_text().splitlines()
    text = []
    for line in lines[1:]:
        if not line.startswith("#"):
            break
        text.append(line.lstrip("#").strip())
    joined = " ".join(text)
    end = re.search(r"\.(\s|$)", joined)
    return joined[: end.start() + 1] if end else joined


def _columns(rows: list[tuple[str, ...]], width: int = 100) -> list[str]:
    """Rows aligned in columns as wide as their longest entry; the last column wrapped at word
    boundaries under itself, so no description is cut mid-phrase."""
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]) - 1)]
    indent = sum(widths) + 2 * len(widths)
    out = []
    for r in rows:
        head = "".join(f"{c:<{w}}  " for c, w in zip(r, widths))
        lines = textwrap.wrap(r[-1], max(30, width - indent)) or [""]
        out.append((head + lines[0]).rstrip())
        out += [" " * indent + line for line in lines[1:]]
    return out


def _model_lines(task: str | None) -> list[str]:
    from .registry import MODELS

    rows = []
    for name in MODELS.names():
        info = MODELS.info(name)
        if fits(info.get("task"), task):
            rows.append((name, "", info.get("description", "")))
    # The YouTube-8M models are presets of the one classifier: each with its exact size in the paper
    # setting (MF+STD inputs: rgb 2048-d, audio 256-d; 3862 classes) and the line that describes it.
    if fits("yt8m", task):
        for preset in preset_names():
            if not preset.startswith("yt8m/"):
                continue
            path = PRESET_DIR / f"{preset}.yaml"
            n = preset_parameter_count(path)
            rows.append((preset, f"{n / 1e6:.1f}M ({n:,})", _preset_about(path)))
    return _columns(rows) if rows else []


def list_entries(kind: str, task: str | None = None) -> list[str]:
    from . import plugins
    from .registry import DATASETS, ENCODERS, FUSIONS, HEADS, METRICS

    plugins.load()
    check_task(task)
    if kind == "models":
        return _model_lines(task)
    if kind == "claims":  # the shipped claims files (`modalfuse claims NAME COMPARE_DIR`), with their paper
        from .claims.schema import claims_names, load_claims

        return [f"{n:<24} {load_claims(n).paper}" for n in claims_names()]
    if kind == "presets":
        train = [f"train    {p}" for p in preset_names() if fits(preset_task(p), task)]
        # a comparison preset is named after its data, as the training preset folders are
        comp = [f"compare  {p}" for p in compare_preset_names() if fits(preset_task(p if p == "synthetic" else f"{p}/x"), task)]
        return train + comp
    registry = {"fusions": FUSIONS, "encoders": ENCODERS, "heads": HEADS, "datasets": DATASETS, "metrics": METRICS}[kind]
    lines = []
    for name in registry.names():
        info = registry.info(name)
        if not fits(info.get("task"), task):
            continue
        extra = f"[{info['direction']}imise] " if "direction" in info else ""
        cite = f" ({info['citation']})" if info.get("citation") else ""
        lines.append(f"{name:<24} {extra}{info.get('description', '')}{cite}".rstrip())
    return lines
