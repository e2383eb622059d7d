"""modalfuse: train, evaluate and compare multimodal fusion classifiers on pre-extracted features.

Data flows one way: ``readers`` -> ``datasets`` -> batch -> ``models`` (encoders -> fusion -> head)
-> ``metrics`` -> ``training`` (run folder) -> ``report``.
"""

from __future__ import annotations

__version__ = "0.1.0"

from .config import Config, load_config
from .errors import ConfigError, DataError, UserError

__all__ = ["Config", "ConfigError", "DataError", "UserError", "load_config", "__version__"]
