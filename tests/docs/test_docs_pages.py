"""The generated documentation pages (tools/docs_pages.py): one page per command with its --help,
and a config reference with every key and default from the schemas, so neither can drift. The
whole site is built with ``mkdocs build --strict`` by .ci/run."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest


ROOT = Path(__file__).resolve().parents[2]


def _pages() -> dict[str, str]:
    spec = importlib.util.spec_from_file_location("docs_pages", ROOT / "tools" / "docs_pages.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.pages()


@pytest.mark.slow  # imports every registered part (torch included): about 6 s alone
def test_every_command_has_its_help_page_and_every_config_key_its_default() -> None:
    from modalfuse.cli import SUBCOMMAND_PARSERS, build_parser
    from modalfuse.config import EvalConfig, TrainConfig

    pages = _pages()
    parser = build_parser()
    commands = next(a for a in parser._actions if hasattr(a, "choices") and isinstance(a.choices, dict)).choices
    assert len(commands) == len(SUBCOMMAND_PARSERS)
    for name, sub in commands.items():
        page = pages[f"commands/{name}.md"]
        for action in sub._actions:  # every option of the command is on its page
            for option in action.option_strings:
                assert option in page, (name, option)
        assert f"[`{name}`]({name}.md)" in pages["commands/index.md"]
    configs = pages["configs.md"]
    for section, schema in (("train", TrainConfig), ("eval", EvalConfig)):
        part = configs.split(f"## `{section}`")[1].split("\n## ")[0]
        for key, field in schema.model_fields.items():
            row = next(line for line in part.splitlines() if line.startswith(f"| `{key}` |"))
            assert repr(field.get_default(call_default_factory=True)).replace("|", "\\|") in row, key
    assert "### `model.name: fusion`" in configs and "### `name: attention`" in configs

