"""The served page in a real headless Chromium (Selenium, the system's chromium and chromedriver): open a
run from the picker, move the seed and truncation controls and see the image change, and see a curve
grow while `ganforge train` writes to a run. Skipped cleanly without chromium, chromedriver or selenium
(.ci/run installs chromium and chromium-driver; selenium is in the test extra)."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from serve_helpers import running, train_run

webdriver = pytest.importorskip("selenium.webdriver", reason="needs selenium (pip install 'ganforge[test]')")
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.common.keys import Keys  # noqa: E402
from selenium.webdriver.support.ui import Select, WebDriverWait  # noqa: E402

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
pytestmark = pytest.mark.skipif(
    not (Path(CHROMIUM).is_file() and Path(CHROMEDRIVER).is_file()),
    reason="needs Debian's chromium and chromium-driver (apt-get install chromium chromium-driver; .ci/run installs them)",
)


@pytest.fixture(scope="module")
def root(tmp_path_factory) -> Path:
    runs = tmp_path_factory.mktemp("browser") / "runs"
    train_run(runs / "digits", steps=4)
    return runs


@pytest.fixture(scope="module")
def server(root):
    with running(root) as s:
        yield s


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    os.environ.setdefault("SE_OFFLINE", "true")  # Selenium Manager must not look anything up
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-extensions", "--proxy-server=127.0.0.1:9",  # anything but loopback goes nowhere
                 "--window-size=1280,1000", f"--user-data-dir={tmp_path_factory.mktemp('profile')}"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(options=options, service=webdriver.ChromeService(executable_path=CHROMEDRIVER))
    driver.set_page_load_timeout(30)
    yield driver
    driver.quit()


def first_sample(driver) -> str:
    """The first sample's src, read in one step (the page replaces its images on every answer)."""
    return driver.execute_script("const i = document.querySelector('#samples img.sample'); return i ? i.src : '';")


def changes(driver, before: str, timeout: float = 20) -> str:
    """The first sample's src once it differs from `before` (and is an image)."""
    WebDriverWait(driver, timeout).until(lambda d: first_sample(d).startswith("data:image/png") and first_sample(d) != before)
    return first_sample(driver)


def severe_console_errors(driver) -> list[str]:
    return [e["message"] for e in driver.get_log("browser") if e["level"] == "SEVERE" and "favicon" not in e["message"]]


def test_pick_a_run_and_move_seed_and_truncation(browser, server):
    browser.get(server.url)
    WebDriverWait(browser, 20).until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#run option")) >= 2)
    Select(browser.find_element(By.ID, "run")).select_by_value("digits")
    first = changes(browser, "")
    # each sample's nearest training image (once the training set's features are computed, in the background)
    WebDriverWait(browser, 60).until(lambda d: d.execute_script("return document.querySelectorAll('#samples img.nearest').length") == 4)
    first = first_sample(browser)
    browser.find_element(By.ID, "seed").send_keys(Keys.ARROW_RIGHT, Keys.ARROW_RIGHT)
    after_seed = changes(browser, first)
    assert browser.find_element(By.ID, "seed-box").get_attribute("value") == "2"
    browser.find_element(By.ID, "truncation").send_keys(*[Keys.ARROW_LEFT] * 10)  # psi 1 -> 0.5
    changes(browser, after_seed)
    assert browser.find_element(By.ID, "truncation-value").text == "0.50"
    WebDriverWait(browser, 20).until(lambda d: d.find_elements(By.CSS_SELECTOR, "svg[data-chart='losses'] path"))
    assert browser.find_element(By.ID, "error").get_attribute("hidden") is not None  # no error shown
    assert severe_console_errors(browser) == []


def chart_points(driver) -> int:
    """Points of the longest curve in the losses chart (redrawn every second: read in one step)."""
    return driver.execute_script(
        "const c = document.querySelector(\"svg[data-chart='losses']\"); return c ? Number(c.dataset.points) : 0;")


def test_a_curve_grows_while_ganforge_train_writes(browser, server, root):
    run = root / "live"
    cmd = [sys.executable, "-m", "ganforge", "train", "--dataset", "digits", "--out", str(run), "--quiet", "--no-report",
           "--steps", "400", "--batch-size", "8", "--z-dim", "8", "--set", "model.g_width=8", "--set", "model.d_width=8",
           "--set", "data.max_items=64", "--set", "log.log_every=2", "--set", "log.grad_every=2",
           "--set", "log.sample_every=50", "--set", "log.checkpoint_every=100"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    try:
        deadline = time.monotonic() + 60
        while not (run / "config.yaml").is_file():
            assert proc.poll() is None, proc.stderr.read().decode()[-2000:]
            assert time.monotonic() < deadline, "ganforge train wrote no config.yaml"
            time.sleep(0.2)
        browser.get(server.url + "#run=live")
        WebDriverWait(browser, 60).until(lambda d: chart_points(d) >= 2)
        seen = chart_points(browser)
        WebDriverWait(browser, 60).until(lambda d: chart_points(d) > seen)
        assert chart_points(browser) > seen  # the page redrew a longer curve while training went on
        assert "step" in browser.find_element(By.ID, "live-status").text
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)  # ganforge train stops after the step and checkpoints
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        proc.stderr.close()
