"""``train.ema``: an exponential moving average of the weights, updated after every optimizer step.

With ``train.ema: 0.999`` each step sets ``ema = 0.999 * ema + 0.001 * weights`` (buffers such as
batch-norm statistics are averaged too). The averaged weights are what the run validates, keeps as
``best.pt`` and evaluates; ``last.pt`` also keeps the average itself, so a resumed run continues it.
The averaging is torch's own ``AveragedModel`` with ``get_ema_multi_avg_fn``.
"""

from __future__ import annotations

from torch import nn
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn


def build_ema(model: nn.Module, decay: float | None) -> AveragedModel | None:
    """The running average of ``model``'s weights (a copy on the same device), or ``None`` without ``decay``."""
    if decay is None:
        return None
    return AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(decay), use_buffers=True)


def evaluated(model: nn.Module, ema: AveragedModel | None) -> nn.Module:
    """The module whose weights are validated, checkpointed as best and evaluated."""
    return model if ema is None else ema.module
