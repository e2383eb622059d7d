"""CLI basics: --version, defaults in every --help, the start banner, final metrics after train,
evaluate naming its split and checkpoint, train --smoke, one task vocabulary for list --task, and
list datasets --paths."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

import modalfuse
from modalfuse.cli import build_parser, main

SMALL = ["--set", "train.epochs=1", "--set", "train.threads=1", "--set", "train.progress=none",
         "--set", "data.n_train=128", "--set", "data.n_valid=64", "--set", "data.n_test=64"]


def _parsers(parser: argparse.ArgumentParser, name: str = "modalfuse"):
    yield name, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub, p in action.choices.items():
                yield from _parsers(p, f"{name} {sub}")


def test_version(capsys):
    with pytest.raises(SystemExit) as e:
        main(["--version"])
    assert e.value.code == 0 and capsys.readouterr().out.strip() == f"modalfuse {modalfuse.__version__}"


@pytest.mark.parametrize("name,parser", list(_parsers(build_parser())), ids=lambda x: x if isinstance(x, str) else "")
def test_every_help_shows_the_defaults(name, parser):
    text = " ".join(parser.format_help().split())
    for action in parser._actions:
        if action.help in (None, argparse.SUPPRESS) or action.default in (None, False, [], argparse.SUPPRESS):
            continue
        if isinstance(action, (argparse._HelpAction, argparse._VersionAction)):
            continue
        assert f"(default: {action.default})" in text, f"{name}: {action.dest}"


def test_train_prints_banner_and_final_metrics_then_evaluate_names_split_and_checkpoint(tmp_path, capsys):
    assert main(["train", "synthetic", *SMALL, "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out.splitlines()
    banner = next(line for line in out if line.startswith("modalfuse "))
    assert "| device cpu | precision fp32 | threads 1 | world size 1 | run folder " in banner
    run = Path(out[-1])
    assert run.is_dir() and run.parent == tmp_path  # the run folder stays the last line (scripts read it)
    final = json.loads((run / "metrics.json").read_text())
    assert "test:" in out and "valid:" in out
    assert f"          accuracy  {final['test']['accuracy']:.4f}" in out

    assert main(["evaluate", str(run), "--split", "valid"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == f"{run}: split valid, checkpoint {run / 'checkpoints' / 'best.pt'} (epoch 1)"
    assert main(["evaluate", str(run), "--json"]) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out)["accuracy"] == pytest.approx(final["test"]["accuracy"])
    assert "split test, checkpoint" in captured.err


def test_smoke_checks_one_batch_per_split_and_keeps_nothing(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["train", "synthetic", "--smoke", *SMALL]) == 0
    out = capsys.readouterr().out
    assert "train  batch of 64" in out and "valid  batch of 64" in out and "test   batch of 64" in out
    assert "smoke check passed" in out and list(tmp_path.iterdir()) == []
    assert main(["train", "synthetic", "--smoke", "--set", "train.lerning_rate=1"]) == 2
    assert "train.lerning_rate" in capsys.readouterr().err


def test_list_task_is_one_vocabulary_and_unknown_tasks_are_errors(capsys):
    assert main(["list", "models", "--task", "foo"]) == 2
    err = capsys.readouterr().err
    assert "--task 'foo': unknown task" in err and "sentiment, yt8m, synthetic, features, multiclass, multilabel, regression" in err
    assert main(["list", "metrics", "--task", "yt8m"]) == 0
    yt8m = capsys.readouterr().out
    assert "gap " in yt8m and "acc7" not in yt8m
    assert main(["list", "metrics", "--task", "sentiment"]) == 0
    sentiment = capsys.readouterr().out
    assert "acc7" in sentiment and "gap " not in sentiment
    assert main(["list", "presets", "--task", "sentiment"]) == 0
    presets = capsys.readouterr().out
    assert "mosi/early" in presets and "yt8m" not in presets
    assert main(["list", "presets", "--task", "multilabel"]) == 0
    assert "yt8m/fc-late" in capsys.readouterr().out
    assert main(["list", "datasets", "--task", "yt8m"]) == 0
    assert [line.split()[0] for line in capsys.readouterr().out.splitlines()] == ["yt8m"]
    assert main(["list", "datasets", "--task", "sentiment"]) == 0
    assert {"mosi", "mmsa", "packed"} <= {line.split()[0] for line in capsys.readouterr().out.splitlines()}


def test_list_datasets_paths_gives_the_bundled_files(capsys):
    assert main(["list", "datasets", "--paths"]) == 0
    lines = capsys.readouterr().out.splitlines()
    paths = {line.split()[0]: [] for line in lines}
    for line in lines:
        name, path = line.split(maxsplit=1)
        assert Path(path).is_file()
        paths[name].append(Path(path).name)
    assert "validate0000.tfrecord" in paths["yt8m"] and "mosi_utterance.h5" in paths["mosi"]
    assert main(["list", "datasets", "--paths", "--task", "yt8m"]) == 0
    assert all(line.startswith("yt8m ") for line in capsys.readouterr().out.splitlines())
    assert main(["list", "models", "--paths"]) == 2
