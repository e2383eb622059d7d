"""The claims file: a paper's published claims, typed and validated once on load.

A claims file (YAML, ``configs/claims/*.yaml``; format in docs/claims.md) names the paper, its
models (each mapped to the label a comparison gives it), its metrics (with their exact definition and
unit), the datasets a comparison may be on (recognised from the runs' resolved configs) and the
claims. Every mapping refuses unknown keys, naming the valid ones.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from ..config import load_yaml
from ..errors import ConfigError, closest
from ..schema import config_error

CLAIMS_DIR = Path(__file__).resolve().parent.parent / "configs" / "claims"  # shipped claims files
KINDS = ("value", "difference", "ordering", "equivalence", "non-inferiority")
UNIT_SCALE = {"percent": 100.0, "fraction": 1.0, "count": 1.0}  # claim unit per unit of the runs' metric


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", protected_namespaces=())


class ModelRef(_Strict):
    """One of the paper's models: the comparison label it goes by, and the presets that build it."""

    label: str
    presets: list[str] = []
    description: str = ""


class MetricDef(_Strict):
    """A metric as the paper defines it; ``unit`` says how its numbers are written."""

    definition: str
    unit: Literal["percent", "fraction", "count"] = "fraction"
    direction: Literal["max", "min"] = "max"


class MetricMap(_Strict):
    """How a comparison on one dataset measures a paper metric."""

    metric: str  # the runs' metric name (``parameters``: the run's trainable parameter count)
    same_definition: bool = True
    note: str = ""  # how the definition differs, when it does


class DatasetDef(_Strict):
    """A dataset a comparison may be on, recognised from the first run's resolved config."""

    match: dict[str, str | list[str]]  # dotted config key -> the value, or one of the values
    metrics: dict[str, str | MetricMap]  # paper metric -> how it is measured here
    nearest_to: list[str] = []  # claims on these datasets are tested here as the nearest data (not values)
    protocol: str = ""  # how the runs' protocol differs from the paper's (values are then not comparable)
    note: str = ""


class Claim(_Strict):
    """One published claim. ``a``/``b``: the paper's models (``model`` for a value claim)."""

    id: str
    source: str  # table and row (or section) of the paper
    kind: Literal["value", "difference", "ordering", "equivalence", "non-inferiority"]
    dataset: str
    metric: str
    model: str | None = None  # value
    a: str | None = None  # difference, ordering (a better than b), equivalence, non-inferiority
    b: str | None = None
    published: float | None = None  # value: the number; difference: a - b; others: a - b if published
    margin: float | None = Field(None, gt=0)  # difference, equivalence, non-inferiority (claim units)
    margin_by: Literal["paper", "project"] | None = None
    margin_reason: str = ""
    tolerance: float = Field(0.0, ge=0)  # value: rounding of the published number (claim units)
    quote: str = ""  # the paper's own word for it ("significantly", "marginal", "comparable")

    @model_validator(mode="after")
    def _fields_of_kind(self) -> "Claim":
        need = {"value": ("model", "published"), "difference": ("a", "b", "published", "margin", "margin_by"),
                "ordering": ("a", "b"), "equivalence": ("a", "b", "margin", "margin_by"),
                "non-inferiority": ("a", "b", "margin", "margin_by")}[self.kind]
        missing = [k for k in need if getattr(self, k) is None]
        if missing:
            raise ValueError(f"{'an' if self.kind[0] in 'aeiou' else 'a'} {self.kind} claim needs {', '.join(need)}; missing: {', '.join(missing)}")
        return self

    def models(self) -> list[str]:
        return [self.model] if self.kind == "value" else [self.a, self.b]  # type: ignore[list-item]


class ClaimsFile(_Strict):
    paper: str
    models: dict[str, ModelRef]
    metrics: dict[str, MetricDef]
    datasets: dict[str, DatasetDef]
    claims: list[Claim]

    @model_validator(mode="after")
    def _references(self) -> "ClaimsFile":
        """Every name a claim or dataset uses is defined in the file."""
        ids = [c.id for c in self.claims]
        dupes = sorted({i for i in ids if ids.count(i) > 1})
        if dupes:
            raise ValueError(f"claim id '{dupes[0]}' appears twice; ids must be unique")
        for i, c in enumerate(self.claims):
            for what, name, known in [("model", m, self.models) for m in c.models()] + [
                    ("metric", c.metric, self.metrics), ("dataset", c.dataset, self.datasets)]:
                if name not in known:
                    raise ValueError(f"claims.{i}.{what}: '{name}' is not in {what}s{closest(name, known)}; "
                                     f"{what}s: {', '.join(known)}")
        for name, d in self.datasets.items():
            for m in d.metrics:
                if m not in self.metrics:
                    raise ValueError(f"datasets.{name}.metrics: '{m}' is not in metrics{closest(m, self.metrics)}; "
                                     f"metrics: {', '.join(self.metrics)}")
        return self


def validate_claims(raw: Any, where: str) -> ClaimsFile:
    """A parsed claims file, validated; errors name the file and the full key."""
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: expected a mapping with keys {', '.join(ClaimsFile.model_fields)}")
    try:
        return ClaimsFile.model_validate(raw)
    except ValidationError as e:
        raise config_error(e, ClaimsFile, where=f"{where}: ", noun="key") from None


def claims_names() -> list[str]:
    """The shipped claims files (``modalfuse claims NAME``)."""
    return sorted(p.stem for p in CLAIMS_DIR.glob("*.yaml"))


def claims_path(name: str) -> Path:
    """A shipped claims file's name, or a path to a claims file."""
    from ..files import find_file

    return find_file(name, CLAIMS_DIR, claims_names(), "claims file or shipped claims", "shipped", ConfigError)


def load_claims(name: str) -> ClaimsFile:
    path = claims_path(name)
    return validate_claims(load_yaml(path), str(path))
