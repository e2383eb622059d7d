"""Typed, validated configs: YAML with sections ``data``, ``model``, ``train`` and ``eval``.

``data`` and ``model`` pick a registered dataset/model by ``name``; the rest of the section is
validated against that entry's own ``Params`` class, so a misspelt key anywhere is an error that
names the key and the valid keys. ``--set a.b=c`` overrides are parsed as YAML values and
type-checked the same way.
"""

from __future__ import annotations

import copy
import logging
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, field_validator

from .errors import ConfigError, closest, require_file
from .schema import Resolved, describe, validate_params

log = logging.getLogger("modalfuse")


class Params(BaseModel):
    """Base for every section and every registered entry's parameters: unknown keys are errors."""

    model_config = ConfigDict(extra="forbid", protected_namespaces=())


class TrainConfig(Params):
    epochs: int = Field(10, ge=1)
    batch_size: int = Field(64, ge=1)  # global batch: divided across processes under torchrun
    optimizer: Literal["adamw", "adam"] = "adamw"
    learning_rate: float = Field(1e-3, gt=0, allow_inf_nan=False)
    weight_decay: float = Field(0.01, ge=0, allow_inf_nan=False)
    schedule: Literal["none", "cosine", "step"] = "none"
    warmup_epochs: float = Field(0.0, ge=0, allow_inf_nan=False)
    step_size: int = Field(10, ge=1)  # epochs between decays for schedule=step
    gamma: float = Field(0.1, gt=0, allow_inf_nan=False)
    grad_clip: float | None = Field(1.0, gt=0, allow_inf_nan=False)
    loss: Literal["auto", "cross_entropy", "bce", "l1", "mse"] = "auto"
    label_smoothing: float = Field(0.0, ge=0, lt=1, allow_inf_nan=False)
    # Exponential moving average of the weights (training/ema.py): the decay per step, e.g. 0.999;
    # the average is validated, kept as best.pt and evaluated. None: the raw weights.
    ema: float | None = Field(None, gt=0, lt=1, allow_inf_nan=False)
    monitor: str | None = None  # validation metric for best checkpoint/early stopping; task default
    patience: int | None = Field(None, ge=1)  # epochs without improvement before stopping
    # The checkpoint kept as best.pt and evaluated: "best" by the validation monitor, or "last": the
    # final epoch of a fixed schedule chosen a priori (for when validation cannot select epochs).
    select: Literal["best", "last"] = "best"
    seed: int = 0
    deterministic: bool = False
    device: Literal["auto", "cpu", "cuda"] = "auto"
    precision: Literal["fp32", "bf16", "fp16"] = "fp32"
    compile: bool = False
    num_workers: int = Field(0, ge=0)
    threads: int | None = Field(None, ge=1)  # CPU threads for torch (None: torch's default); 1 is fastest for tiny models
    progress: Literal["auto", "bar", "log", "none"] = "auto"
    # Experiment trackers beside the run folder's own files (training/loggers.py; extras [tensorboard], [mlflow]).
    loggers: list[Literal["tensorboard", "mlflow"]] = []
    # Robustness corruptions applied to training batches on the device (robustness/augment.py), e.g.
    # [{name: noise, level: 10, modality: all, p: 0.5}]: "trained robust" against "trained clean".
    augment: list[dict[str, Any]] = []

    @field_validator("augment", mode="before")
    @classmethod
    def _check_augment(cls, value: Any) -> list[dict[str, Any]]:
        from .robustness.corruptions import validate_augment

        return validate_augment(value)


class EvalConfig(Params):
    batch_size: int = Field(256, ge=1)
    threshold: float = Field(0.5, gt=0, lt=1)  # multilabel F1 decision threshold
    top_k: int = Field(20, ge=1)  # GAP@k / mAP over each video's top-k
    splits: list[Literal["valid", "test"]] = ["valid", "test"]


class Config(Params):
    """A validated config. ``data`` and ``model`` are ``schema.Resolved`` sections (dicts of the
    resolved keys, as the saved ``config.yaml`` holds them; ``data.params`` is the dataset's typed
    params object): ``build_data`` and ``build_model`` use them as they are, without validating them
    again. Build one with ``build_config``."""

    data: Resolved  # the dataset's keys; .params: its typed params (validated by build_config)
    model: Resolved  # the model's keys, every part a Resolved with its typed .params
    train: TrainConfig = TrainConfig()
    eval: EvalConfig = EvalConfig()

    def to_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json")


SECTIONS = ("data", "model", "train", "eval")


