"""Export a trained model out of PyTorch (``torch.export`` ``.pt2``, ONNX), and score with either.

Formats: ``pt2`` is a ``torch.export`` ExportedProgram (``torch.export.save``), run by PyTorch alone;
``onnx`` runs in onnxruntime (the ``[onnx]`` extra). TorchScript export was removed: it is
deprecated in torch 2.13, and ``pt2`` replaces it.

An exported model takes positional tensors and returns logits only:

- inputs: one tensor per modality the model reads, in sorted modality order (``[B, D]`` or
  ``[B, T, D]`` float32), then one mask ``[B, T]`` (bool, True = a real step) per sequence modality,
  also in sorted order; the batch axis is dynamic;
- output: ``logits`` ``[B, C]`` (``[B, 1]`` for regression), before any sigmoid/softmax.

Which input is which is recorded in the file itself: ONNX metadata ``modalfuse`` (JSON), or the
``.pt2`` extra file ``modalfuse.json``, holding ``inputs`` (``name``, ``modality``, ``kind``:
``features``/``mask``, ``shape``), ``task`` and ``class_names`` (and, from ``export_run``, the run's
``config``, data ``modalities`` and feature ``normalization``, so ``predict`` needs no run folder).
``load_exported`` reads either format and scores batches.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from ..datasets.base import ModalitySpec, TaskSpec
from .. import plugins
from ..errors import UserError, missing_extra
from ..training.runfolder import RunFolder

FORMATS = ("pt2", "onnx")
SUFFIXES = {".pt2": "pt2", ".onnx": "onnx"}
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
        fmt: ``pt2`` or ``onnx``.
        extra: more keys for the recorded metadata (e.g. the run folder).

    Returns:
        The written path.

    Raises:
        UserError: an unknown format, or weights that are not all finite (a diverged model would
            serve NaN).
    """
    if fmt == "torchscript":
        raise UserError("--format torchscript: TorchScript export was removed (deprecated in torch 2.13); "
                        "use --format pt2 (torch.export) or onnx")
    if fmt not in FORMATS:
        raise UserError(f"--format {fmt!r}: expected one of {', '.join(FORMATS)}")
    bad = [n for n, t in model.state_dict().items() if t.is_floating_point() and not torch.isfinite(t).all()]
    if bad:
        raise UserError(f"refusing to export: non-finite weights in {bad[0]}"
                        + (f" and {len(bad) - 1} more tensors" if len(bad) > 1 else "") + " (the run diverged)")
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
    from ..training.runfolder import atomic_write

    out.parent.mkdir(parents=True, exist_ok=True)
    # Traced with autograd on: under no_grad, eval-mode transformer layers and attention take
    # PyTorch's fused fast path (aten::_transformer_encoder_layer_fwd), which ONNX lacks.
    with torch.enable_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tracer and exporter deprecation chatter
        if fmt == "onnx":
            atomic_write(out, lambda tmp: _export_onnx(wrapper, args, names, meta, tmp))
        else:
            atomic_write(out, _export_pt2(wrapper, args, meta))
    return out


def _export_onnx(wrapper: nn.Module, args: tuple[Tensor, ...], names: list[str], meta: dict[str, Any],
                 path: Path) -> None:
    try:
        import onnx
    except ImportError:
        raise missing_extra("ONNX export", "onnx", "onnx") from None
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


def _export_pt2(wrapper: nn.Module, args: tuple[Tensor, ...], meta: dict[str, Any]) -> bytes:
    """``torch.export`` with a dynamic batch axis, as the bytes of a ``.pt2`` archive; the metadata
    travels as its extra file ``modalfuse.json``."""
    import io

    batch = torch.export.Dim("batch", min=1)
    try:
        program = torch.export.export(wrapper, args, dynamic_shapes={"inputs": tuple({0: batch} for _ in args)},
                                      strict=False)
    except Exception as e:  # torch.export raises many types for code it cannot capture
        first = str(e).strip().splitlines()[0][:200] if str(e).strip() else ""
        raise UserError(f"torch.export could not capture this model ({type(e).__name__}: {first}); "
                        f"try --format onnx") from None
    buf = io.BytesIO()
    torch.export.save(program, buf, extra_files={f"{METADATA_KEY}.json": json.dumps(meta)})
    return buf.getvalue()


def load_run_model(run_dir: str | Path, checkpoint: str = "best") -> tuple[nn.Module, dict[str, ModalitySpec], TaskSpec, dict[str, Any]]:
    """A run's model with its checkpoint's weights, built from the run folder alone (``data.json``
    gives the input shapes and task; the data itself is not read).

    Returns:
        ``(model, modalities, task, config)``, the model on CPU in eval mode.
    """
    from ..training.run import read_checkpoint, restore_model

    modalities, task = RunFolder(run_dir).read_specs()
    cfg, ck = read_checkpoint(run_dir, checkpoint)
    return restore_model(cfg, ck, modalities, task), modalities, task, cfg.to_dict()


