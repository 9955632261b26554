"""The page in real headless Chromium (Debian's, not a Playwright download): the stream shows and stats update."""

import shutil
from pathlib import Path

import pytest
from helpers import FakeCamera, serve

from maskdetector.web import create_app

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

sync_api = pytest.importorskip("playwright.sync_api")


@pytest.fixture
def chromium_path() -> str:
    path = CHROMIUM if CHROMIUM.exists() else shutil.which("chromium")
    if not path:
        pytest.skip("chromium is not installed: run `make browser`")
    return str(path)


def test_page_shows_live_stream_and_updating_stats(untrained_model, chromium_path):
    app = create_app({"MODEL": str(untrained_model), "SOURCE": "fake camera", "SOURCE_FACTORY": FakeCamera(fps=15)})
    with serve(app) as url, sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium_path, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            page.goto(url + "/", wait_until="domcontentloaded")
            assert page.text_content("#source") == "fake camera"
            page.wait_for_function("document.querySelector('#stream').naturalWidth > 0", timeout=20_000)
            assert page.eval_on_selector("#stream", "img => img.naturalWidth") == 160
            # The frame counter is only changed by the script polling /api/stats: rising means live stats.
            frames = "Number(document.querySelector('[data-stat=frames]').textContent)"
            page.wait_for_function(f"{frames} > 0", timeout=20_000)
            first = page.evaluate(frames)
            page.wait_for_function(f"{frames} > {first}", timeout=20_000)
            page.wait_for_function(
                "Number(document.querySelector('[data-stat=viewers]').textContent) >= 1", timeout=20_000
            )
            assert page.is_hidden("#camera-status")
        finally:
            browser.close()
