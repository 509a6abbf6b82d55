"""The page of ``scenesense serve`` in a real headless Chromium (Selenium, the system's chromium and
chromedriver): type a sentence, upload a generated clip, read the results off the page; they must
be the API's answers for the same inputs. Skips without chromium, chromedriver or selenium."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from tests.serve.conftest import WINDOW_S, LiveServer, require_serve
from tests.support.media import voice, write_samples

require_serve()
import httpx  # noqa: E402 - after the skip

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
if not (Path(CHROMIUM).is_file() and Path(CHROMEDRIVER).is_file()):
    pytest.skip("chromium and chromedriver are not installed", allow_module_level=True)
webdriver = pytest.importorskip("selenium.webdriver")
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--disable-background-networking", "--disable-component-update", "--no-first-run",
                "--disable-sync", f"--user-data-dir={tmp_path_factory.mktemp('chromium')}"):
        options.add_argument(arg)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SE_OFFLINE", "true")  # Selenium Manager: never look for drivers online
        driver = webdriver.Chrome(options=options, service=webdriver.ChromeService(CHROMEDRIVER))
    driver.set_page_load_timeout(60)
    try:
        yield driver
    finally:
        driver.quit()


def _open(browser, live: LiveServer) -> None:
    browser.get(f"{live.url}/")
    WebDriverWait(browser, 30).until(lambda b: b.find_element(By.TAG_NAME, "body").get_attribute("data-state")
                                     == "ready")


def _wait_done(browser) -> str:
    WebDriverWait(browser, 120).until(lambda b: b.find_element(By.TAG_NAME, "body").get_attribute("data-state")
                                      in ("done", "error"))
    return browser.find_element(By.TAG_NAME, "body").get_attribute("data-state")


def _bars(browser) -> dict[str, float]:
    return {bar.get_attribute("data-label"): float(bar.get_attribute("data-probability"))
            for bar in browser.find_elements(By.CSS_SELECTOR, "#bars .bar")}


def test_the_page_shows_the_prediction_of_a_typed_sentence(browser, live):
    _open(browser, live)
    assert browser.find_element(By.ID, "run").text == live.run_dir.name
    sentence = "We lost everything."
    expected = httpx.post(f"{live.url}/predict", json={"text": sentence}, timeout=60).json()
    browser.find_element(By.ID, "text").send_keys(sentence)
    browser.find_element(By.ID, "predict-text").click()
    assert _wait_done(browser) == "done", browser.find_element(By.ID, "error").text
    assert browser.find_element(By.ID, "label").text == expected["label"]
    bars = _bars(browser)
    assert list(bars) == ["calm", "angry"]
    for name, p in expected["probabilities"].items():
        assert bars[name] == pytest.approx(p, abs=1e-9)
    assert not browser.find_element(By.ID, "timeline-box").is_displayed()


def test_the_page_shows_label_and_timeline_of_an_uploaded_clip(browser, live, tmp_path):
    quiet, loud = 0.1 * voice(1.0, 200.0), 3 * voice(1.0, 200.0)
    clip = write_samples(tmp_path / "my clip.wav", np.concatenate([quiet, loud]))
    expected = httpx.post(f"{live.url}/predict", files={"file": (clip.name, clip.read_bytes())}, timeout=60).json()
    _open(browser, live)
    browser.find_element(By.ID, "file").send_keys(str(clip))
    browser.find_element(By.ID, "predict-file").click()
    assert _wait_done(browser) == "done", browser.find_element(By.ID, "error").text
    assert browser.find_element(By.ID, "label").text == expected["label"]
    assert "my clip.wav" in browser.find_element(By.ID, "source").text
    segments = browser.find_elements(By.CSS_SELECTOR, "#timeline .segment")
    assert len(segments) == len(expected["timeline"]) == 4
    shown = [(float(s.get_attribute("data-start")), float(s.get_attribute("data-end")), s.get_attribute("data-label"))
             for s in segments]
    assert shown == [(s["start"], s["end"], s["label"]) for s in expected["timeline"]]
    assert shown[-1][1] == pytest.approx(4 * WINDOW_S) and shown[-1][2] == "angry"
    assert segments[0].text.startswith("0:00.0–0:00.5")


def test_the_page_shows_the_servers_message_for_a_refused_file(browser, live, tmp_path):
    junk = tmp_path / "junk.wav"
    junk.write_bytes(np.random.default_rng(1).bytes(5000))
    _open(browser, live)
    browser.find_element(By.ID, "file").send_keys(str(junk))
    browser.find_element(By.ID, "predict-file").click()
    assert _wait_done(browser) == "error"
    assert "junk.wav: not a readable audio or video file" in browser.find_element(By.ID, "error").text
    assert not browser.find_element(By.ID, "result").is_displayed()
    assert list(live.uploads.iterdir()) == []
