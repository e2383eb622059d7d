"""Shared fixtures: the real data in ../shared (tests that need it skip cleanly without it)."""

from __future__ import annotations

from pathlib import Path

import pytest

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """``../shared/data`` beside the checkout; skips the test when it is absent."""
    if not SHARED.is_dir():
        pytest.skip(f"real data not found at {SHARED} (../shared is absent)")
    return SHARED