class _StrictLoader(yaml.SafeLoader):
    """``yaml.safe_load`` that refuses duplicate keys (YAML would silently keep the last one)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            try:
                duplicate = key in seen
            except TypeError:  # an unhashable key; the base class reports it
                break
            if duplicate:
                raise ConfigError(f"duplicate key '{key}' (line {key_node.start_mark.line + 1}); "
                                  f"each key may appear once per section")
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _StrictLoader.construct_mapping)

# A config is a few hundred values; anchors and aliases may share nodes, but a tree that expands to
# more than this many values (a "billion laughs" alias bomb) is refused before anything walks it.
MAX_CONFIG_VALUES = 100_000


def _expanded_size(value: Any, memo: dict[int, int], depth: int = 0) -> int:
    """How many values ``value`` has once aliases are expanded, counted once per shared node."""
    if depth > 100:
        raise ConfigError("config nested more than 100 levels deep")
    if not isinstance(value, (dict, list)):
        return 1
    key = id(value)
    if key not in memo:
        items = list(value.keys()) + list(value.values()) if isinstance(value, dict) else value
        memo[key] = 1 + sum(_expanded_size(v, memo, depth + 1) for v in items)
    return memo[key]


def parse_yaml(text: str, where: str) -> Any:
    """YAML text -> Python values, refusing duplicate keys and alias bombs.

    Args:
        text: the YAML.
        where: the file or ``--set`` item, for error messages.

    Raises:
        ConfigError: invalid YAML, a duplicate key, or a tree of more than ``MAX_CONFIG_VALUES`` values.
    """
    try:
        value = yaml.load(text, Loader=_StrictLoader)  # noqa: S506 (a SafeLoader subclass)
    except ConfigError as e:
        raise ConfigError(f"{where}: {e}") from None
    except yaml.YAMLError as e:
        raise ConfigError(f"{where}: not valid YAML ({str(e).splitlines()[0]})") from None
    except RecursionError:
        raise ConfigError(f"{where}: not valid YAML (nested too deeply)") from None
    try:
        size = _expanded_size(value, {})
    except (ConfigError, RecursionError):
        raise ConfigError(f"{where}: nested more than 100 levels deep") from None
    if size > MAX_CONFIG_VALUES:
        raise ConfigError(f"{where}: expands to {size:,} values (YAML aliases); a config holds at most "
                          f"{MAX_CONFIG_VALUES:,}")
    return value


def load_yaml(path: str | Path) -> dict[str, Any]:
    """A config file as a dict (see ``parse_yaml``).

    Raises:
        ConfigError: missing, unreadable, not UTF-8, invalid YAML, or not a mapping of sections.
    """
    path = Path(path)
    require_file(path, "a YAML config file", "config file not found", ConfigError)
    try:
        data = path.read_bytes()
    except OSError as e:
        raise ConfigError(f"{path}: cannot read the config ({e.strerror or e})") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ConfigError(f"{path}: not UTF-8 text (byte {e.start}); a config is a UTF-8 YAML file") from None
    raw = parse_yaml(text, str(path))
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping with sections {', '.join(SECTIONS)}")
    return raw


def _switch_part(node: dict[str, Any], key: str, value: Any, set_before: set[str]) -> None:
    """``--set <part>.name=NEW`` on a part named otherwise: the part gets NEW's own defaults. The old
    part's keys (those the config gave, not earlier ``--set``s) are dropped, and a note lists them."""
    old = node.get("name")
    if old is None or old == value:
        return
    prefix = key.rsplit(".", 1)[0]
    dropped = [k for k in node if k != "name" and f"{prefix}.{k}" not in set_before]
    for k in dropped:
        del node[k]
    if dropped:
        log.warning("note: --set %s: %s becomes %r with its own defaults; the keys of %r dropped: %s", key, prefix, value,
                    old, ", ".join(f"{prefix}.{k}" for k in dropped))


def apply_overrides(raw: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Apply ``a.b=c`` overrides; values are YAML (``[1, 2]``, ``1e-4``, ``true``, ``a,b``).

    Setting a part's ``name`` (``model.fusion.name=attention``) switches the part: the old part's
    keys are dropped (with a note) and the new one starts from its own defaults."""
    raw = copy.deepcopy(raw)
    set_before: set[str] = set()
    for item in overrides:
        key, sep, text = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"--set {item!r}: expected KEY=VALUE, e.g. train.epochs=5")
        try:
            value = parse_yaml(text, f"--set {key}") if text else ""
        except ConfigError as e:
            if "not valid YAML" not in str(e):
                raise
            value = text
        node = raw
        parts = key.split(".")
        for p in parts[:-1]:
            child = node.setdefault(p, {})
            if not isinstance(child, dict):
                raise ConfigError(f"--set {key}: '{p}' is a value, not a section")
            node = child
        if parts[-1] == "name" and len(parts) > 1:
            _switch_part(node, key, value, set_before)
        node[parts[-1]] = value
        set_before.add(key)
    return raw


def validate_entry(section: str, raw: dict[str, Any], registry: Any) -> Resolved:
    """Validate a ``data`` section against the registered dataset's ``params`` class."""
    if not isinstance(raw, dict) or "name" not in raw:
        raise ConfigError(f"config section '{section}' needs a 'name' (one of: {', '.join(registry.names())})")
    name = raw["name"]
    registry.get(name)  # unknown name -> error listing the known ones
    cls: type[Params] = registry.info(name)["params"]
    params = validate_params(cls, {k: v for k, v in raw.items() if k != "name"}, section, extra_keys=("name",))
    resolved = Resolved(name=name, **params.model_dump(mode="json"))
    resolved.params = params
    return resolved


def build_config(raw: dict[str, Any]) -> Config:
    """Validate a raw config dict (after overrides) into a ``Config``."""
    from . import plugins
    from .models import resolve_model
    from .registry import DATASETS

    plugins.load()
    unknown = [k for k in raw if k not in SECTIONS]
    if unknown:
        raise ConfigError(
            f"unknown config section '{unknown[0]}'{closest(unknown[0], SECTIONS)}; valid sections: {', '.join(SECTIONS)}"
        )
    resolved: dict[str, Any] = {
        "data": validate_entry("data", raw.get("data"), DATASETS),
        "model": resolve_model(raw.get("model")),
    }
    for section, cls in (("train", TrainConfig), ("eval", EvalConfig)):
        body = raw.get(section) or {}
        if not isinstance(body, dict):
            raise ConfigError(f"config section '{section}' must be a mapping, found {describe(body)}")
        resolved[section] = validate_params(cls, body, section)
    return Config(**resolved)


def load_config(path: str | Path, overrides: list[str] | None = None) -> Config:
    return build_config(apply_overrides(load_yaml(path), overrides or []))


def entry_params(section: dict[str, Any], registry: Any) -> Params:
    """Rebuild an entry's typed params from a resolved section dict."""
    cls: type[Params] = registry.info(section["name"])["params"]
    return cls.model_validate({k: v for k, v in section.items() if k != "name"})
