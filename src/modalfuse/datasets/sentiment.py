"""Multimodal sentiment datasets (CMU-MOSI, CMU-MOSEI): ``mosi``, ``packed``, ``cmu-sdk``, ``mmsa``,
``mult``.

Every source becomes one table of segments (id ``video[k]``, video, start time, score in [-3, 3],
features per modality), then the same steps run for all of them:

1. *context* (utterance-level data only): each segment's features become ``[2c+1, D]``, its
   neighbours in the same video by start time around the centre index ``c``, with a mask;
2. NaN and +-inf features are replaced by 0 and counted (logged, and in ``info["nonfinite_replaced"]``);
   a segment whose *score* is not finite is dropped and counted (a warning names the segments,
   ``info["dropped_nonfinite_score"]``), and a finite score outside [-3, 3] is an error naming the
   segment;
3. *folds* split by video (``folds.py``); pickles keep their own splits unless ``folds`` is set;
4. the *label scheme* maps scores to classes or keeps them for regression (``labels.py``);
5. *normalize*: z-scores per feature with the training split's mean and standard deviation over
   real (unmasked) steps only; padding stays 0.

Sequences are cut or zero-padded to ``seq_len`` steps (the first ``seq_len`` real steps are kept),
with a mask ``[N, seq_len]`` (True = a real step). Utterance-level data (one vector per segment, e.g.
``mosi`` or ``align_to: labels``) gives ``[N, D]`` and no mask when ``context`` is 0.

``mosi`` ships with the package: the utterance-level CMU-MOSI features of Poria et al. (ACL 2017):
text (TextCNN, 100-d), audio (openSMILE, 73-d), video (3D-CNN, 100-d), 2198 opinion segments of 93
videos, aligned from the CMU-MultimodalSDK files with ``modalfuse prepare cmu-sdk --align-to
labels``. Its default folds are the speaker-independent split those features were learned on (62
train videos, 31 test videos), with validation carved out of the train videos by video. The text and
video features were learned on those train videos, so validation scores are optimistic: report the
test split.
"""

from __future__ import annotations

import logging
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import Field

from ..config import Params
from ..errors import ConfigError, DataError
from ..registry import DATASETS
from .base import ArrayDataset, DataBundle, ModalitySpec
from .folds import SPLITS, assign_splits, bundled_file
from .labels import LabelScheme, apply_scheme, task_for

log = logging.getLogger(__name__)

MOSI_PACKED = "mosi_utterance.h5"
MOSI_FOLDS = "folds.json"


class SentimentParams(Params):
    """Options shared by every sentiment dataset."""

    label_scheme: LabelScheme = "3class"
    neutral_band: float = Field(0.0, ge=0)  # 3class: |score| <= neutral_band is neutral
    seq_len: int = Field(50, ge=1)  # steps per sequence (sequence data)
    normalize: bool = True  # z-scores with training-split statistics
    folds: str | None = None  # standard-mosi | standard-mosei | random | path.json[#name]; None: the dataset's default
    valid_fraction: float = Field(0.1, ge=0, lt=1)  # validation videos carved from train when folds have none
    test_fraction: float = Field(0.2, gt=0, lt=1)  # test videos for folds=random
    seed: int = 0  # seed of the video splits
    context: int = Field(0, ge=0)  # utterance-level data: neighbouring segments on each side


class MosiParams(SentimentParams):
    pass


class PackedParams(SentimentParams):
    path: str  # a packed dataset written by ``modalfuse prepare cmu-sdk``


class CmuSdkParams(SentimentParams):
    sequences: dict[str, str]  # {modality: path.csd}
    labels: str  # labels .csd
    align_to: str = "labels"  # a sequence name (word-level) or "labels" (one vector per segment)
    workers: int = Field(1, ge=1)


class PickleParams(SentimentParams):
    path: str  # an MMSA or MulT pickle (see modalfuse.readers.pickles for the layouts)


