"""``modalfuse init DATA...``: a commented comparison preset for your own feature table.

It looks at the table (schemas and array headers only), then writes two files beside ``--out``:

- ``<out>`` (``comparison.yaml``): the comparison: a unimodal model per modality, early, late and
  attention fusion and two fusions of the zoo (gmu, lmf), 3 seeds;
- ``<out stem>-train.yaml``: the training config every model starts from: the ``features`` dataset
  on DATA, an encoder per modality (an MLP for vectors, a transformer for sequences), the task's
  primary metric as the validation monitor.

Then ``modalfuse compare <out>`` runs it. Existing files are kept unless ``force``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .errors import UserError

VECTOR_ENCODER = "{name: mlp, hidden_dims: [128], dropout: 0.1}"
SEQUENCE_ENCODER = "{name: transformer, d_model: 64, layers: 1, heads: 4, ff_dim: 128, dropout: 0.1, pooling: mean}"
WHY_METRIC = {
    "multiclass": "accuracy (top-1)",
    "multilabel": "GAP@k (global average precision over each example's top-k classes)",
    "regression": "mae (mean absolute error, minimised)",
}


def _yaml_list(items: list[str]) -> str:
    return "[" + ", ".join(items) + "]"


def train_config(paths: list[str], found: dict[str, Any], metric: str, label: str) -> str:
    """The training config's text (commented YAML)."""
    mods = found["modalities"]
    seq = sorted(m for m, kind in mods.items() if kind == "sequence")
    vec = sorted(m for m in mods if m not in seq)
    path = str(Path(paths[0]).resolve()) if len(paths) == 1 else _yaml_list([str(Path(p).resolve()) for p in paths])
    default_encoder, other, other_encoder = (VECTOR_ENCODER, seq, SEQUENCE_ENCODER) if vec else (SEQUENCE_ENCODER, [], "")
    encoders = "".join(f"    {m}: {other_encoder}\n" for m in other)
    encoders = f"  encoders:                  # per-modality: sequences\n{encoders}" if encoders else ""
    split = ("splits from the table's split column" if found["split_column"] else
             "no split column: a seeded split by the 'group' column (by row without one)")
    return f"""\
# The training config every model of the comparison starts from (written by `modalfuse init`).
data:
  name: features
  path: {path}
  label: {label}               # {found['label']} labels -> task {found['task']}
  task: {found['task']}
  modalities: {_yaml_list(sorted(mods))}   # {', '.join(f'{m}: {k}' for m, k in sorted(mods.items()))}
  normalize: true            # z-scores with the training split's statistics
  # {split}
  valid_fraction: 0.1
  test_fraction: 0.2
  seed: 0
model:
  name: fusion
  # vectors: an MLP; sequences (padded, with masks): a transformer with masked mean pooling
  encoder: {default_encoder}
{encoders}  fusion: {{name: concat}}     # early fusion; the comparison swaps it
  head: {{name: mlp, hidden_dims: [64], dropout: 0.1}}
train:
  epochs: 30
  batch_size: 64
  learning_rate: 1.0e-3
  weight_decay: 0.01
  monitor: {metric}             # {WHY_METRIC[found['task']]}
  patience: 5                # stop after 5 epochs without a better validation {metric}
  seed: 0
eval:
  splits: [valid, test]
"""


def comparison(out_name: str, train_name: str, found: dict[str, Any], metric: str, data: str) -> str:
    """The comparison preset's text (commented YAML)."""
    mods = sorted(found["modalities"])
    unimodal = "".join(f'  {m}: {{config: {train_name}, overrides: ["model.modalities=[{m}]"]}}\n' for m in mods)
    return f"""\
# modalfuse compare {out_name}
# Written by `modalfuse init {data}`: {found['task']} on {len(mods)} modalities ({', '.join(mods)}),
# validation metric {metric}. Every model shares {train_name}'s data, encoders, head and schedule;
# only the fusion changes. Edit freely; `modalfuse list fusions` shows what else there is.
description: >-
  Your features ({', '.join(mods)}; {found['task']}): unimodal models against early, late and attention
  fusion and two fusions of the zoo (gmu, lmf).
seeds: 3
models:
  # one modality each: the baselines a fusion must beat
{unimodal}  # early fusion: the encoders' states concatenated
  early: {train_name}
  # late fusion: a classifier per modality, probabilities averaged
  late: {{config: {train_name}, overrides: ["model.head={{name: vote, vote: soft, hidden_dims: [64], dropout: 0.1}}"]}}
  # attention over the modality states, learned weighting
  attention: {{config: {train_name}, overrides: ["model.fusion={{name: attention, d_model: 64, heads: 4, dropout: 0.1}}"]}}
  # gated multimodal unit (Arevalo et al. 2017)
  gmu: {{config: {train_name}, overrides: ["model.fusion={{name: gmu, hidden_dim: 64, dropout: 0.1}}"]}}
  # low-rank multimodal fusion (Liu et al. 2018), rank 4
  lmf: {{config: {train_name}, overrides: ["model.fusion={{name: lmf, output_dim: 64, rank: 4, dropout: 0.1}}"]}}
"""


def init(paths: list[str], out: str = "comparison.yaml", *, label: str = "label", force: bool = False) -> tuple[Path, Path]:
    """Inspect ``paths`` and write the comparison preset and its training config.

    Returns:
        ``(comparison, train config)`` paths.

    Raises:
        UserError: unreadable or unsuitable data (one modality only), or a file that exists without ``force``.
    """
    from .datasets.features_table import FeaturesParams, describe_source
    from .metrics import DEFAULT_MONITOR
    from .training.runfolder import atomic_write

    found = describe_source(FeaturesParams(path=list(paths), label=label))
    if len(found["modalities"]) < 2:
        raise UserError(f"{paths[0]}: one modality ({', '.join(found['modalities'])}); a fusion comparison needs two "
                        f"or more feature columns")
    out_path = Path(out)
    if out_path.suffix not in (".yaml", ".yml"):
        raise UserError(f"--out {out}: expected a .yaml file name")
    train_path = out_path.with_name(f"{out_path.stem}-train.yaml")
    for p in (out_path, train_path):
        if p.exists() and not force:
            raise UserError(f"{p}: exists; remove it or pass --force to overwrite")
    out_path.parent.mkdir(parents=True, exist_ok=True)
    metric = DEFAULT_MONITOR[found["task"]]
    atomic_write(train_path, train_config(paths, found, metric, label))
    atomic_write(out_path, comparison(str(out_path), train_path.name, found, metric, " ".join(paths)))
    return out_path, train_path
