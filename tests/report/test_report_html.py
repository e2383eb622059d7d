"""report.html (issue 29): one self-contained page beside report.md, checked in a real headless
Chromium (Debian's package, driven by Playwright): a screenshot is taken, the console stays free of
errors and every image loads. Skipped, with the reason, only where no browser is installed."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

PLOTS = ["metrics.png", "forest.png", "training_curves.png", "confusion_matrices.png", "efficiency.png",
         "attention.png", "ablation.png"]


def test_report_html_is_self_contained(tiny_compare: Path) -> None:
    page = (tiny_compare / "report" / "report.html").read_text()
    sources = re.findall(r'<img[^>]*\bsrc="([^"]+)"', page)
    assert len(sources) == len(PLOTS) and all(s.startswith("data:image/png;base64,") for s in sources)
    assert not re.search(r'(src|href)="(https?:)?//', page)  # nothing fetched from elsewhere
    assert "<script" not in page and "<link" not in page
    md = (tiny_compare / "report" / "report.md").read_text()
    for heading in re.findall(r"^## (.+)$", md, flags=re.M):  # every section of report.md
        assert f">{heading}</h2>" in page, heading
    assert page.count("<details>") == 6  # 3 models x 2 seeds, each run's config on demand
    assert '<strong class="better">' in page or "indistinguishable" in page
    assert "learning_rate" in page and "Warnings</h2>" in page


def _browser() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    pytest.skip("no Chromium installed (Debian: apt-get install chromium; .ci/run installs it)")


@pytest.mark.slow
def test_report_html_renders_in_headless_chromium(tiny_compare: Path, tmp_path: Path) -> None:
    executable = _browser()
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is in the [test] extra")
    page_file = (tiny_compare / "report" / "report.html").resolve()
    problems: list[str] = []
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=executable, args=["--no-sandbox"])
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.on("console", lambda m: problems.append(f"console {m.type}: {m.text}") if m.type in ("error", "warning") else None)
            page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
            page.on("requestfailed", lambda r: problems.append(f"request failed: {r.url[:80]}"))
            page.goto(page_file.as_uri(), wait_until="load")
            images = page.evaluate("Array.from(document.images).map(i => [i.complete, i.naturalWidth, i.naturalHeight])")
            page.click("details > summary")  # a run's config opens on demand
            opened = page.evaluate("document.querySelector('details').open")
            shot = tmp_path / "report.png"
            page.screenshot(path=str(shot), full_page=True)
        finally:
            browser.close()
    assert problems == []
    assert len(images) == len(PLOTS)
    assert all(done and w > 300 and h > 200 for done, w, h in images), images  # every image decoded
    assert opened is True
    import matplotlib.image

    height, width = matplotlib.image.imread(shot).shape[:2]
    assert width == 1280 and height > 2000  # the whole page, plots included
