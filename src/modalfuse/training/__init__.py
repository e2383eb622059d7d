"""Training: the loop (``loop.fit``), run folders, checkpoints and the ``train``/``evaluate`` entry points."""

from .run import evaluate_run, load_run, train

__all__ = ["evaluate_run", "load_run", "train"]
