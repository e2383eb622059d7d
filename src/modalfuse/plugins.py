"""Where registered entries come from: modalfuse's own modules, and plugins.

A plugin is any importable module that registers datasets, encoders, fusions, heads, models or
metrics into the registries of :mod:`modalfuse.registry` when it is imported. Three ways load one:

- an installed package declares it in the entry-point group ``modalfuse.plugins``
  (``[project.entry-points."modalfuse.plugins"] my_fusion = "my_pkg.fusion"``); every installed
  entry point is imported by :func:`load`;
- ``MODALFUSE_PLUGINS=my_pkg.fusion,other.module`` (comma-separated module names);
- ``modalfuse --import my_pkg.fusion COMMAND ...`` or :func:`import_plugin` from Python.

A run folder records, in ``plugins.json``, the plugin modules whose entries its config names
(:func:`record_run`), and :func:`require_run` imports them again before the run's config is read,
so ``evaluate``, ``predict``, ``report``, ``export`` and ``--resume`` work without repeating
``--import``; a module that cannot be imported any more is an error naming it.
"""

from __future__ import annotations

import importlib
import json
import os
from pathlib import Path
from typing import Any

from .errors import UserError

ENTRY_POINT_GROUP = "modalfuse.plugins"
ENV_VAR = "MODALFUSE_PLUGINS"
RUN_FILE = "plugins.json"  # in a run folder: {"modules": [module, ...]}

# modalfuse's own registering modules, one line each; each adds its entries on import.
MODULES = (
    "modalfuse.datasets.synthetic",
    "modalfuse.datasets.sentiment",
    "modalfuse.datasets.mosi_words",
    "modalfuse.datasets.yt8m",
    "modalfuse.datasets.features",
    "modalfuse.models.encoders",
    "modalfuse.models.fusions.basic",
    "modalfuse.models.fusions.tensor",
    "modalfuse.models.fusions.gated",
    "modalfuse.models.fusions.bilinear",
    "modalfuse.models.fusions.crossmodal",
    "modalfuse.models.heads",
    "modalfuse.models.classifier",
    "modalfuse.models.ensemble",
    "modalfuse.metrics.classification",
    "modalfuse.metrics.sentiment",
    "modalfuse.metrics.yt8m",
)

_loaded = False
# Plugin module -> the registry entries ("fusion:my-fusion") that importing it added, in load order.
_plugins: dict[str, list[str]] = {}


def _registries() -> dict[str, Any]:
    """Every registry that :mod:`modalfuse.registry` defines, by kind (iterated, not hard-coded, so
    registries added later are covered)."""
    from . import registry

    return {r.kind: r for r in vars(registry).values() if isinstance(r, registry.Registry)}


def _entries() -> set[str]:
    return {f"{kind}:{name}" for kind, reg in _registries().items() for name in reg.names()}


def _import(module: str, source: str, hint: str = "") -> None:
    """Import a plugin module and remember what it registered.

    Args:
        module: a dotted module name (``my_pkg.fusion``).
        source: how it was asked for, for error messages (``--import``, ``MODALFUSE_PLUGINS``, ...).
        hint: extra advice appended when the module cannot be imported.
    """
    if module in _plugins:
        return
    before = _entries()
    try:
        importlib.import_module(module)
    except ModuleNotFoundError as e:
        # Only "this module is missing" is the user's to fix here; an ImportError inside the
        # plugin's own imports names that module instead.
        where = f" (it cannot import '{e.name}')" if e.name and not module.startswith(e.name) else ""
        raise UserError(
            f"{source}: plugin module '{module}' is not installed{where}; "
            + (hint or "pip install its package, or put its folder on PYTHONPATH")
        ) from None
    except (ValueError, UserError) as e:  # e.g. an entry registered twice under one name
        raise UserError(f"{source}: plugin module '{module}' failed to load: {e}") from None
    _plugins[module] = sorted(_entries() - before)


