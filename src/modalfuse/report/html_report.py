"""``report.html``: the report as one self-contained page that reads offline.

The page is ``report.md`` rendered by Python-Markdown (tables, code), with every plot embedded as a
``data:`` URI, verdicts and warnings styled, and each run's resolved config in a ``<details>``
element. No script, no stylesheet or font from elsewhere: the file can be mailed or archived alone.
"""

from __future__ import annotations

import base64
import html
import re
from pathlib import Path
from typing import TYPE_CHECKING

import yaml

if TYPE_CHECKING:
    from .runs import Run

HTML_FILE = "report.html"

STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 2rem auto; max-width: 1200px;
       padding: 0 1rem; color: #1a1a1a; line-height: 1.45; }
h1 { border-bottom: 2px solid #ddd; padding-bottom: .3rem; }
h2 { border-bottom: 1px solid #eee; margin-top: 2.2rem; }
table { border-collapse: collapse; margin: 1rem 0; font-size: .9rem; display: block; overflow-x: auto; }
th, td { border: 1px solid #ddd; padding: .3rem .55rem; }
td { white-space: nowrap; }
th { background: #f5f5f5; }
tr:nth-child(even) td { background: #fafafa; }
code, pre { font-family: ui-monospace, Menlo, Consolas, monospace; font-size: .85rem; }
pre { background: #f6f8fa; padding: .7rem; overflow-x: auto; border-radius: 4px; }
img { max-width: 100%; height: auto; border: 1px solid #eee; }
ul.warnings li { background: #fff4e5; border-left: 4px solid #f0a020; padding: .35rem .6rem; margin: .3rem 0;
                 list-style: none; }
.better { color: #1a7f37; }
.worse { color: #c62828; }
details { margin: .3rem 0; }
summary { cursor: pointer; }
"""


def _data_uri(path: Path) -> str:
    return "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode("ascii")


def _embed_images(body: str, bases: list[Path]) -> str:
    """Each ``<img src="relative.png">`` becomes a data URI, looked up in ``bases`` in order; an
    image that is in none of them is an error (a page with a broken image is not written)."""

    def embed(m: re.Match) -> str:
        src = html.unescape(m.group(2))
        for base in bases:
            if (base / src).is_file():
                return f'{m.group(1)}"{_data_uri(base / src)}"'
        raise FileNotFoundError(f"{src}: an image the report links to, not found in {', '.join(map(str, bases))}")

    return re.sub(r'(<img[^>]*?\bsrc=)"([^"]+)"', embed, body)


def _style_verdicts(body: str) -> str:
    body = re.sub(r"<strong>(better|worse)</strong>", r'<strong class="\1">\1</strong>', body)
    return re.sub(r"(<h2[^>]*>Warnings</h2>\s*)<ul>", r'\1<ul class="warnings">', body)


def _configs_section(runs: list[Run]) -> str:
    parts = ['<h2 id="run-configs">Run configs</h2>',
             "<p>Each run's resolved config (<code>config.yaml</code> in its run folder), as it trained.</p>"]
    for r in runs:
        text = yaml.safe_dump(r.config, sort_keys=False, default_flow_style=None)
        parts.append(f"<details><summary>{html.escape(r.label)}, seed {r.seed} "
                     f"(<code>{html.escape(r.folder.name)}</code>)</summary><pre>{html.escape(text)}</pre></details>")
    return "\n".join(parts)


def report_html(markdown_text: str, runs: list[Run], image_dirs: list[Path], title: str) -> str:
    """The page for ``markdown_text`` (``report.md``'s text).

    Args:
        markdown_text: the report in Markdown.
        runs: the reported runs (their configs go at the end, one ``<details>`` each).
        image_dirs: where the Markdown's relative image paths resolve, tried in order.
        title: the page title.
    """
    import markdown

    body = markdown.markdown(markdown_text, extensions=["tables", "fenced_code"], output_format="html")
    body = _style_verdicts(_embed_images(body, image_dirs))
    return (f'<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">\n'
            f"<title>{html.escape(title)}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n{body}\n"
            f"{_configs_section(runs)}\n</body>\n</html>\n")