@dataclass
class SentimentTable:
    """All segments of a source, before splitting."""

    ids: list[str]
    videos: list[str]
    starts: np.ndarray  # [N] segment start times (orders context neighbours)
    scores: np.ndarray  # [N] float sentiment
    features: dict[str, np.ndarray]  # [N, D] (utterance level) or [N, T, D]
    masks: dict[str, np.ndarray]  # [N, T] for sequences
    utterance_level: bool
    source: str
    splits: dict[str, np.ndarray] | None = None  # given by the source (pickles)
    extra_info: dict[str, Any] = field(default_factory=dict)  # source-specific, merged into the bundle's info


# ----------------------------------------------------------------------------- sources


def table_from_packed(path: str, seq_len: int) -> SentimentTable:
    from ..readers.packed import PackedDataset

    with PackedDataset(path) as p:
        features, masks = {}, {}
        for m in p.modalities:
            if p.utterance_level:
                features[m] = p.vectors(m).astype(np.float32)
            else:
                features[m], masks[m] = p.padded(m, seq_len)
        return SentimentTable(
            ids=p.ids,
            videos=p.videos,
            starts=p.intervals[:, 0].copy(),
            scores=p.labels[:, 0].astype(np.float32),
            features=features,
            masks=masks,
            utterance_level=p.utterance_level,
            source=str(path),
        )


def _fit_length(x: np.ndarray, mask: np.ndarray, seq_len: int) -> tuple[np.ndarray, np.ndarray]:
    """Move each row's real steps to the front (in order), then cut or zero-pad to ``seq_len``.

    Args:
        x: ``[N, T, D]``; mask: ``[N, T]`` bool.

    Returns:
        ``([N, seq_len, D], [N, seq_len])``.
    """
    # Stable sort on "is padding" keeps real steps in order: MulT pads in front, MMSA behind.
    order = np.argsort(~mask, axis=1, kind="stable")
    x = np.take_along_axis(x, order[:, :, None], axis=1)
    mask = np.take_along_axis(mask, order, axis=1)
    t = x.shape[1]
    if t >= seq_len:
        return x[:, :seq_len], mask[:, :seq_len]
    pad = seq_len - t
    return (
        np.concatenate([x, np.zeros((len(x), pad, x.shape[2]), x.dtype)], axis=1),
        np.concatenate([mask, np.zeros((len(x), pad), bool)], axis=1),
    )


def _from_pickle(path: str, layout: str, seq_len: int) -> SentimentTable:
    from ..readers.pickles import read_sentiment_pickle

    splits = read_sentiment_pickle(path, layout)
    names = sorted(set.intersection(*(set(d["features"]) for d in splits.values())))
    features, masks = {}, {}
    for m in names:
        parts = [_fit_length(d["features"][m], d["masks"][m], seq_len) for d in splits.values()]
        features[m] = np.concatenate([p[0] for p in parts])
        masks[m] = np.concatenate([p[1] for p in parts])
    sizes = [len(d["scores"]) for d in splits.values()]
    bounds = np.cumsum([0, *sizes])
    return SentimentTable(
        ids=[i for d in splits.values() for i in d["ids"]],
        videos=[v for d in splits.values() for v in d["videos"]],
        starts=np.zeros(bounds[-1]),  # pickles carry no times; context is for utterance-level data
        scores=np.concatenate([d["scores"] for d in splits.values()]),
        features=features,
        masks=masks,
        utterance_level=False,
        source=str(path),
        splits={s: np.arange(bounds[i], bounds[i + 1]) for i, s in enumerate(splits)},
    )


# ----------------------------------------------------------------------------- shared steps


def _with_context(table: SentimentTable, context: int) -> None:
    """Replace ``[N, D]`` features by ``[N, 2c+1, D]`` windows of same-video neighbours."""
    n = len(table.ids)
    videos = np.asarray(table.videos)
    order = np.lexsort((table.starts, videos))  # by video, then start time
    sorted_videos = videos[order]
    width = 2 * context + 1
    src = np.zeros((n, width), np.int64)
    ok = np.zeros((n, width), bool)
    for j, offset in enumerate(range(-context, context + 1)):
        pos = np.arange(n) + offset
        inside = (pos >= 0) & (pos < n)
        same = np.zeros(n, bool)
        same[inside] = sorted_videos[pos[inside]] == sorted_videos[inside]
        src[order, j] = np.where(same, order[np.clip(pos, 0, n - 1)], 0)
        ok[order, j] = same
    for m, x in table.features.items():
        table.features[m] = np.where(ok[:, :, None], x[src], 0).astype(np.float32)
        table.masks[m] = ok.copy()