def load() -> None:
    """Import modalfuse's registering modules, then every plugin from the entry-point group and the
    ``MODALFUSE_PLUGINS`` environment variable (once per process)."""
    global _loaded
    if _loaded:
        return
    _loaded = True
    for name in MODULES:
        importlib.import_module(name)
    from importlib.metadata import entry_points

    for ep in entry_points(group=ENTRY_POINT_GROUP):
        _import(ep.module, f"entry point '{ep.name}' ({ENTRY_POINT_GROUP}) of an installed package")
        if ep.attr:  # "pkg.module:register": a function to call once imported
            ep.load()()
    for module in filter(None, (m.strip() for m in os.environ.get(ENV_VAR, "").split(","))):
        _import(module, f"environment variable {ENV_VAR}")


def import_plugin(module: str, source: str = "import_plugin") -> list[str]:
    """Import one plugin module (``--import MODULE``), after modalfuse's own entries.

    Returns:
        The entries it registered, as ``"kind:name"`` strings (``["fusion:gated-sum"]``).
    """
    load()
    _import(module, source)
    return list(_plugins[module])


def loaded_plugins() -> dict[str, list[str]]:
    """Plugin modules imported in this process -> the entries each registered."""
    return {m: list(e) for m, e in _plugins.items()}


def _names_in(obj: Any) -> set[str]:
    """Every value of a ``name`` key anywhere in a config (registry entries are picked by ``name``)."""
    if isinstance(obj, dict):
        found = {str(obj["name"])} if isinstance(obj.get("name"), str) else set()
        for v in obj.values():
            found |= _names_in(v)
        return found
    if isinstance(obj, list):
        return set().union(*(_names_in(v) for v in obj)) if obj else set()
    return set()


def needed_plugins(config: dict[str, Any]) -> list[str]:
    """The plugin modules that registered an entry the config names (``fusion: {name: X}``,
    ``data: {name: Y}``, a monitored metric).

    An entry loaded as a plugin counts under that plugin's module; an entry registered by user code
    imported some other way (``import my_fusion`` in a notebook) counts under the module that defines
    its builder, unless that is ``__main__`` (a script cannot be imported again).
    """
    names = _names_in(config)
    monitor = (config.get("train") or {}).get("monitor")
    if isinstance(monitor, str):
        names.add(monitor)
    owner = {e: m for m, entries in _plugins.items() for e in entries}
    needed: list[str] = []
    for kind, reg in sorted(_registries().items()):
        for name in sorted(names & set(reg.names())):
            module = owner.get(f"{kind}:{name}") or getattr(reg.get(name), "__module__", None)
            if module and module != "__main__" and module.split(".")[0] != "modalfuse" and module not in needed:
                needed.append(module)
    return needed


def record_run(run_dir: str | Path, config: dict[str, Any]) -> list[str]:
    """Write ``plugins.json`` into a run folder: the plugin modules its config needs.

    Written (atomically) even when the list is empty, so a reader can tell "none" from "older run".

    Returns:
        The recorded module names.
    """
    from .files import write_json

    modules = needed_plugins(config)
    write_json(Path(run_dir) / RUN_FILE, {"modules": modules})
    return modules


def require_run(run_dir: str | Path) -> list[str]:
    """Import the plugin modules a run folder recorded (a no-op for runs without ``plugins.json``).

    Raises:
        UserError: naming the run folder and the module that cannot be imported.
    """
    load()
    path = Path(run_dir) / RUN_FILE
    if not path.is_file():
        return []
    try:
        modules = json.loads(path.read_text())["modules"]
    except (ValueError, KeyError, TypeError):
        raise UserError(f"{path}: expected JSON {{\"modules\": [...]}} naming plugin modules") from None
    for module in modules:
        _import(module, f"{run_dir} (trained with plugin '{module}', recorded in {RUN_FILE})",
                hint="install the package that provides it, or put its folder on PYTHONPATH, then rerun")
    return list(modules)


__all__ = ["ENTRY_POINT_GROUP", "ENV_VAR", "RUN_FILE", "MODULES", "load", "import_plugin", "loaded_plugins",
           "needed_plugins", "record_run", "require_run"]
