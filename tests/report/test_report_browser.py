"""report.html in headless Chromium: it renders (not blank), every heading is in the rendered text,
and loading it makes no network request (checked in Chromium's own net log, with a positive control)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ganforge.report.html import COMPARE_SECTIONS, SECTIONS, write_compare, write_report

from report_helpers import add_eval_outputs, make_run

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
pytestmark = pytest.mark.skipif(not Path(CHROMIUM).is_file(), reason="needs Debian's chromium (apt-get install chromium; .ci/run installs it)")

FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-default-apps", "--disable-extensions", "--hide-scrollbars",
    "--proxy-server=127.0.0.1:9",  # anything that does try the network goes nowhere
]


def chromium(tmp: Path, url: str, *extra: str) -> subprocess.CompletedProcess:
    profile = tmp / f"profile-{len(list(tmp.glob('profile-*')))}"  # a fresh profile per call
    return subprocess.run([CHROMIUM, *FLAGS, f"--user-data-dir={profile}", *extra, url],
                          capture_output=True, text=True, timeout=120)


def page_requests(net_log: Path) -> list[str]:
    """URLs the page itself asked for (Chromium's own update/account pings are 'not an origin')."""
    raw = net_log.read_text().rstrip()
    try:
        log = json.loads(raw)
    except json.JSONDecodeError:  # a log cut short at exit: close it
        log = json.loads(raw.rstrip(",") + "]}")
    names = {v: k for k, v in log["constants"]["logEventTypes"].items()}
    urls = []
    for e in log["events"]:
        p = e.get("params") or {}
        if names.get(e["type"]) == "URL_REQUEST_START_JOB" and "url" in p and p.get("initiator") != "not an origin":
            if not p["url"].startswith(("file:", "data:")):
                urls.append(p["url"])
    return urls


@pytest.fixture(scope="module")
def report(tmp_path_factory) -> Path:
    run = make_run(tmp_path_factory.mktemp("browser") / "run")
    add_eval_outputs(run)
    return write_report(run)


def test_report_renders_with_every_heading(report, tmp_path):
    shot = tmp_path / "shot.png"
    res = chromium(tmp_path, report.as_uri(), "--window-size=1280,2400", f"--screenshot={shot}")
    assert shot.is_file(), res.stderr[-2000:]
    px = np.asarray(Image.open(shot).convert("L"), dtype=np.float64)
    assert px.shape == (2400, 1280)
    assert px.std() > 20  # not blank: plots, grids and text
    assert (px < 128).mean() > 0.02 and (px > 200).mean() > 0.3  # dark ink on a light page
    dom = chromium(tmp_path, report.as_uri(), "--dump-dom").stdout
    headings = [re.sub(r"<[^>]+>", "", h).replace("&amp;", "&") for h in re.findall(r"<h2>(.*?)</h2>", dom)]
    assert headings == list(SECTIONS)
    assert dom.count('<img src="data:image/png;base64,') >= 12


def test_report_makes_no_network_request(report, tmp_path):
    log = tmp_path / "net.json"
    res = chromium(tmp_path, report.as_uri(), f"--log-net-log={log}", "--dump-dom")
    assert "<h2>Gradient flow</h2>" in res.stdout
    assert page_requests(log) == []
    # Positive control: the same check does see a page that loads remote resources.
    ctrl = tmp_path / "ctrl.html"
    ctrl.write_text('<html><body><h2>x</h2><img src="http://example.invalid/a.png">'
                    '<link rel="stylesheet" href="https://example.invalid/s.css"></body></html>')
    log2 = tmp_path / "net2.json"
    chromium(tmp_path, ctrl.as_uri(), f"--log-net-log={log2}", "--dump-dom")
    assert sorted(page_requests(log2)) == ["http://example.invalid/a.png", "https://example.invalid/s.css"]


def test_compare_page_renders(report, tmp_path):
    other = make_run(tmp_path / "other", **{"train.seed": 1})
    page = write_compare([report.parent, other], tmp_path / "compare.html")
    dom = chromium(tmp_path, page.as_uri(), "--dump-dom").stdout
    assert re.findall(r"<h2>(.*?)</h2>", dom) == list(COMPARE_SECTIONS)