def _replace_nonfinite(table: SentimentTable) -> dict[str, int]:
    counts = {}
    for m, x in table.features.items():
        bad = ~np.isfinite(x)
        counts[m] = int(bad.sum())
        if counts[m]:
            x[bad] = 0.0
            log.warning("%s: %d non-finite values in '%s' replaced by 0", table.source, counts[m], m)
    return counts


SCORE_RANGE = (-3.0, 3.0)  # CMU-MOSI / CMU-MOSEI sentiment scale


def _check_scores(table: SentimentTable) -> np.ndarray:
    """Non-finite scores are dropped and counted; finite scores outside [-3, 3] are refused.

    A NaN score is a missing annotation: it would otherwise become "neutral" (3class), "negative"
    (2class_non0) or an index error (5/7class). A finite score outside the scale means a wrong file
    or a wrong scale, which no label scheme can repair.

    Returns:
        ``[N]`` bool, True where the score is finite.

    Raises:
        DataError: naming the source and the first segment whose score is outside [-3, 3].
    """
    scores = np.asarray(table.scores, np.float64).reshape(-1)
    finite = np.isfinite(scores)
    lo, hi = SCORE_RANGE
    bad = np.flatnonzero(finite & ((scores < lo - 1e-6) | (scores > hi + 1e-6)))
    if len(bad):
        i = bad[0]
        raise DataError(
            f"{table.source}: segment '{table.ids[i]}': sentiment score {scores[i]:g} is outside "
            f"[{lo:g}, {hi:g}] ({len(bad)} segments out of range)"
        )
    if not finite.all():
        missing = [table.ids[i] for i in np.flatnonzero(~finite)]
        log.warning("%s: %d segments with a non-finite sentiment score dropped: %s%s", table.source,
                    len(missing), ", ".join(missing[:5]), " ..." if len(missing) > 5 else "")
    return finite


def _normalize(features: dict[str, np.ndarray], masks: dict[str, np.ndarray], train: np.ndarray) -> dict[str, Any]:
    """z-scores in place with statistics of the training rows' real steps.

    Returns:
        ``{modality: {"mean": [D], "std": [D]}}``, kept in the run folder so that ``predict`` scales
        new inputs exactly as training did (``apply_normalization``).
    """
    stats = {}
    for m, x in features.items():
        rows = x[train]
        real = rows[masks[m][train]] if m in masks else rows  # [steps, D]
        mean = real.mean(axis=0, dtype=np.float64)
        std = real.std(axis=0, dtype=np.float64)
        std[std < 1e-8] = 1.0  # constant features: centre only
        stats[m] = {"mean": mean.tolist(), "std": std.tolist()}
    _scale(features, masks, stats)
    return stats


def _scale(features: dict[str, np.ndarray], masks: dict[str, np.ndarray], stats: dict[str, Any]) -> None:
    for m, x in features.items():
        x -= np.asarray(stats[m]["mean"], np.float32)
        x /= np.asarray(stats[m]["std"], np.float32)
        if m in masks:
            x[~masks[m]] = 0.0  # padding stays 0


def apply_normalization(ds: ArrayDataset, stats: dict[str, Any]) -> None:
    """Scale a split in place with training statistics from ``DataBundle.info["normalization"]``."""
    _scale(ds.features, ds.masks, stats)


