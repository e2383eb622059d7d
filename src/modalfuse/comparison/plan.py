"""Comparison presets -> a plan of runs.

A comparison preset is a YAML file in ``configs/compare/``::

    # modalfuse compare mosi
    description: unimodal baselines against early, late and attention fusion on CMU-MOSI
    seeds: 3                       # seeds 0..2 (train.seed); --seeds overrides
    primary: acc2_non0             # the metric whose verdicts the report states (Holm over its family)
    reference: text                # optional: the report's reference, declared before any result
                                   # (default: the best unimodal model on validation)
    models:                        # label -> training preset/config, or {config:, overrides:}
      text: mosi/text
      early: {config: mosi/early, overrides: [model.dropout=0.2]}
      moe: {config: yt8m/moe, seeds: 1}   # an expensive model: at most this many of the seeds
    overrides: [train.epochs=20]   # applied to every run (before --set)
    tune:                          # the search space of `compare --tune N` (see tune.py)
      train.learning_rate: {low: 1.0e-4, high: 3.0e-3, log: true}
    ensembles:                     # name -> models whose runs (all seeds) one ensemble averages,
      early+text: [early, text]    # built after the runs into ensembles/<name> (modalfuse ensemble)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..config import Config, apply_overrides, build_config, load_yaml
from ..errors import ConfigError, UserError, closest
from ..listing import PRESET_DIR, compare_preset_names

COMPARE_DIR = PRESET_DIR / "compare"
# The comparison `modalfuse compare` runs without an argument: the one place that names it.
DEFAULT_PRESET = "mosi-words"
PRESET_KEYS = ("description", "seeds", "primary", "reference", "models", "overrides", "tune", "claims", "ensembles")


@dataclass
class RunSpec:
    """One training run of a comparison: a model label, a seed and its config, validated once here."""

    label: str
    seed: int
    raw: dict[str, Any]  # the config after every override (what ``--tune`` trials override further)
    config: Config  # ``raw`` validated: what ``train`` runs and what a reused run folder must match

    @property
    def name(self) -> str:
        return f"{self.label}-seed{self.seed}"


@dataclass
class Plan:
    name: str
    description: str
    seeds: list[int]
    labels: list[str]
    runs: list[RunSpec] = field(default_factory=list)
    tune: dict[str, Any] = field(default_factory=dict)  # parameter -> search space (merged over presets)
    entries: list[tuple[str, Path, list[str]]] = field(default_factory=list)  # (label, config, overrides)
    primary: str = ""  # the preset's primary metric ("": the runs' monitor)
    reference: str = ""  # the preset's declared reference model ("": chosen on validation by the report)
    # ensemble name -> the model labels whose runs (every seed) it averages (``modalfuse ensemble``)
    ensembles: dict[str, list[str]] = field(default_factory=dict)


# ---------------------------------------------------------------------------------------------
# Presets -> a plan of runs
# ---------------------------------------------------------------------------------------------

def _find(item: str) -> Path:
    """A comparison preset name, or a path to a comparison or training config."""
    preset = COMPARE_DIR / f"{item}.yaml"
    if preset.is_file() and not Path(item).is_file():
        return preset
    from ..training.run import resolve_config_path

    try:
        return resolve_config_path(item)
    except UserError:
        names = compare_preset_names()
        raise UserError(
            f"{item}: no such comparison preset or config file{closest(item, names)}; "
            f"comparison presets: {', '.join(names)}"
        ) from None


def _model_config(ref: str, base: Path) -> Path:
    """A model entry: a path relative to the comparison file, or a training preset name."""
    from ..training.run import resolve_config_path

    local = base.parent / ref
    return local if local.is_file() else resolve_config_path(ref)


def _read_preset(path: Path) -> dict[str, Any]:
    raw = load_yaml(path)
    unknown = [k for k in raw if k not in PRESET_KEYS]
    if unknown:
        raise ConfigError(f"{path}: unknown key '{unknown[0]}'{closest(unknown[0], PRESET_KEYS)}; "
                          f"valid keys: {', '.join(PRESET_KEYS)}")
    if not isinstance(raw.get("models"), dict) or not raw["models"]:
        raise ConfigError(f"{path}: 'models' must map labels to configs, e.g. {{text: mosi/text}}")
    if not isinstance(raw.get("overrides", []), list):
        raise ConfigError(f"{path}: 'overrides' must be a list of KEY=VALUE strings")
    if not isinstance(raw.get("claims", []), list):
        raise ConfigError(f"{path}: 'claims' must be a list of claims files, e.g. [attend-fusion]")
    from ..claims.schema import load_claims

    for name in raw.get("claims", []):
        load_claims(str(name))  # a missing or invalid claims file fails here, before any training
    for name, labels in (raw.get("ensembles") or {}).items():
        if not isinstance(labels, list) or not labels or any(lab not in raw["models"] for lab in labels):
            raise ConfigError(f"{path}: ensembles.{name} must list models of this preset, e.g. [fc-early, fcrn-gated]; "
                              f"found {labels!r} (models: {', '.join(raw['models'])})")
        if name in raw["models"]:
            raise ConfigError(f"{path}: ensembles.{name}: the name of a model; name the ensemble differently")
    return raw


def _declared_reference(path: Path, spec: dict[str, Any]) -> str:
    """A preset's ``reference:`` (one of its model labels), or ""."""
    ref = spec.get("reference")
    if ref is None:
        return ""
    if not isinstance(ref, str) or ref not in spec["models"]:
        raise ConfigError(f"{path}: 'reference' must be one of this preset's models "
                          f"({', '.join(map(str, spec['models']))}); found {ref!r}")
    return ref


