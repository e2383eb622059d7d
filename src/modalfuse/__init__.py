"""modalfuse: train, evaluate and compare multimodal fusion classifiers on pre-extracted features.

Data flows one way: ``readers`` -> ``datasets`` -> batch -> ``models`` (encoders -> fusion -> head)
-> ``metrics`` -> ``training`` (run folder) -> ``report``.

The Python API (``docs/api.md``): :func:`train` -> :class:`Run`, :func:`evaluate`, :func:`load_run`,
:func:`predict`, :func:`export`, :func:`compare` -> :class:`Comparison`, :func:`smoke`, and :func:`import_plugin`
for user code that registers encoders, fusions, heads, models, datasets or metrics.
"""

from __future__ import annotations

import sys
import types

from ._version import __version__

from .api import Comparison, Run, compare, evaluate, export, load_run, predict, smoke, train
from .config import Config, load_config
from .errors import ConfigError, DataError, UserError
from .plugins import import_plugin

__all__ = [
    "Comparison", "Config", "ConfigError", "DataError", "Run", "UserError", "__version__", "compare", "evaluate",
    "export", "import_plugin", "load_config", "load_run", "predict", "smoke", "train",
]


class _Package(types.ModuleType):
    """``modalfuse.predict`` and ``modalfuse.export`` are API functions that share their names with
    submodules (``modalfuse/predict.py``, ``modalfuse/export.py``). Importing a submodule binds it as
    an attribute of the package, which would replace the function; this keeps the function.
    The modules stay importable as always (``from modalfuse.predict import ...``)."""

    def __setattr__(self, name: str, value: object) -> None:
        if name in ("predict", "export") and isinstance(value, types.ModuleType):
            return
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package
