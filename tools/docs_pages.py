"""Documentation pages generated from the code at build time, so that they cannot drift:

- ``commands/<name>.md``: each command's ``--help`` (``modalfuse.cli.build_parser``);
- ``configs.md``: every config section's keys, types and defaults from the pydantic schemas
  (``modalfuse.config``), and every registered dataset, model, encoder, fusion and head's keys
  from its own schema (``Registry.schema``).

``pages()`` returns ``{path inside docs/: markdown}``; ``tools/mkdocs_hooks.py`` hands them to
mkdocs. ``python tools/docs_pages.py OUT_DIR`` writes them out to read without mkdocs.
"""

from __future__ import annotations

import argparse
import inspect
import os
import re
import sys
from pathlib import Path
from typing import Any

HELP_WIDTH = "100"  # argparse wraps --help at $COLUMNS: one width, whatever the terminal


def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:  # argparse keeps its subcommands here and nowhere public
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def _help(parser: argparse.ArgumentParser) -> str:
    old = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = HELP_WIDTH
    try:
        return parser.format_help()
    finally:
        if old is None:
            del os.environ["COLUMNS"]
        else:
            os.environ["COLUMNS"] = old


def _command_page(path: list[str], parser: argparse.ArgumentParser, summary: str) -> str:
    name = " ".join(path)
    md = [f"# `modalfuse {name}`", "", summary[:1].upper() + summary[1:] + "." if summary else "", "",
          "Generated from `modalfuse " + name + " --help` when the site is built.", "",
          "```text", _help(parser).rstrip(), "```", ""]
    for sub, p in _subparsers(parser).items():
        md += [f"## `modalfuse {name} {sub}`", "", "```text", _help(p).rstrip(), "```", ""]
    return "\n".join(md)


def command_pages() -> dict[str, str]:
    """``{"commands/<name>.md": page}`` for every subcommand, and ``commands/index.md``."""
    from modalfuse.cli import build_parser

    parser = build_parser()
    subs = _subparsers(parser)
    helps = {}
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            helps = {a.dest: a.help or "" for a in action._choices_actions}
    pages = {f"commands/{name}.md": _command_page([name], p, helps.get(name, "")) for name, p in subs.items()}
    index = ["# Commands", "", "Every command and its options, generated from `--help` when the site is built. "
             "Bad input prints one line naming the file, record or key and exits 2; `--debug` shows the "
             "traceback too (same exit code).", "", "| command | what it does |", "|---|---|"]
    index += [f"| [`{name}`]({name}.md) | {helps.get(name, '')} |" for name in subs]
    index += ["", "```text", _help(parser).rstrip(), "```", ""]
    pages["commands/index.md"] = "\n".join(index)
    return pages


def _type_text(annotation: Any) -> str:
    text = getattr(annotation, "__name__", None) if isinstance(annotation, type) else None
    text = text or str(annotation).replace("typing.", "")
    text = re.sub(r"Annotated\[(\w+), .*?\]", r"\1", text)
    return text.replace("NoneType", "None").replace("|", "\\|")


def _default_text(field: Any) -> str:
    if field.is_required():
        return "required"
    value = field.get_default(call_default_factory=True)
    return f"`{value!r}`".replace("|", "\\|")


def _constraints(field: Any) -> str:
    parts = []
    for m in field.metadata:
        for key, sign in (("ge", "≥"), ("gt", ">"), ("le", "≤"), ("lt", "<")):
            if getattr(m, key, None) is not None:
                parts.append(f"{sign} {getattr(m, key)}")
    return ", ".join(parts)


def _comments(cls: type) -> dict[str, str]:
    """Each key's trailing ``# comment`` and the comment lines just above it, from the class source."""
    try:
        lines = inspect.getsource(cls).splitlines()
    except (OSError, TypeError):
        return {}
    out, above = {}, []
    for line in lines:
        stripped = line.strip()
        if stripped.startswith("#"):
            above.append(stripped.lstrip("# "))
            continue
        m = re.match(r"\s+(\w+)\s*:[^#]*(#\s*(.*))?$", line)
        if m and not stripped.startswith(("def ", "@", "class ")):
            out[m.group(1)] = " ".join([*above, m.group(3) or ""]).strip()
        above = []
    return out


def _schema_table(schema: type, notes: dict[str, str] | None = None) -> list[str]:
    notes = notes or {}
    rows = ["| key | type | default | constraint | notes |", "|---|---|---|---|---|"]
    for key, field in schema.model_fields.items():
        note = (notes.get(key) or field.description or "").replace("|", "\\|")
        rows.append(f"| `{key}` | {_type_text(field.annotation)} | {_default_text(field)} | "
                    f"{_constraints(field)} | {note} |")
    return rows if len(rows) > 2 else ["No keys besides `name`."]


def _registry_section(title: str, registry: Any, path: str, intro: str) -> list[str]:
    md = [f"## {title}", "", intro, ""]
    for name in registry.names():
        info = registry.info(name)
        md += [f"### `{path}: {name}`", ""]
        if info.get("description"):
            md += [info["description"][:1].upper() + info["description"][1:], ""]
        md += _schema_table(registry.schema(name)) + [""]
    return md


def config_page() -> str:
    """``configs.md``: every section's keys, from the schemas the configs are validated with."""
    from modalfuse import plugins
    from modalfuse.config import EvalConfig, TrainConfig
    from modalfuse.registry import DATASETS, ENCODERS, FUSIONS, HEADS, MODELS

    plugins.load()
    md = ["# Config reference", "",
          "A config is YAML with four sections: `data`, `model`, `train`, `eval`. `data` and `model` pick a "
          "registered entry by `name`; the rest of the section is checked against that entry's own keys. An "
          "unknown or misspelt key is an error that names it and the valid keys; `--set a.b=c` overrides are "
          "YAML values checked the same way. Generated from the schemas when the site is built, so keys and "
          "defaults are the code's.", "",
          "## `train`", "", *_schema_table(TrainConfig, _comments(TrainConfig)), "",
          "## `eval`", "", *_schema_table(EvalConfig, _comments(EvalConfig)), ""]
    md += _registry_section("`data`: datasets", DATASETS, "data.name", "`data.name` and that dataset's keys.")
    md += _registry_section("`model`: models", MODELS, "model.name", "`model.name` and that model's keys.")
    md += _registry_section("Encoders", ENCODERS, "name", "An encoder in `model.encoder` (every modality) or "
                            "`model.encoders.<modality>`: `name` and its keys.")
    md += _registry_section("Fusions", FUSIONS, "name", "`model.fusion`: `name` and its keys.")
    md += _registry_section("Heads", HEADS, "name", "`model.head`: `name` and its keys.")
    return "\n".join(md)


def pages() -> dict[str, str]:
    return {**command_pages(), "configs.md": config_page()}


if __name__ == "__main__":
    out = Path(sys.argv[1] if len(sys.argv) > 1 else "site-pages")
    for rel, text in pages().items():
        (out / rel).parent.mkdir(parents=True, exist_ok=True)
        (out / rel).write_text(text)
        print(out / rel)
