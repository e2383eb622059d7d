"""``modalfuse prepare cmu-sdk``: align CMU-MultimodalSDK sequences once and keep the packed dataset.

The alignment itself (the SDK's ``align`` to words, then to the label segments) is
``modalfuse.readers.csd_align``; this command writes its result atomically, for repeated runs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..readers.csd_align import align_csd
from ..training.runfolder import atomic_write, write_error


def prepare_cmu_sdk(sequences: dict[str, str], labels: str, align_to: str, out: str, workers: int = 1,
                    progress: bool = True) -> dict[str, Any]:
    """Align ``.csd`` sequences to the label segments and write a packed dataset atomically.

    Args:
        sequences: ``{name: path.csd}``, e.g. ``{"text": "glove.csd", "audio": "covarep.csd"}``.
        labels: the labels ``.csd`` (one row per opinion segment; column 0 the sentiment score).
        align_to: a name in ``sequences`` (word level) or ``"labels"`` (one vector per segment).
        out: the packed file (written under a temporary name, renamed when complete).
        workers: processes aligning videos in parallel.
        progress: show a progress bar over videos.

    Returns:
        ``align_csd``'s summary, with ``out`` the final path.
    """
    out_path = Path(out)
    try:
        out_path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise write_error(out_path, e) from e
    summary: dict[str, Any] = {}
    atomic_write(out_path, lambda tmp: summary.update(
        align_csd(sequences, labels, align_to, str(tmp), workers=workers, progress=progress)))
    return {**summary, "out": str(out_path)}
