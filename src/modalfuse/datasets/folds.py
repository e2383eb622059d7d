"""Train/valid/test folds by video (a video's segments never straddle two splits).

A ``folds`` value is one of:

- ``"standard-mosi"`` / ``"standard-mosei"``: the CMU-MultimodalSDK's standard folds (52/10/31 and
  2250/300/678 videos), shipped as ``data_files/mosi/standard_folds.json``;
- a path to a folds JSON: ``{"train": [videos], "valid": [videos], "test": [videos]}`` (``valid``
  optional), or one level of nesting with a single entry, ``{"name": {"train": ..., "test": ...}}``
  (like the MOSI ``folds.json``); ``path.json#name`` picks one entry of several;
- ``"random"``: a seeded split of the videos (``test_fraction``, ``valid_fraction``).

When a fold has no ``valid`` list, validation videos are carved out of the training videos with a
seeded split by video (``valid_fraction``).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..errors import ConfigError

STANDARD = {"standard-mosi": "CMU-MOSI", "standard-mosei": "CMU-MOSEI"}
SPLITS = ("train", "valid", "test")


def bundled_file(name: str) -> Path:
    """A file shipped in ``modalfuse/data_files/mosi/``."""
    return Path(__file__).resolve().parents[1] / "data_files" / "mosi" / name


def _read_json(path: Path, where: str) -> dict:
    if not path.is_file():
        raise ConfigError(f"folds '{where}': file {path} not found")
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise ConfigError(f"folds '{where}': {path} is not valid JSON ({e})") from None


def load_folds(spec: str) -> dict[str, list[str]]:
    """Read a named or file folds spec (not ``"random"``).

    Returns:
        ``{"train": [...], "test": [...], "valid": [...]}`` (``valid`` may be missing).
    """
    if spec in STANDARD:
        raw = _read_json(bundled_file("standard_folds.json"), spec)[STANDARD[spec]]
    else:
        path, _, entry = spec.partition("#")
        raw = _read_json(Path(path), spec)
        if entry:
            if entry not in raw:
                raise ConfigError(f"folds '{spec}': no entry '{entry}'; entries: {', '.join(raw)}")
            raw = raw[entry]
        elif "train" not in raw:
            if len(raw) != 1:
                raise ConfigError(
                    f"folds '{spec}': expected 'train'/'test' lists or one named entry, found "
                    f"entries {', '.join(raw)} (pick one with '{path}#NAME')"
                )
            raw = next(iter(raw.values()))
    if not isinstance(raw, dict) or "train" not in raw or "test" not in raw:
        raise ConfigError(f"folds '{spec}': expected lists 'train' and 'test' (and optionally 'valid')")
    unknown = set(raw) - set(SPLITS)
    if unknown:
        raise ConfigError(f"folds '{spec}': unknown split(s) {sorted(unknown)}; expected {SPLITS}")
    return {k: [str(v) for v in raw[k]] for k in raw}


def _carve(videos: Sequence[str], fraction: float, rng: np.random.Generator) -> tuple[list[str], list[str]]:
    videos = sorted(videos)
    n = int(round(len(videos) * fraction))
    if fraction > 0 and len(videos) > 1:
        n = min(max(n, 1), len(videos) - 1)
    picked = set(rng.permutation(len(videos))[:n].tolist())
    rest = [v for i, v in enumerate(videos) if i not in picked]
    taken = [v for i, v in enumerate(videos) if i in picked]
    return rest, taken


def assign_splits(
    videos: Sequence[str],
    spec: str,
    *,
    valid_fraction: float = 0.1,
    test_fraction: float = 0.2,
    seed: int = 0,
) -> dict[str, np.ndarray]:
    """Split segments by their video.

    Args:
        videos: each segment's video id ``[N]``.
        spec: ``"standard-mosi"``, ``"standard-mosei"``, a folds JSON path or ``"random"``.
        valid_fraction: share of training videos used for validation when the folds have no valid
            split (and for ``"random"``).
        test_fraction: share of videos held out for test (``"random"`` only).
        seed: seed of the random video splits.

    Returns:
        ``{"train": index [N_train], "valid": index, "test": index}``: segment indices; segments of
        videos in no fold are in none.
    """
    rng = np.random.default_rng(seed)
    present = sorted(set(videos))
    if spec == "random":
        rest, test = _carve(present, test_fraction, rng)
        train, valid = _carve(rest, valid_fraction, rng)
        folds = {"train": train, "valid": valid, "test": test}
    else:
        folds = load_folds(spec)
        if "valid" not in folds:
            have = set(present)
            train, valid = _carve([v for v in folds["train"] if v in have], valid_fraction, rng)
            folds = {"train": train, "valid": valid, "test": folds["test"]}
    where = {}
    for split in SPLITS:
        for v in folds.get(split, []):
            where.setdefault(v, split)
    index: dict[str, list[int]] = {s: [] for s in SPLITS}
    for i, v in enumerate(videos):
        split = where.get(v)
        if split is not None:
            index[split].append(i)
    if not index["train"]:
        sample = ", ".join(present[:3])
        raise ConfigError(
            f"folds '{spec}': no segment's video is in its train split (the data's videos look like "
            f"{sample}); check that the folds belong to this dataset"
        )
    return {s: np.asarray(ix, np.int64) for s, ix in index.items()}
