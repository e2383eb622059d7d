"""A config is validated once, in ``build_config``: a comparison's run configs keep their typed
sections across the process boundary of ``compare --jobs``, and building the data and the model
from them validates nothing again."""

from __future__ import annotations

import pickle

import pytest
from pydantic import BaseModel, ValidationError

from modalfuse import registry, schema
from modalfuse.comparison.plan import plan
from modalfuse.config import Config, build_config
from modalfuse.datasets import build_data
from modalfuse.datasets.base import ModalitySpec, TaskSpec
from modalfuse.models import build_model
from modalfuse.schema import Resolved


def _typed_parts(section: Resolved, path: str = "model") -> dict[str, BaseModel | None]:
    """Every Resolved part of a section -> its typed params."""
    out: dict[str, BaseModel | None] = {path: section.params}
    for key, value in section.items():
        if isinstance(value, dict):
            out.update(_typed_parts(value, f"{path}.{key}") if isinstance(value, Resolved) else
                       {f"{path}.{key}.{k}": v.params for k, v in value.items() if isinstance(v, Resolved)})
    return out


@pytest.mark.parametrize("preset", ["yt8m-100-short", "mosi"])
def test_typed_params_survive_the_trip_to_a_worker_process(preset: str) -> None:
    for run in plan([preset], seeds=1).runs:
        sent = pickle.loads(pickle.dumps(run.config))
        before, after = _typed_parts(run.config.model), _typed_parts(sent.model)
        assert before.keys() == after.keys() and len(before) >= 4, run.label  # model, encoder, fusion, head
        assert all(p is not None for p in after.values()), (run.label, after)
        assert after == before, run.label  # the same classes, the same values
        assert sent.data.params == run.config.data.params is not None


def _refuse(*args, **kwargs):
    raise AssertionError("validated a second time")


def test_building_from_a_sent_config_validates_nothing_again(monkeypatch) -> None:
    sent = [pickle.loads(pickle.dumps(r.config)) for r in plan(["yt8m-100-short"], seeds=1).runs]
    synthetic = pickle.loads(pickle.dumps(build_config({"data": {"name": "synthetic"}, "model": {"name": "fusion"}})))
    for target in (schema, registry):
        monkeypatch.setattr(target, "validate_params", _refuse)
    monkeypatch.setattr(registry.Registry, "resolve", _refuse)
    specs, task = {"audio": ModalitySpec(128), "rgb": ModalitySpec(1024)}, TaskSpec("multilabel", 3862)
    for cfg in sent:
        assert sum(p.numel() for p in build_model(cfg.model, specs, task).parameters()) > 0
    bundle = build_data(synthetic.data)
    build_model(synthetic.model, bundle.modalities, bundle.task)


def test_a_config_holds_only_validated_sections() -> None:
    cfg = build_config({"data": {"name": "synthetic"}, "model": {"name": "fusion"}})
    with pytest.raises(ValidationError, match="expected a validated section"):
        Config(data={"name": "synthetic"}, model=cfg.model)
    assert isinstance(cfg.to_dict()["model"]["fusion"], dict) and not isinstance(cfg.to_dict()["model"], Resolved)
