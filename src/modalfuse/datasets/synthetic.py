"""A synthetic multimodal dataset where fusion strictly beats every single modality.

Three modalities each carry one hidden bit, embedded along a random direction with Gaussian noise:
``text`` carries ``x1``, ``audio`` carries ``x2``, ``video`` carries ``x3``. The label needs an
*interaction* between modalities:

- ``multiclass`` (4 classes): ``y = 2 * (x1 XOR x2) + x3``. Any one modality alone tells at most the
  low bit (``video``) or nothing (``text``/``audio`` see only half of the XOR), so a unimodal model
  tops out at 50% accuracy while a fused one approaches 100% (less the noise).
- ``multilabel`` (3 labels): ``[x1 XOR x2, x3, x1 AND x2]``.
- ``regression``: ``y = 1.5 * (2 (x1 XOR x2) - 1) + 0.5 * (2 x3 - 1)``.

With ``seq_len`` set, each modality is a sequence ``[T, D]``: the signal sits at every valid step,
with fresh noise per step, and a random number of trailing steps is padding (mask False).
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from pydantic import Field

from ..config import Params
from ..registry import DATASETS
from .base import ArrayDataset, DataBundle, ModalitySpec, TaskSpec

MODALITIES = ("text", "audio", "video")
CLASS_NAMES = {
    "multiclass": ("same/off", "same/on", "differ/off", "differ/on"),
    "multilabel": ("xor", "video_bit", "and"),
}


class SyntheticParams(Params):
    task: Literal["multiclass", "multilabel", "regression"] = "multiclass"
    n_train: int = Field(2000, ge=8)
    n_valid: int = Field(500, ge=8)
    n_test: int = Field(1000, ge=8)
    dims: dict[str, int] = {"text": 16, "audio": 12, "video": 8}
    signal: float = Field(2.0, gt=0)  # distance of each bit's mean from the origin, in noise std units
    seq_len: int | None = Field(None, ge=1)
    seed: int = 0


def _split(rng: np.random.Generator, n: int, p: SyntheticParams, directions: dict[str, np.ndarray]) -> ArrayDataset:
    bits = rng.integers(0, 2, size=(n, 3))
    x1, x2, x3 = bits.T
    features, masks = {}, {}
    for name, bit in zip(MODALITIES, (x1, x2, x3)):
        dim = p.dims[name]
        mean = (2.0 * bit - 1.0)[:, None] * directions[name] * p.signal  # [N, D]
        if p.seq_len is None:
            features[name] = (mean + rng.standard_normal((n, dim))).astype(np.float32)
        else:
            t = p.seq_len
            seq = mean[:, None, :] + rng.standard_normal((n, t, dim))
            lengths = rng.integers(max(1, t // 2), t + 1, size=n)
            mask = np.arange(t)[None, :] < lengths[:, None]
            features[name] = np.where(mask[..., None], seq, 0.0).astype(np.float32)
            masks[name] = mask
    xor = x1 ^ x2
    if p.task == "multiclass":
        labels = (2 * xor + x3).astype(np.int64)
    elif p.task == "multilabel":
        labels = np.stack([xor, x3, x1 & x2], 1).astype(np.float32)
    else:
        labels = (1.5 * (2.0 * xor - 1) + 0.5 * (2.0 * x3 - 1)).astype(np.float32)
    return ArrayDataset(features, labels, masks=masks)


@DATASETS.register("synthetic", params=SyntheticParams, task="synthetic",
                   description="three modalities, label = interaction of their hidden bits (fusion > unimodal)")
def build_synthetic(p: SyntheticParams) -> DataBundle:
    missing = [m for m in MODALITIES if m not in p.dims]
    if missing:
        from ..errors import ConfigError

        raise ConfigError(f"config key 'data.dims' needs sizes for {', '.join(missing)}, found {sorted(p.dims)}")
    rng = np.random.default_rng(p.seed)
    directions = {}
    for name in MODALITIES:
        v = rng.standard_normal(p.dims[name])
        directions[name] = v / np.linalg.norm(v)
    splits = [_split(rng, n, p, directions) for n in (p.n_train, p.n_valid, p.n_test)]
    num_classes = {"multiclass": 4, "multilabel": 3, "regression": 1}[p.task]
    return DataBundle(
        *splits,
        modalities={m: ModalitySpec(p.dims[m], p.seq_len) for m in MODALITIES},
        task=TaskSpec(p.task, num_classes, CLASS_NAMES.get(p.task)),
        info={"samples": {"train": p.n_train, "valid": p.n_valid, "test": p.n_test}},
    )
