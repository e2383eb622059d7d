"""Export a trained model out of PyTorch (ONNX, TorchScript), and score with an exported ONNX file.

An exported model takes positional tensors and returns logits only:

- inputs: one tensor per modality the model reads, in sorted modality order (``[B, D]`` or
  ``[B, T, D]`` float32), then one mask ``[B, T]`` (bool, True = a real step) per sequence modality,
  also in sorted order; the batch axis is dynamic;
- output: ``logits`` ``[B, C]`` (``[B, 1]`` for regression), before any sigmoid/softmax.

Which input is which is recorded in the file itself: ONNX metadata ``modalfuse`` (JSON), or the
TorchScript extra file ``modalfuse.json``, holding ``inputs`` (``name``, ``modality``, ``kind``:
``features``/``mask``, ``shape``), ``task`` and ``class_names``. ``load_onnx_scorer`` reads it and
runs the model through onnxruntime (the ``[onnx]`` extra).
"""

from __future__ import annotations

import json
import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from .datasets.base import ModalitySpec, TaskSpec
from .errors import UserError

FORMATS = ("onnx", "torchscript")
METADATA_KEY = "modalfuse"
OPSET = 17


class PositionalLogits(nn.Module):
    """Wraps a modalfuse model (``model(features, masks) -> {"logits": ...}``) so that it takes
    positional tensors (features in ``modalities`` order, then masks in ``masked`` order) and
    returns the logits ``[B, C]`` only, as exporters and serving runtimes want."""

    def __init__(self, model: nn.Module, modalities: list[str], masked: list[str]) -> None:
        super().__init__()
        self.model = model
        self.modalities = list(modalities)
        self.masked = list(masked)

    def forward(self, *inputs: Tensor) -> Tensor:
        n = len(self.modalities)
        features = dict(zip(self.modalities, inputs[:n]))
        masks = dict(zip(self.masked, inputs[n:]))
        return self.model(features, masks)["logits"]


class _Reads(dict):
    """A dict that remembers which keys were read (to find the modalities a model uses)."""

    def __init__(self, items: dict[str, Tensor]) -> None:
        super().__init__(items)
        self.read: set[str] = set()

    def __getitem__(self, key: str) -> Tensor:
        self.read.add(key)
        return super().__getitem__(key)

    def get(self, key: str, default: Any = None) -> Any:
        if key in self:
            self.read.add(key)
        return super().get(key, default)


