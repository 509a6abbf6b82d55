"""The page of an analysis in headless Chromium (Selenium): it loads from ``file://`` with no error,
lists every segment, and clicking a segment (or its block on the strip) moves the player there.

Skipped when Selenium, ``/usr/bin/chromium`` or ``/usr/bin/chromedriver`` is absent.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import pytest

from scenesense.analyze import analyze_media
from tests.analyze.support import EnergyVAD, ScriptedTranscriber, write_tones

webdriver = pytest.importorskip("selenium.webdriver")
CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
pytestmark = pytest.mark.skipif(not (CHROMIUM.is_file() and CHROMEDRIVER.is_file()),
                                reason="chromium and chromium-driver are not installed")

TONES = [(0.5, 1.5, 0.6), (2.5, 3.2, 0.03), (4.0, 5.5, 0.5), (6.5, 7.0, 0.04), (8.0, 9.5, 0.6)]
SCRIPT = ["first words", "a <b>bold</b> & odd line", "third", "fourth one", "the last"]


@pytest.fixture(scope="module")
def browser():
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="scenesense-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                "--disable-component-update", "--no-first-run", "--disable-sync", f"--user-data-dir={profile}",
                "--window-size=1280,900", "--autoplay-policy=no-user-gesture-required"):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(options=options, service=Service(str(CHROMEDRIVER)))
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def _current_time(driver) -> float:
    return float(driver.execute_script("return document.getElementById('player').currentTime"))


def test_clicking_a_segment_moves_the_player_to_its_start(tmp_path, browser, audio_text_run, fakes,
                                                          stub_text_extractor):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    media = write_tones(tmp_path / "call.wav", TONES, 10.0)
    analysis = analyze_media(audio_text_run, media, tmp_path / "call.analysis",
                             transcriber=ScriptedTranscriber(SCRIPT), vad=EnergyVAD(), progress=False)
    assert len(analysis.segments) == len(TONES)
    browser.get(analysis.files["html"].resolve().as_uri())
    rows = WebDriverWait(browser, 10).until(lambda d: d.find_elements(By.CSS_SELECTOR, "li.segment"))
    blocks = browser.find_elements(By.CSS_SELECTOR, "#strip .block")
    assert len(rows) == len(blocks) == len(TONES)
    assert [r.find_element(By.CSS_SELECTOR, ".transcript").text for r in rows] == SCRIPT  # text, not markup
    assert [r.find_element(By.CSS_SELECTOR, ".label").text for r in rows] == [s.label for s in analysis.segments]
    WebDriverWait(browser, 10).until(
        lambda d: d.execute_script("return document.getElementById('player').readyState") >= 1)
    for k in (3, 0, 4, 1):
        rows[k].click()
        start = analysis.segments[k].start
        assert start <= _current_time(browser) < start + 1.0, k
        assert "current" in rows[k].get_attribute("class")
    blocks[2].click()
    assert analysis.segments[2].start <= _current_time(browser) < analysis.segments[2].start + 1.0
    browser.execute_script("document.getElementById('player').pause()")
    severe = [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]
    assert severe == []


def test_an_empty_timeline_says_so(tmp_path, browser, audio_text_run, fakes, stub_text_extractor):
    from selenium.webdriver.common.by import By

    media = write_tones(tmp_path / "quiet.wav", [], 2.0)
    analysis = analyze_media(audio_text_run, media, tmp_path / "out", transcribe="never", vad=EnergyVAD(),
                             progress=False)
    browser.get(analysis.files["html"].resolve().as_uri())
    assert browser.find_elements(By.CSS_SELECTOR, "li.segment") == []
    assert "No segment" in browser.find_element(By.CSS_SELECTOR, "#segments").text