def export_run(run_dir: str | Path, fmt: str | None = None, out: str | Path = "model.pt2") -> str:
    """Export a run's best checkpoint to ``out``.

    Args:
        fmt: ``pt2`` or ``onnx``; ``None``: from the suffix of ``out`` (``.pt2``, ``.onnx``).

    Returns:
        The written path.
    """
    if fmt is None:
        fmt = SUFFIXES.get(Path(out).suffix)
        if fmt is None:
            raise UserError(f"--out {out}: cannot tell the format from the suffix; name it .pt2 or .onnx, or give --format")
    model, modalities, task, cfg = load_run_model(run_dir)
    # The run's config and input shapes travel with the file: `predict` on it needs no run folder.
    path = export_model(model, modalities, task, fmt, out, extra={
        "run_dir": str(Path(run_dir).resolve()), "config": cfg,
        # plugin modules whose entries the config names: predict needs them to read the config back
        "plugins": plugins.require_run(run_dir),
        "modalities": {m: {"dim": s.dim, "seq_len": s.seq_len} for m, s in modalities.items()},
        # Training statistics that z-score sentiment features (None for other datasets).
        "normalization": RunFolder(run_dir).read_normalization(),
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
            raise missing_extra("scoring an ONNX model", "onnxruntime", "onnx") from None
        path = Path(path)
        if not path.is_file():
            raise UserError(f"{path}: ONNX file not found")
        try:
            self.session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        except Exception as e:  # onnxruntime raises its own exception types for corrupt files
            raise UserError(f"{path}: not a loadable ONNX model ({str(e).splitlines()[0]})") from None
        _read_meta(self, path, self.session.get_modelmeta().custom_metadata_map.get(METADATA_KEY))

    def __call__(self, features: dict[str, Any], masks: dict[str, Any] | None = None) -> np.ndarray:
        """Logits ``[B, C]`` from ``features[m]`` ``[B, D]``/``[B, T, D]`` and ``masks[m]`` ``[B, T]``
        (numpy arrays or tensors; a missing mask means every step is real)."""
        feed = {spec["name"]: x for spec, x in zip(self.inputs, _feed(self, features, masks))}
        return self.session.run(["logits"], feed)[0]


class Pt2Scorer:
    """An exported ``torch.export`` program (``.pt2``) run by PyTorch on CPU; attributes as
    ``OnnxScorer``."""

    def __init__(self, path: str | Path) -> None:
        path = Path(path)
        if not path.is_file():
            raise UserError(f"{path}: .pt2 file not found")
        extra = {f"{METADATA_KEY}.json": ""}
        try:
            program = torch.export.load(str(path), extra_files=extra)
        except Exception as e:  # a corrupt archive: zipfile, pickle and torch errors alike
            raise UserError(f"{path}: not a loadable torch.export program ({type(e).__name__}: "
                            f"{str(e).strip().splitlines()[0][:160] if str(e).strip() else ''})") from None
        self.module = program.module()
        _read_meta(self, path, extra[f"{METADATA_KEY}.json"] or None)

    def __call__(self, features: dict[str, Any], masks: dict[str, Any] | None = None) -> np.ndarray:
        """Logits ``[B, C]``, as ``OnnxScorer.__call__``."""
        args = [torch.from_numpy(x) for x in _feed(self, features, masks)]
        with torch.no_grad():
            return self.module(*args).numpy()


def _read_meta(scorer: Any, path: Path, raw: str | None) -> None:
    """Set a scorer's attributes from the ``modalfuse`` metadata JSON recorded at export."""
    if raw is None:
        raise UserError(f"{path}: no '{METADATA_KEY}' metadata; export it with `modalfuse export`")
    try:
        meta = json.loads(raw)
        inputs = meta["inputs"]
        task = meta["task"]
        scorer.task_kind, scorer.num_classes = str(task["kind"]), int(task["num_classes"])
        scorer.modalities = sorted({i["modality"] for i in inputs if i["kind"] == "features"})
    except (ValueError, KeyError, TypeError):
        raise UserError(f"{path}: its '{METADATA_KEY}' metadata is not the JSON `modalfuse export` writes "
                        f"(expected an object with inputs and task, found {raw[:60]!r})") from None
    scorer.path = path
    scorer.meta = meta
    scorer.inputs = inputs
    scorer.class_names = meta.get("class_names")


def _feed(scorer: Any, features: dict[str, Any], masks: dict[str, Any] | None) -> list[np.ndarray]:
    """The exported model's inputs, in its recorded order, checked against the recorded shapes."""
    masks = masks or {}
    feed = []
    for spec in scorer.inputs:
        m = spec["modality"]
        if m not in features:
            raise UserError(f"{scorer.path}: the model reads modality '{m}'; the input has "
                            f"{', '.join(sorted(features)) or 'none'}")
        x = np.asarray(features[m], dtype=np.float32)
        if spec["kind"] == "features":
            if list(x.shape[1:]) != spec["shape"]:
                raise UserError(f"{scorer.path}: modality '{m}' expects shape [B, "
                                f"{', '.join(map(str, spec['shape']))}], found {list(x.shape)}")
            feed.append(x)
        else:
            mask = masks.get(m)
            feed.append(np.ones(x.shape[:2], dtype=bool) if mask is None else np.asarray(mask, dtype=bool))
    return feed


def load_onnx_scorer(path: str | Path) -> OnnxScorer:
    """An exported ONNX model, ready to score batches: ``load_onnx_scorer(p)(features, masks)``."""
    return OnnxScorer(path)


def load_exported(path: str | Path) -> OnnxScorer | Pt2Scorer:
    """A model written by ``modalfuse export``, by its suffix (``.pt2`` or ``.onnx``), ready to score
    batches: ``load_exported(p)(features, masks)`` -> logits ``[B, C]`` (numpy)."""
    suffix = Path(path).suffix
    if suffix not in SUFFIXES:
        raise UserError(f"{path}: not an exported model (expected a .pt2 or .onnx file from `modalfuse export`)")
    return Pt2Scorer(path) if SUFFIXES[suffix] == "pt2" else OnnxScorer(path)
