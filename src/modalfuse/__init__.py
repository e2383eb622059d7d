"""modalfuse: train, evaluate and compare multimodal fusion classifiers on pre-extracted features.

Data flows one way: ``readers`` -> ``datasets`` -> batch -> ``models`` (encoders -> fusion -> head)
-> ``metrics`` -> ``training`` (run folder) -> ``compare`` / ``stats`` / ``report``, and ``serving``
(export, predict) from a run folder.

The Python API (``docs/api.md``): :func:`train` -> :class:`Run`, :func:`evaluate`, :func:`load_run`,
:func:`predict`, :func:`export`, :func:`compare` -> :class:`Comparison`, :func:`smoke`, and :func:`import_plugin`
for user code that registers encoders, fusions, heads, models, datasets or metrics.
"""

from __future__ import annotations

from ._version import __version__

from .api import Comparison, Run, compare, evaluate, export, load_run, predict, smoke, train
from .config import Config, load_config
from .errors import ConfigError, DataError, UserError
from .plugins import import_plugin

__all__ = [
    "Comparison", "Config", "ConfigError", "DataError", "Run", "UserError", "__version__", "compare", "evaluate",
    "export", "import_plugin", "load_config", "load_run", "predict", "smoke", "train",
]
