"""`modalfuse list models --task yt8m` (issue 29): aligned columns whatever the name's length, lines
within 100 columns, and every description whole (wrapped, never cut mid-phrase)."""

from __future__ import annotations

import re

import pytest

from modalfuse.listing import list_entries


@pytest.mark.slow  # sizes every preset (meta device): about 10 s
def test_yt8m_models_list_in_columns_with_whole_descriptions() -> None:
    lines = list_entries("models", task="yt8m")
    assert max(len(line) for line in lines) <= 100
    entries: list[list[str]] = []
    for line in lines:
        if line.startswith(" "):
            entries[-1].append(line)
        else:
            entries.append([line])
    starts = set()
    for entry in entries:
        first = entry[0]
        if not first.startswith("yt8m/"):
            continue
        size = re.search(r"\d+\.\dM \([\d,]+\)", first)
        assert size, first
        description_at = first.index(first[size.end():].lstrip(), size.end())
        starts.add(description_at)
        for more in entry[1:]:  # continuation lines sit under the description
            assert len(more) - len(more.lstrip()) == description_at
        text = " ".join([first[description_at:]] + [m.strip() for m in entry[1:]])
        assert text.endswith("."), text  # a whole sentence
    assert len(starts) == 1  # one column, whatever the name's length
    modality = next(e for e in entries if e[0].startswith("yt8m/attend-fusion-modality "))
    assert "otherwise the yt8m/attend-fusion preset." in " ".join(m.strip() for m in modality)
