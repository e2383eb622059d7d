"""Plugins: --import, MODALFUSE_PLUGINS and the modalfuse.plugins entry-point group; run folders
record the plugin modules they need, and evaluate/export/report find them again (or say which is
missing)."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from modalfuse import plugins
from modalfuse.errors import UserError
from modalfuse.registry import FUSIONS

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "gated-sum-plugin"

PLUGIN_SOURCE = '''
from torch import nn
from modalfuse.models.fusions import FusionOutput
from modalfuse.registry import FUSIONS


@FUSIONS.register("{name}", description="test plugin fusion")
class Sum(nn.Module):
    def __init__(self, input_dims, sequence=None):
        super().__init__()
        self.order = sorted(input_dims)
        self.output_dim = max(input_dims.values())
        self.parts = None

    def forward(self, states, masks=None):
        return FusionOutput(sum(nn.functional.pad(states[m].float(), (0, self.output_dim - states[m].shape[-1]))
                                for m in self.order))
'''


@pytest.fixture
def plugin_module(tmp_path, monkeypatch):
    """A fresh importable module (unique name, so registries never see a name twice) registering
    one fusion; returns (module name, fusion name)."""
    tag = uuid.uuid4().hex[:8]
    module, fusion = f"mf_test_plugin_{tag}", f"test-sum-{tag}"
    (tmp_path / f"{module}.py").write_text(PLUGIN_SOURCE.format(name=fusion))
    monkeypatch.syspath_prepend(str(tmp_path))
    return module, fusion


def test_import_plugin_registers_and_reports_its_entries(plugin_module):
    module, fusion = plugin_module
    assert plugins.import_plugin(module) == [f"fusion:{fusion}"]
    assert fusion in FUSIONS
    assert plugins.loaded_plugins()[module] == [f"fusion:{fusion}"]
    assert plugins.import_plugin(module) == [f"fusion:{fusion}"]  # a second import is a no-op


def test_missing_plugin_is_one_line_naming_it():
    with pytest.raises(UserError, match=r"--import nope_mod: plugin module 'nope_mod' is not installed") as e:
        plugins.import_plugin("nope_mod", source="--import nope_mod")
    assert "\n" not in str(e.value)


def test_run_folder_records_and_requires_only_the_plugins_its_config_names(plugin_module, tmp_path):
    module, fusion = plugin_module
    plugins.import_plugin(module)
    cfg = {"data": {"name": "synthetic"}, "model": {"name": "fusion", "fusion": {"name": fusion}}, "train": {}}
    assert plugins.needed_plugins(cfg) == [module]
    assert plugins.needed_plugins({"data": {"name": "synthetic"}, "model": {"name": "fusion",
                                                                            "fusion": {"name": "concat"}}}) == []
    run = tmp_path / "run"
    run.mkdir()
    assert plugins.record_run(run, cfg) == [module]
    assert json.loads((run / plugins.RUN_FILE).read_text()) == {"modules": [module]}
    assert plugins.require_run(run) == [module]

    (run / plugins.RUN_FILE).write_text(json.dumps({"modules": ["gone_plugin_mod"]}))
    with pytest.raises(UserError, match=r"run \(trained with plugin 'gone_plugin_mod', recorded in plugins.json\): "
                                        r"plugin module 'gone_plugin_mod' is not installed"):
        plugins.require_run(run)
    (run / plugins.RUN_FILE).write_text("[1, 2")
    with pytest.raises(UserError, match="plugins.json: expected JSON"):
        plugins.require_run(run)
    assert plugins.require_run(tmp_path) == []  # a folder without plugins.json needs nothing


def _cli(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess:
    full = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", plugins.ENV_VAR)}
    full.update(env or {})
    return subprocess.run([sys.executable, "-m", "modalfuse", *args], capture_output=True, text=True, env=full,
                          cwd=cwd, timeout=300)


@pytest.mark.slow
def test_entry_point_group_and_environment_variable(tmp_path):
    """An installed distribution's `modalfuse.plugins` entry point (a dist-info folder on the path,
    as pip leaves it) and MODALFUSE_PLUGINS both load a plugin."""
    tag = uuid.uuid4().hex[:6]
    (tmp_path / f"ep_plug_{tag}.py").write_text(PLUGIN_SOURCE.format(name=f"ep-sum-{tag}"))
    (tmp_path / f"env_plug_{tag}.py").write_text(PLUGIN_SOURCE.format(name=f"env-sum-{tag}"))
    dist = tmp_path / f"ep_plug_{tag}-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text(f"Metadata-Version: 2.1\nName: ep-plug-{tag}\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text(f"[modalfuse.plugins]\nsum = ep_plug_{tag}\n")
    src = str(Path(plugins.__file__).resolve().parents[1])
    r = _cli("list", "fusions", env={"PYTHONPATH": os.pathsep.join([str(tmp_path), src]),
                                     plugins.ENV_VAR: f"env_plug_{tag}"})
    assert r.returncode == 0, r.stderr
    assert f"ep-sum-{tag}" in r.stdout and f"env-sum-{tag}" in r.stdout
    r = _cli("list", "fusions", env={"PYTHONPATH": src, plugins.ENV_VAR: "no_such_plugin_mod"})
    assert r.returncode == 2 and "environment variable MODALFUSE_PLUGINS: plugin module 'no_such_plugin_mod'" in r.stderr


@pytest.mark.slow
def test_example_plugin_trained_evaluated_exported_and_reported_from_the_cli(tmp_path):
    """examples/gated-sum-plugin: trained with --import; evaluate, analyze and report then find the
    plugin through the run's plugins.json alone; without it on the path, evaluate names it. (Export
    with a plugin: the example's demo.sh in CI, and test_api.)"""
    src = str(Path(plugins.__file__).resolve().parents[1])
    path = {"PYTHONPATH": os.pathsep.join([str(EXAMPLE), src])}
    r = _cli("--import", "modalfuse_gated_sum", "train", str(EXAMPLE / "configs" / "gated-sum.yaml"),
             "--set", "train.epochs=1", "--set", "train.threads=1", "--set", "data.n_train=256",
             "--out", str(tmp_path / "runs"), env=path)
    assert r.returncode == 0, r.stderr
    run = Path(r.stdout.strip().splitlines()[-1])
    assert json.loads((run / "plugins.json").read_text()) == {"modules": ["modalfuse_gated_sum"]}

    r = _cli("evaluate", str(run), "--split", "valid", env=path)
    assert r.returncode == 0, r.stderr
    assert "split valid, checkpoint" in r.stdout and "accuracy" in r.stdout
    r = _cli("analyze", str(run), env=path)
    assert r.returncode == 0, r.stderr
    r = _cli("report", str(run), "--out", str(tmp_path / "report"), env=path)
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "report" / "report.md").is_file()

    r = _cli("evaluate", str(run), env={"PYTHONPATH": src})
    if importlib.util.find_spec("modalfuse_gated_sum") is None:
        assert r.returncode == 2
        assert "plugin module 'modalfuse_gated_sum' is not installed" in r.stderr and "Traceback" not in r.stderr
    else:  # CI installs the example with pip: its entry point alone must do
        assert r.returncode == 0, r.stderr