def example_inputs(modalities: dict[str, ModalitySpec], batch: int = 2,
                   seed: int = 0) -> tuple[dict[str, Tensor], dict[str, Tensor]]:
    """Random features and masks shaped like the data (sequences have padding at the end of all
    but the first sample, so the masked paths are traced)."""
    g = torch.Generator().manual_seed(seed)
    features, masks = {}, {}
    for m, spec in sorted(modalities.items()):
        if spec.seq_len is None:
            features[m] = torch.randn(batch, spec.dim, generator=g)
        else:
            t = spec.seq_len
            lengths = torch.randint(max(1, t // 2), t + 1, (batch,), generator=g)
            lengths[0] = t
            masks[m] = torch.arange(t)[None, :] < lengths[:, None]
            features[m] = torch.randn(batch, t, spec.dim, generator=g) * masks[m][..., None]
    return features, masks


def _used_modalities(model: nn.Module, features: dict[str, Tensor], masks: dict[str, Tensor]) -> tuple[list[str], list[str]]:
    feats, msks = _Reads(features), _Reads(masks)
    with torch.no_grad():
        model(feats, msks)
    used = sorted(feats.read)
    return used, [m for m in used if m in masks]


def export_model(model: nn.Module, modalities: dict[str, ModalitySpec], task: TaskSpec, fmt: str,
                 out: str | Path, *, extra: dict[str, Any] | None = None) -> Path:
    """Export ``model`` (inputs shaped as ``modalities``) to ``out``, written atomically.

    Args:
        fmt: ``onnx`` or ``torchscript``.
        extra: more keys for the recorded metadata (e.g. the run folder).

    Returns:
        The written path.
    """
    if fmt not in FORMATS:
        raise UserError(f"--format {fmt!r}: expected one of {', '.join(FORMATS)}")
    out = Path(out)
    model = model.float().cpu().eval()
    features, masks = example_inputs(modalities)
    used, masked = _used_modalities(model, features, masks)
    wrapper = PositionalLogits(model, used, masked).eval()
    args = tuple(features[m] for m in used) + tuple(masks[m] for m in masked)
    names = list(used) + [f"{m}_mask" for m in masked]
    meta = {
        "inputs": [{"name": n, "modality": m, "kind": "features" if i < len(used) else "mask",
                    "shape": list(a.shape[1:]), "dtype": "float32" if i < len(used) else "bool"}
                   for i, (n, m, a) in enumerate(zip(names, used + masked, args))],
        "output": "logits",
        "task": {"kind": task.kind, "num_classes": task.num_classes},
        "class_names": list(task.class_names) if task.class_names else None,
        **(extra or {}),
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    try:
        # Traced with autograd on: under no_grad, eval-mode transformer layers and attention take
        # PyTorch's fused fast path (aten::_transformer_encoder_layer_fwd), which ONNX lacks.
        with torch.enable_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # tracer and exporter deprecation chatter
            if fmt == "onnx":
                _export_onnx(wrapper, args, names, meta, tmp)
            else:
                traced = torch.jit.trace(wrapper, args, check_trace=False)
                torch.jit.save(traced, str(tmp), _extra_files={f"{METADATA_KEY}.json": json.dumps(meta)})
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)
    return out


def _export_onnx(wrapper: nn.Module, args: tuple[Tensor, ...], names: list[str], meta: dict[str, Any],
                 path: Path) -> None:
    try:
        import onnx
    except ImportError:
        raise UserError("ONNX export needs the onnx package: pip install 'modalfuse[onnx]'") from None
    # The TorchScript-based exporter (dynamo=False): the dynamo one needs onnxscript, and these
    # models have no control flow it would handle better.
    torch.onnx.export(
        wrapper, args, str(path), input_names=names, output_names=["logits"], opset_version=OPSET,
        dynamic_axes={**{n: {0: "batch"} for n in names}, "logits": {0: "batch"}}, dynamo=False,
    )
    proto = onnx.load(str(path))
    declared = {i.name for i in proto.graph.input}
    # An input the graph does not read (a mask a model ignores) is dropped by the exporter.
    meta = {**meta, "inputs": [i for i in meta["inputs"] if i["name"] in declared]}
    entry = proto.metadata_props.add()
    entry.key, entry.value = METADATA_KEY, json.dumps(meta)
    onnx.save(proto, str(path))


def load_run_model(run_dir: str | Path, checkpoint: str = "best") -> tuple[nn.Module, dict[str, ModalitySpec], TaskSpec, dict[str, Any]]:
    """A run's model with its checkpoint's weights, built from the run folder alone (``data.json``
    gives the input shapes and task; the data itself is not read).

    Returns:
        ``(model, modalities, task, config)``, the model on CPU in eval mode.
    """
    from .training.run import read_checkpoint, restore_model

    run_dir = Path(run_dir)
    info_path = run_dir / "data.json"
    if not info_path.is_file():
        raise UserError(f"{run_dir}: not a finished run folder (no data.json)")
    info = json.loads(info_path.read_text())
    modalities = {m: ModalitySpec(s["dim"], s["seq_len"]) for m, s in info["modalities"].items()}
    t = info["task"]
    task = TaskSpec(t["kind"], t["num_classes"], tuple(t["class_names"]) if t.get("class_names") else None)
    cfg, ck = read_checkpoint(run_dir, checkpoint)
    return restore_model(cfg, ck, modalities, task), modalities, task, cfg.to_dict()


def export_run(run_dir: str | Path, fmt: str = "onnx", out: str | Path = "model.onnx") -> str:
    """Export a run's best checkpoint to ``out`` (``onnx`` or ``torchscript``); returns the path."""
    model, modalities, task, cfg = load_run_model(run_dir)
    # The run's config and input shapes travel with the file: `predict` on it needs no run folder.
    path = export_model(model, modalities, task, fmt, out, extra={
        "run_dir": str(Path(run_dir).resolve()), "config": cfg,
        "modalities": {m: {"dim": s.dim, "seq_len": s.seq_len} for m, s in modalities.items()},
        # Training statistics that z-score sentiment features (None for other datasets).
        "normalization": json.loads((Path(run_dir) / "data.json").read_text()).get("info", {}).get("normalization"),
    })
    return str(path)


class OnnxScorer:
    """An exported ONNX model run through onnxruntime on CPU.

    Attributes:
        meta: everything recorded at export (``inputs``, ``task``, ``class_names``; from
            ``export_run`` also the run's ``config`` and data ``modalities``).
        inputs: the recorded inputs (``name``, ``modality``, ``kind``, ``shape``).
        modalities: the modalities it reads, sorted.
        task_kind, num_classes, class_names: from the run the model came from.
    """

    def __init__(self, path: str | Path) -> None:
        try:
            import onnxruntime as ort
        except ImportError:
            raise UserError("scoring an ONNX model needs onnxruntime: pip install 'modalfuse[onnx]'") from None
        path = Path(path)
        if not path.is_file():
            raise UserError(f"{path}: ONNX file not found")
        try:
            self.session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        except Exception as e:  # onnxruntime raises its own exception types for corrupt files
            raise UserError(f"{path}: not a loadable ONNX model ({str(e).splitlines()[0]})") from None
        raw = self.session.get_modelmeta().custom_metadata_map.get(METADATA_KEY)
        if raw is None:
            raise UserError(f"{path}: no '{METADATA_KEY}' metadata; export it with `modalfuse export`")
        meta = json.loads(raw)
        self.path = path
        self.meta: dict[str, Any] = meta
        self.inputs: list[dict[str, Any]] = meta["inputs"]
        self.modalities = sorted({i["modality"] for i in self.inputs if i["kind"] == "features"})
        self.task_kind: str = meta["task"]["kind"]
        self.num_classes: int = meta["task"]["num_classes"]
        self.class_names: list[str] | None = meta.get("class_names")

    def __call__(self, features: dict[str, Any], masks: dict[str, Any] | None = None) -> np.ndarray:
        """Logits ``[B, C]`` from ``features[m]`` ``[B, D]``/``[B, T, D]`` and ``masks[m]`` ``[B, T]``
        (numpy arrays or tensors; a missing mask means every step is real)."""
        masks = masks or {}
        feed = {}
        for spec in self.inputs:
            m = spec["modality"]
            if m not in features:
                raise UserError(f"{self.path}: the model reads modality '{m}'; the input has "
                                f"{', '.join(sorted(features)) or 'none'}")
            x = np.asarray(features[m], dtype=np.float32)
            if spec["kind"] == "features":
                if list(x.shape[1:]) != spec["shape"]:
                    raise UserError(f"{self.path}: modality '{m}' expects shape [B, "
                                    f"{', '.join(map(str, spec['shape']))}], found {list(x.shape)}")
                feed[spec["name"]] = x
            else:
                mask = masks.get(m)
                feed[spec["name"]] = (np.ones(x.shape[:2], dtype=bool) if mask is None
                                      else np.asarray(mask, dtype=bool))
        return self.session.run(["logits"], feed)[0]


def load_onnx_scorer(path: str | Path) -> OnnxScorer:
    """An exported ONNX model, ready to score batches: ``load_onnx_scorer(p)(features, masks)``."""
    return OnnxScorer(path)
