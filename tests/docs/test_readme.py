"""The README stays the front door (issue 29): at most 200 lines, and every page it links exists.
Reference material belongs in docs/ (the site: mkdocs.yml)."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_readme_is_short_and_its_links_resolve() -> None:
    text = (ROOT / "README.md").read_text()
    assert len(text.splitlines()) <= 200, "README.md over 200 lines: move reference material to a docs/ page"
    links = re.findall(r"\]\(((?!https?:)[^)#]+)", text)
    assert links and all((ROOT / link).exists() for link in links), [x for x in links if not (ROOT / x).exists()]
