"""The page at / in a real browser: Debian's chromium, headless, driven by Selenium through its chromedriver
(`make chromium` installs both). A digit image gets the right label; a shapes image gets its boxes drawn."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

CHROMIUM, DRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"


@pytest.fixture
def browser(tmp_path):
    if not (Path(CHROMIUM).exists() and Path(DRIVER).exists()):
        pytest.fail(f"{CHROMIUM} and {DRIVER} are missing (hint: make chromium)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-dev-shm-usage",
                 f"--user-data-dir={tmp_path / 'profile'}", "--window-size=1100,800"):  # fmt: skip
        opts.add_argument(flag)
    driver = webdriver.Chrome(service=Service(DRIVER), options=opts)
    driver.set_page_load_timeout(30)
    yield driver
    driver.quit()


def _choose(driver, model: str, path: Path, **options: str) -> None:
    from selenium.webdriver.support.ui import Select

    Select(driver.find_element("id", "model")).select_by_value(model)
    for name, value in options.items():
        field = driver.find_element("id", name)
        field.clear()
        field.send_keys(value)
    driver.find_element("id", "file").send_keys(str(path))


def test_the_page_labels_a_digit_and_draws_boxes_on_shapes(server, trained, browser, tmp_path):
    from selenium.webdriver.support.ui import WebDriverWait

    from dlbox.tasks.detect.predict import predict as detect_predict

    wait = WebDriverWait(browser, 30)
    browser.get(server.url + "/")
    wait.until(lambda d: "ready" in d.find_element("id", "status").text)

    digit = trained["digit_files"]["4"][0]
    _choose(browser, "digits", digit)
    label = wait.until(lambda d: d.find_elements("css selector", "#bars .bar .label"))[0].text
    assert label == "4"
    assert browser.find_element("id", "canvas").is_displayed()

    shapes = trained["shape_files"][0]
    want = detect_predict(trained["det_run"], [str(shapes)], conf=0.3)[0]["detections"]
    _choose(browser, "det", shapes, conf="0.3")
    boxes = wait.until(lambda d: d.find_element("id", "canvas").get_attribute("data-boxes"))
    assert int(boxes) == len(want) > 0
    labels = [e.text for e in browser.find_elements("css selector", "#bars .bar .label")]
    assert labels == [d["label"] for d in want]
    # the boxes are on the canvas: its pixels there are not the image's
    drawn = browser.execute_script(
        "const c = document.getElementById('canvas'); const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;"
        "let n = 0; for (let i = 0; i < d.length; i += 4) if (d[i] == 229 && d[i + 1] == 57 && d[i + 2] == 53) n++; return n;")
    assert drawn > 0  # the first box's outline, in the page's first colour (#e53935)
    shot = tmp_path / "page.png"
    assert browser.save_screenshot(str(shot)) and shot.stat().st_size > 0
    if os.environ.get("DLBOX_TEST_SCREENSHOTS"):  # to look at it
        shutil.copy(shot, Path(os.environ["DLBOX_TEST_SCREENSHOTS"]) / "serve-page.png")