def _seed_cap(path: Path, label: str, value: Any) -> int:
    """A model entry's ``seeds: N`` (at most N seeds for that model)."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"{path}: models.{label}.seeds must be a whole number >= 1; found {value!r}")
    return value


def plan(configs: list[str], seeds: int | None = None, overrides: list[str] | None = None, *,
         per_label: dict[str, list[str]] | None = None) -> Plan:
    """Resolve comparison presets and/or training configs into the list of runs (validated).

    Args:
        configs: comparison presets and/or training configs (empty: ``DEFAULT_PRESET``).
        seeds: seeds per model (``0..seeds-1``); default: the largest preset ``seeds``.
        overrides: ``a.b=c`` for every run (``--set``).
        per_label: more overrides for one model's runs, applied last (the values ``--tune`` chose).
    """
    configs = list(configs) or [DEFAULT_PRESET]
    entries: list[tuple[str, Path, list[str]]] = []  # (label, training config, overrides)
    descriptions, preset_seeds = [], []
    tune: dict[str, Any] = {}
    primary = reference = ""
    ensembles: dict[str, list[str]] = {}
    seed_caps: dict[str, int] = {}  # label -> at most this many seeds (a model entry's ``seeds:``)
    for item in configs:
        path = _find(item)
        raw = load_yaml(path)
        if "models" in raw:  # a comparison preset
            spec = _read_preset(path)
            descriptions.append(str(spec.get("description", "")).strip())
            if spec.get("primary") is not None and not primary:
                if not isinstance(spec["primary"], str):
                    raise ConfigError(f"{path}: 'primary' must be a metric name, e.g. primary: accuracy")
                primary = spec["primary"]
            reference = reference or _declared_reference(path, spec)
            if spec.get("seeds") is not None:
                preset_seeds.append(int(spec["seeds"]))
            ensembles.update({str(k): [str(x) for x in v] for k, v in (spec.get("ensembles") or {}).items()})
            if spec.get("tune") is not None:
                if not isinstance(spec["tune"], dict):
                    raise ConfigError(f"{path}: 'tune' must map config keys to search spaces, "
                                      f"e.g. {{train.learning_rate: {{low: 1.0e-4, high: 1.0e-2, log: true}}}}")
                tune.update(spec["tune"])
            for label, entry in spec["models"].items():
                if isinstance(entry, str):
                    entry = {"config": entry}
                if not isinstance(entry, dict) or set(entry) - {"config", "overrides", "seeds"} or "config" not in entry:
                    raise ConfigError(f"{path}: models.{label} must be a config name or "
                                      f"{{config:, overrides: [...], seeds: N}}")
                if "seeds" in entry:
                    seed_caps[str(label)] = _seed_cap(path, str(label), entry["seeds"])
                entries.append((str(label), _model_config(entry["config"], path),
                                [*spec.get("overrides", []), *entry.get("overrides", [])]))
        else:  # a single training config: one more model
            entries.append((path.stem, path, []))
    labels = [label for label, _, _ in entries]
    dupes = sorted({x for x in labels if labels.count(x) > 1})
    if dupes:
        raise ConfigError(f"model label '{dupes[0]}' appears twice in {', '.join(configs)}; labels must be unique")
    n_seeds = seeds if seeds is not None else (max(preset_seeds) if preset_seeds else 1)
    if n_seeds < 1:
        raise ConfigError(f"--seeds {n_seeds}: expected at least 1")
    name = "-".join(Path(c).stem if Path(c).suffix else c.replace("/", "-") for c in configs)
    result = Plan(name, " ".join(d for d in descriptions if d), list(range(n_seeds)), labels, tune=tune,
                  primary=primary, reference=reference, ensembles=ensembles)
    result.entries = entries
    for seed in result.seeds:  # seed-major: an interrupted comparison already covers every model
        for label, path, extra in entries:
            if seed >= seed_caps.get(label, len(result.seeds)):
                continue
            raw = apply_overrides(load_yaml(path), [*extra, *(overrides or []), *(per_label or {}).get(label, []),
                                                    f"train.seed={seed}", "train.progress=none"])
            # validated here, once, before training any run; compare hands this Config to train
            result.runs.append(RunSpec(label, seed, raw, build_config(raw)))
    return result


