"""The web workstation in a real browser: ``quantgpu web`` served on 127.0.0.1, Debian's Chromium, headless.

The server runs as a subprocess (exactly as a user starts it) with the built-in
"Sphere" sample: a soft-tissue ball in air with a dense core. Playwright loads
the page, waits until each of the four views (axial, sagittal, coronal, 3D) has
received a rendered picture from the server, checks what those pictures show,
checks the side drawer's panels and saves a screenshot under the test's
temporary directory.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.browser

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
MODULE_PACKAGES = ("CalciumScoringLib", "PerfusionAnalysisLib", "MammoCADLib")
VIEWS = ("axial", "sagittal", "coronal", "3d")

# Luminance statistics of one view's current picture, computed in the page from the <img> the
# server streamed into it: standard deviation, fraction of bright pixels (> 230 of 255: the core, not the grey ball) and
# fraction of warm pixels (red exceeds blue by > 25: the CT preset's bone/tissue colours; the
# 3D background gradient and the grey-scale slices are neutral), and the centroid of the bright
# pixels as a fraction of the picture's width and height (0, 0 = top left).
VIEW_STATS_JS = """
(name) => {
  const label = document.getElementById('qg-view-' + name);
  if (!label) return null;
  const item = label.closest('.layout-grid-item');
  const img = item && item.querySelector('img.image-display-area');
  if (!img || !img.complete || !img.naturalWidth) return null;
  const canvas = document.createElement('canvas');
  canvas.width = img.naturalWidth; canvas.height = img.naturalHeight;
  const context = canvas.getContext('2d');
  context.drawImage(img, 0, 0);
  const data = context.getImageData(0, 0, canvas.width, canvas.height).data;
  let n = 0, sum = 0, sum2 = 0, bright = 0, warm = 0, bx = 0, by = 0;
  for (let p = 0; p < data.length; p += 4) {
    const y = 0.299 * data[p] + 0.587 * data[p + 1] + 0.114 * data[p + 2];
    n++; sum += y; sum2 += y * y;
    if (y > 230) { bright++; bx += (p / 4) % canvas.width; by += Math.floor(p / 4 / canvas.width); }
    if (data[p] - data[p + 2] > 25) warm++;
  }
  const mean = sum / n;
  return {width: canvas.width, height: canvas.height, shown_width: img.clientWidth, std: Math.sqrt(Math.max(sum2 / n - mean * mean, 0)),
          bright: bright / n, warm: warm / n,
          bright_x: bright ? bx / bright / canvas.width : null, bright_y: bright ? by / bright / canvas.height : null};
}
"""


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_for_url(process: subprocess.Popen, log_path: Path, timeout_s: float) -> str:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        text = log_path.read_text(errors="replace")
        for line in text.splitlines():
            if line.startswith("quantgpu web: serving "):
                return line.split()[3]
        if process.poll() is not None:
            pytest.fail(f"quantgpu web exited with {process.returncode}:\n{text[-3000:]}")
        time.sleep(0.2)
    pytest.fail(f"quantgpu web did not announce its URL within {timeout_s} s:\n{log_path.read_text()[-3000:]}")


def _expected_module_panels() -> dict[str, str]:
    """package -> title for each module that has a web panel (the same rule as the workstation)."""
    expected = {}
    for package in MODULE_PACKAGES:
        if importlib.util.find_spec(f"{package}.web_panel") is not None:
            expected[package] = importlib.import_module(f"{package}.web_panel").TITLE
    return expected


@pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian chromium is not installed")
def test_workstation_shows_views_and_panels_in_chromium(tmp_path):
    from playwright.sync_api import sync_playwright

    port = _free_port()
    log_path = tmp_path / "server.log"
    env = {**os.environ, "QUANTGPU_BACKEND": "cpu"}
    with log_path.open("w") as log:
        server = subprocess.Popen(
            [sys.executable, "-m", "quantgpu.cli", "web", "--port", str(port), "--sample", "Sphere"],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
        )
    try:
        url = _wait_for_url(server, log_path, timeout_s=40)
        assert url == f"http://127.0.0.1:{port}/"  # loopback by default
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
            try:
                page = browser.new_page(viewport={"width": 1400, "height": 900})
                page.goto(url)
                stats = _wait_for_rendered_views(page, timeout_s=30)
                (tmp_path / "views.json").write_text(json.dumps(stats, indent=1))
                _check_views(stats)
                _check_drawer(page)
                shot = tmp_path / "workstation.png"
                page.screenshot(path=str(shot))
                assert shot.stat().st_size > 20_000
            finally:
                browser.close()
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(timeout=10)


def _wait_for_rendered_views(page, timeout_s: float) -> dict:
    """Poll until every view shows a non-blank picture rendered at its on-page size, twice alike."""
    deadline = time.monotonic() + timeout_s
    stats: dict = {}
    previous: dict = {}
    while time.monotonic() < deadline:
        stats = {name: page.evaluate(VIEW_STATS_JS, name) for name in VIEWS}
        settled = all(s and s["std"] > 10 and abs(s["width"] - s["shown_width"]) <= 2 for s in stats.values())
        if settled and stats == previous:
            return stats
        previous = stats
        page.wait_for_timeout(500)
    pytest.fail(f"views did not render within {timeout_s} s: {stats}")


def _check_views(stats: dict) -> None:
    for name in ("axial", "sagittal", "coronal"):
        s = stats[name]
        # The ball (40 HU) fills a large disc of the slice; the 700 HU core is white in it.
        assert s["width"] > 200 and s["height"] > 200, (name, s)
        assert s["std"] > 20, (name, s)
        assert 0.005 < s["bright"] < 0.2, (name, s)
        assert s["warm"] < 0.001, (name, s)  # grey-scale slices
    # The core lies towards the patient's right, anterior and superior. Slicer's radiological
    # display puts the patient's right on the screen's left (axial, coronal), anterior at the top
    # of the axial view and superior at the top of the coronal and sagittal views.
    assert stats["axial"]["bright_x"] < 0.45 and stats["axial"]["bright_y"] < 0.45, stats["axial"]
    assert stats["coronal"]["bright_x"] < 0.45 and stats["coronal"]["bright_y"] < 0.45, stats["coronal"]
    assert stats["sagittal"]["bright_y"] < 0.45, stats["sagittal"]
    # 3D: the volume-rendered core in the CT preset's warm colours on a neutral background.
    assert 0.002 < stats["3d"]["warm"] < 0.5, stats["3d"]


def _check_drawer(page) -> None:
    assert page.locator("#qg-drawer").is_visible()
    assert page.locator("#panel-data").is_visible()
    assert page.locator("#qg-volume-name").inner_text().strip() == "Sphere"
    expected = _expected_module_panels()
    panels = page.locator(".qg-module-panel")
    assert panels.count() == 1 + len(expected)
    for package, title in expected.items():
        panel = page.locator(f"#panel-{package}")
        assert panel.count() == 1, package
        assert title in panel.inner_text()
