"""The page in real headless Chromium (Debian's, not a Playwright download): the stream shows and stats update."""

import shutil
import time
from pathlib import Path

import numpy as np
import pytest
from helpers import FakeCamera, serve

from maskdetector.analytics.alerts import Alerts
from maskdetector.analytics.history import History, database_url, default_instance
from maskdetector.types import Face
from maskdetector.vision.tracking import BoxTracker
from maskdetector.web.accounts import AccountStore
from maskdetector.web.app import create_app

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


def test_several_cameras_chart_and_alert_banner(untrained_model, chromium_path, data_dir):
    """Two cameras with a stream each, the compliance chart drawn from stored history, and the banner for an alert."""
    now = time.time()
    history = History(database_url("", data_dir), default_instance())  # where the app looks by default
    for source, label in [("entrance", "with_mask")] * 3 + [("hall", "without_mask")]:
        history.record(source, label, now - 120)
    history.close()
    alerts = Alerts(data_dir, frames=1, cooldown_s=0)
    alerts.observe(
        "hall",
        np.zeros((90, 120, 3), np.uint8),
        BoxTracker().update([Face((9, 9, 30, 30), "without_mask", 0.9)]).seen,
        now,
    )
    alerts.close()
    cameras = {"entrance": FakeCamera(fps=15), "hall": FakeCamera(fps=15, shape=(90, 120))}
    app = create_app({"MODEL": str(untrained_model), "SOURCE_FACTORY": cameras, "ALERTS": True})
    with serve(app) as url, sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium_path, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            page.goto(url + "/", wait_until="domcontentloaded")
            assert page.eval_on_selector_all(".camera h2", "hs => hs.map(h => h.textContent)") == ["entrance", "hall"]
            page.wait_for_function(
                "[...document.querySelectorAll('img.stream')].every(img => img.naturalWidth > 0)", timeout=20_000
            )
            assert page.eval_on_selector_all("img.stream", "imgs => imgs.map(i => i.naturalWidth)") == [160, 120]
            page.wait_for_function(
                "Number(document.querySelector('#total [data-stat=viewers]').textContent) >= 2", timeout=20_000
            )
            page.wait_for_function("Number(document.querySelector('#history-chart').dataset.bars) > 0", timeout=20_000)
            assert page.text_content("#history-summary") == "4 people, 75% with a mask"
            painted = page.eval_on_selector(
                "#history-chart",
                "c => c.getContext('2d').getImageData(0, 0, c.width, c.height).data"
                ".filter((v, i) => i % 4 === 3 && v > 0).length",
            )
            assert painted > 0
            page.select_option("#history-source", "hall")
            assert page.text_content("#history-summary") == "1 person, 0% with a mask"
            page.wait_for_selector("#alert-banner", state="visible", timeout=20_000)
            assert "No mask at hall" in page.text_content("#alert-banner")
            assert page.locator("#alert-list li a").count() == 1
        finally:
            browser.close()


def test_login_page_then_the_stream_and_refused_without_logging_in(untrained_model, chromium_path, data_dir):
    AccountStore(data_dir).add("ada", "viewer", "correct horse battery")
    app = create_app({"MODEL": str(untrained_model), "SOURCE": "fake camera", "SOURCE_FACTORY": FakeCamera(fps=15)})
    with serve(app) as url, sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium_path, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            assert page.goto(url + "/video_feed").status == 401  # no picture without a login
            page.goto(url + "/", wait_until="domcontentloaded")
            assert page.url == url + "/login?next=/"
            page.fill("input[name=username]", "ada")
            page.fill("input[name=password]", "wrong password")
            page.click("button[type=submit]")
            assert "Wrong name or password" in page.text_content("#login-error")
            page.fill("input[name=username]", "ada")
            page.fill("input[name=password]", "correct horse battery")
            page.click("button[type=submit]")
            page.wait_for_selector("#stream")
            assert page.url == url + "/" and page.text_content("#account") == "ada (viewer)"
            page.wait_for_function("document.querySelector('#stream').naturalWidth > 0", timeout=20_000)
            assert page.eval_on_selector("#stream", "img => img.naturalWidth") == 160
            page.click("#logout")
            page.wait_for_selector("#login")
            assert page.goto(url + "/api/stats").status == 401
        finally:
            browser.close()
