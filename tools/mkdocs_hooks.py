"""mkdocs hook: adds the pages ``tools/docs_pages.py`` generates from the code (each command's
``--help``, the config reference from the schemas) to the site at build time, so they cannot drift."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from docs_pages import pages as _generate  # noqa: E402

_PAGES: dict[str, str] = {}


def pages() -> dict[str, str]:
    """The generated pages, made once per build (on_config and on_files both need them)."""
    if not _PAGES:
        _PAGES.update(_generate())
    return _PAGES


def on_config(config: Any) -> Any:
    """The nav's ``Commands`` entry becomes the index and one page per command, in --help's order:
    a new command gets its page in the nav without anyone editing mkdocs.yml."""
    _PAGES.clear()  # mkdocs serve rebuilds: the code may have changed
    commands = [path for path in pages() if path.startswith("commands/") and path != "commands/index.md"]
    for i, item in enumerate(config.nav or []):
        if isinstance(item, dict) and "Commands" in item:
            config.nav[i] = {"Commands": ["commands/index.md", *commands]}
    return config


def on_files(files: Any, config: Any) -> Any:
    from mkdocs.structure.files import File

    for path, text in pages().items():
        files.append(File.generated(config, path, content=text))
    return files
