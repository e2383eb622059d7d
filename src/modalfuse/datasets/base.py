"""What every dataset hands to the training loop.

A *sample* is ``{"features": {modality: array [D] or [T, D]}, "masks": {modality: bool [T]},
"label": int | float | float[C], "id": str}``; a *batch* is the same with a leading batch axis and
tensors: ``{"features": {m: Tensor[B, ...]}, "masks": {m: BoolTensor[B, T]}, "label": Tensor,
"ids": list[str]}``. Masks are present only for sequence modalities (True = a real step).

Map-style datasets (``ArrayDataset``) go through a ``DataLoader``; streaming datasets implement
``iter_batches`` and batch themselves (see ``loader.py``).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, runtime_checkable

import numpy as np
import torch

TaskKind = Literal["multiclass", "multilabel", "regression"]
Batch = dict[str, Any]


@dataclass(frozen=True)
class ModalitySpec:
    """One modality's input: feature size and, for sequences, the (padded) length."""

    dim: int
    seq_len: int | None = None  # None: one vector per sample


@dataclass(frozen=True)
class TaskSpec:
    """What is predicted: the loss and the metrics follow from ``kind``."""

    kind: TaskKind
    num_classes: int  # 1 for regression
    class_names: tuple[str, ...] | None = None


@dataclass
class DataBundle:
    """The splits of one dataset with the shapes a model needs to be built."""

    train: Any
    valid: Any
    test: Any | None
    modalities: dict[str, ModalitySpec]
    task: TaskSpec
    info: dict[str, Any] = field(default_factory=dict)  # logged and saved in the run folder

    def split(self, name: str) -> Any:
        ds = {"train": self.train, "valid": self.valid, "test": self.test}.get(name)
        if ds is None:
            raise KeyError(f"split '{name}' is not available (train, valid, test)")
        return ds


@runtime_checkable
class BatchStream(Protocol):
    """A dataset that batches itself (streaming readers)."""

    def iter_batches(
        self,
        batch_size: int,
        *,
        shuffle: bool,
        seed: int,
        epoch: int,
        rank: int = 0,
        world_size: int = 1,
        drop_last: bool = False,
    ) -> Iterator[Batch]: ...


class ArrayDataset(torch.utils.data.Dataset):
    """An in-memory split: per-modality arrays ``[N, D]`` or ``[N, T, D]``, optional masks ``[N, T]``,
    labels ``[N]`` or ``[N, C]``, ids ``[N]``."""

    def __init__(
        self,
        features: dict[str, np.ndarray],
        labels: np.ndarray,
        ids: Sequence[str] | None = None,
        masks: dict[str, np.ndarray] | None = None,
    ) -> None:
        n = len(labels)
        for name, arr in features.items():
            if len(arr) != n:
                raise ValueError(f"modality '{name}' has {len(arr)} rows, labels have {n}")
        self.features = {k: np.ascontiguousarray(v) for k, v in sorted(features.items())}
        self.masks = dict(sorted((masks or {}).items()))
        self.labels = np.asarray(labels)
        self.ids = list(ids) if ids is not None else [str(i) for i in range(n)]

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> dict[str, Any]:
        return {
            "features": {k: v[i] for k, v in self.features.items()},
            "masks": {k: v[i] for k, v in self.masks.items()},
            "label": self.labels[i],
            "id": self.ids[i],
        }

    def get_batch(self, index: np.ndarray) -> dict[str, Any]:
        """A whole batch at once: ``index`` ``[B]`` -> tensors (what ``collate_samples`` would give)."""
        return {
            "features": {k: torch.from_numpy(v[index]).float() for k, v in self.features.items()},
            "masks": {k: torch.from_numpy(v[index]).bool() for k, v in self.masks.items()},
            "label": torch.from_numpy(self.labels[index]),
            "ids": [self.ids[i] for i in index],
        }

    def subset(self, index: np.ndarray) -> ArrayDataset:
        return ArrayDataset(
            {k: v[index] for k, v in self.features.items()},
            self.labels[index],
            [self.ids[i] for i in index],
            {k: v[index] for k, v in self.masks.items()},
        )


def collate_samples(samples: list[dict[str, Any]]) -> Batch:
    """Stack samples into a batch (``DataLoader`` ``collate_fn``)."""
    first = samples[0]
    features = {
        k: torch.from_numpy(np.stack([s["features"][k] for s in samples])).float()
        for k in first["features"]
    }
    masks = {
        k: torch.from_numpy(np.stack([s["masks"][k] for s in samples])).bool() for k in first["masks"]
    }
    label = torch.from_numpy(np.stack([np.asarray(s["label"]) for s in samples]))
    return {"features": features, "masks": masks, "label": label, "ids": [s["id"] for s in samples]}