def build_splits(table: SentimentTable, p: SentimentParams, default_folds: str) -> DataBundle:
    if p.context:
        if not table.utterance_level:
            raise ConfigError(
                f"data.context={p.context}: context applies to utterance-level data (one vector per "
                f"segment); {table.source} holds sequences"
            )
        _with_context(table, p.context)
    nonfinite = _replace_nonfinite(table)

    if p.folds is None and table.splits is not None:
        index = dict(table.splits)
        if "valid" not in index or not len(index["valid"]):
            raise ConfigError(f"{table.source}: has no 'valid' split; set data.folds (e.g. 'random')")
        index.setdefault("test", np.zeros(0, np.int64))
        folds = "as in the file"
    else:
        folds = p.folds or default_folds
        index = assign_splits(
            table.videos, folds, valid_fraction=p.valid_fraction, test_fraction=p.test_fraction, seed=p.seed
        )

    finite = _check_scores(table)
    labels, keep = apply_scheme(np.where(finite, table.scores, 0.0), p.label_scheme, p.neutral_band)
    full_labels = np.zeros(len(keep), labels.dtype)
    full_labels[keep] = labels
    keep &= finite
    index = {s: ix[keep[ix]] for s, ix in index.items()}

    stats = _normalize(table.features, table.masks, index["train"]) if p.normalize else None

    def split(ix: np.ndarray) -> ArrayDataset | None:
        return ArrayDataset(
            {m: x[ix] for m, x in table.features.items()},
            full_labels[ix],
            [table.ids[i] for i in ix],
            {m: k[ix] for m, k in table.masks.items()},
        )

    modalities = {
        m: ModalitySpec(dim=int(x.shape[-1]), seq_len=int(x.shape[1]) if x.ndim == 3 else None)
        for m, x in sorted(table.features.items())
    }
    info: dict[str, Any] = {
        "source": table.source,
        "label_scheme": p.label_scheme,
        "folds": folds,
        "segments": {s: int(len(ix)) for s, ix in index.items()},
        "videos": {s: len({table.videos[i] for i in ix}) for s, ix in index.items()},
        "dropped_by_label_scheme": int((~keep & finite).sum()),
        "dropped_nonfinite_score": int((~finite).sum()),
        "nonfinite_replaced": nonfinite,
        "normalization": stats,
        **table.extra_info,
    }
    return DataBundle(
        train=split(index["train"]),
        valid=split(index["valid"]),
        test=split(index["test"]) if len(index.get("test", [])) else None,
        modalities=modalities,
        task=task_for(p.label_scheme),
        info=info,
    )


# ----------------------------------------------------------------------------- registered datasets


@DATASETS.register(
    "mosi",
    params=MosiParams,
    task="sentiment",  # `list --task` (listing.TASKS)
    description="CMU-MOSI utterance-level text/audio/video features (Poria et al. 2017), bundled",
)
def build_mosi(params: MosiParams) -> DataBundle:
    table = table_from_packed(str(bundled_file(MOSI_PACKED)), params.seq_len)
    table.source = "mosi (bundled)"
    return build_splits(table, params, default_folds=str(bundled_file(MOSI_FOLDS)))


@DATASETS.register(
    "packed", params=PackedParams, task="sentiment", description="a packed dataset from 'modalfuse prepare cmu-sdk'"
)
def build_packed(params: PackedParams) -> DataBundle:
    return build_splits(table_from_packed(params.path, params.seq_len), params, default_folds="random")


@DATASETS.register(
    "cmu-sdk",
    params=CmuSdkParams,
    task="sentiment",
    description="CMU-MultimodalSDK .csd sequences, aligned on the fly",
)
def build_cmu_sdk(params: CmuSdkParams) -> DataBundle:
    from ..readers.csd_align import align_csd

    with tempfile.TemporaryDirectory(prefix="modalfuse-cmu-sdk-") as tmp:
        out = str(Path(tmp) / "aligned.h5")
        align_csd(params.sequences, params.labels, params.align_to, out, workers=params.workers)
        table = table_from_packed(out, params.seq_len)
    table.source = params.labels
    return build_splits(table, params, default_folds="random")


@DATASETS.register("mmsa", params=PickleParams, task="sentiment", description="an MMSA pickle (aligned_50.pkl, unaligned_50.pkl)")
def build_mmsa(params: PickleParams) -> DataBundle:
    return build_splits(_from_pickle(params.path, "mmsa", params.seq_len), params, default_folds="random")


@DATASETS.register("mult", params=PickleParams, task="sentiment", description="a MulT pickle (mosei_senti_data.pkl)")
def build_mult(params: PickleParams) -> DataBundle:
    return build_splits(_from_pickle(params.path, "mult", params.seq_len), params, default_folds="random")
