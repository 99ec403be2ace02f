"""End to end in real headless Chromium at 1600 x 1000: `arena leaderboard` serves the app, the browser renders it.

Chromium is driven through chromedriver's W3C WebDriver HTTP API (stdlib only): Streamlit renders over a
websocket after the page loads, so a one-shot ``chromium --dump-dom`` snapshots an empty shell; WebDriver lets the
test wait for the rendered table. The data grid draws on a canvas, but keeps an accessibility table of the cells in
view: its column headers are the columns a reader sees without scrolling sideways. A full-page screenshot of every
page goes to $ARENA_ARTIFACT_DIR (or the test's temp dir).
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from _lb_helpers import XSS_ARCH, seed_small

from arena.export import leaderboard_frame
from arena.leaderboard.synthetic import seed_database
from arena.store.engine import open_store

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
DRIVER = shutil.which("chromedriver")
pytestmark = pytest.mark.skipif(not (CHROMIUM and DRIVER),
                                reason="needs Debian's chromium and chromium-driver (apt-get install -y chromium "
                                       "chromium-driver; .ci/run installs them)")
CHROME_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
               "--disable-background-networking", "--disable-component-update", "--disable-sync",
               "--disable-dev-shm-usage", "--window-size=1600,1000"]
WIDTH, HEIGHT = 1600, 1000


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http(url: str, method: str = "GET", body: dict | None = None, timeout: float = 60) -> bytes:
    req = urllib.request.Request(url, method=method, data=None if body is None else json.dumps(body).encode(),
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=timeout) as r:
        return r.read()


def wait_for(fn, timeout: float, what: str):
    t0, last = time.monotonic(), None
    while time.monotonic() - t0 < timeout:
        try:
            last = fn()
            if last:
                return last
        except (OSError, urllib.error.URLError):
            pass
        time.sleep(0.3)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what} (last: {last!r})")


class WebDriver:
    def __init__(self, port: int, profile: Path):
        self.base = f"http://127.0.0.1:{port}"
        caps = {"capabilities": {"alwaysMatch": {"browserName": "chrome", "goog:chromeOptions": {
            "binary": CHROMIUM, "args": CHROME_ARGS + [f"--user-data-dir={profile}"]}}}}
        self.sid = self.call("POST", "/session", caps)["sessionId"]

    def call(self, method: str, path: str, body: dict | None = None):
        return json.loads(http(self.base + path, method, body, timeout=120))["value"]

    def get(self, url: str) -> None:
        self.call("POST", f"/session/{self.sid}/url", {"url": url})

    def js(self, script: str):
        return self.call("POST", f"/session/{self.sid}/execute/sync", {"script": script, "args": []})

    def screenshot(self, path: Path) -> Path:
        path.write_bytes(base64.b64decode(self.call("GET", f"/session/{self.sid}/screenshot")))
        return path

    def full_page(self, path: Path) -> Path:
        """Grow the window to the page's height (Streamlit scrolls inside its own container), shoot, restore."""
        height = self.js(FULL_HEIGHT)
        self.call("POST", f"/session/{self.sid}/window/rect", {"width": WIDTH, "height": min(int(height), 8000)})
        time.sleep(1.5)  # charts re-layout to the new size
        try:
            return self.screenshot(path)
        finally:
            self.call("POST", f"/session/{self.sid}/window/rect", {"width": WIDTH, "height": HEIGHT})

    def quit(self) -> None:
        self.call("DELETE", f"/session/{self.sid}")


FULL_HEIGHT = """
const m = document.querySelector('[data-testid="stMain"]') || document.querySelector('section.main');
return (m ? m.scrollHeight : document.body.scrollHeight) + 120;
"""
# the grid's accessibility table lists the columns in view; the scroller says whether anything is off to the right
GRID_COLUMNS = """
const grid = document.querySelector('[data-testid="stDataFrame"]');
if (!grid) return null;
const heads = Array.from(grid.querySelectorAll('th[role="columnheader"]')).map(t => t.innerText.trim());
const sc = grid.querySelector('.dvn-scroller');
return {heads: heads, scroll_width: sc ? sc.scrollWidth : null, client_width: sc ? sc.clientWidth : null,
        left: grid.getBoundingClientRect().left, right: grid.getBoundingClientRect().right, vw: window.innerWidth};
"""
CHARTS = "return document.querySelectorAll('[data-testid=\"stVegaLiteChart\"] canvas, "\
         "[data-testid=\"stVegaLiteChart\"] svg').length;"

RENDERED = """
const q = s => document.querySelectorAll(s);
if (q('[data-testid="stStatusWidgetRunningIcon"]').length) return null;
return {title: document.title, frames: q('[data-testid="stDataFrame"]').length,
        exceptions: q('[data-testid="stException"]').length,
        h1: Array.from(q('h1')).map(e => e.innerText),
        metrics: Array.from(q('[data-testid="stMetric"]')).map(e => e.innerText),
        captions: Array.from(q('[data-testid="stCaptionContainer"]')).map(e => e.innerText),
        texts: Array.from(q('[data-testid="stText"]')).map(e => e.innerText),
        codes: Array.from(q('[data-testid="stCode"]')).map(e => e.innerText),
        alerts: Array.from(q('[data-testid="stAlert"]')).map(e => e.innerText),
        xss: window.__xss === 1,
        scripts: Array.from(q('script')).filter(s => s.textContent.includes('alert(1)')).length,
        imgs: Array.from(q('img')).filter(i => i.getAttribute('src') === 'x').length};
"""


def seed_board(db: str) -> dict[str, int]:
    """The small board (hostile plugin row, failed run) plus a 3-point learning-rate grid for the LR page."""
    ids = seed_small(db)
    seed_database(db, 5 * 2 * 3 * 3, lrs=(3e-4, 3e-3, 3e-2), seed=7).dispose()
    return ids


@pytest.mark.slow  # ~90 s on the shared 2-core machine (six page loads, torch imported for the run page)
def test_leaderboard_in_headless_chromium(tmp_path):
    db = f"sqlite:///{tmp_path / 'board.db'}"
    ids = seed_board(db)
    frame = leaderboard_frame(open_store(db, readonly=True), task="nested-parity")
    artifacts = Path(os.environ.get("ARENA_ARTIFACT_DIR") or tmp_path / "artifacts")
    artifacts.mkdir(parents=True, exist_ok=True)
    port, dport = free_port(), free_port()
    log = open(tmp_path / "server.log", "w")
    env = dict(os.environ, OMP_NUM_THREADS="1")
    env.pop("ARENA_DB_URL", None)  # the --db option must be what the app uses
    server = subprocess.Popen([sys.executable, "-c", "from arena.cli.app import main; main()", "leaderboard",
                               "--db", db, "--port", str(port)], stdout=log, stderr=subprocess.STDOUT, env=env,
                              cwd=tmp_path, start_new_session=True)
    driver_proc = subprocess.Popen([DRIVER, f"--port={dport}"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                   start_new_session=True)
    browser = None
    try:
        url = f"http://127.0.0.1:{port}"
        wait_for(lambda: server.poll() is None and http(url + "/_stcore/health", timeout=5) == b"ok", 90,
                 "the streamlit server")
        wait_for(lambda: http(f"http://127.0.0.1:{dport}/status", timeout=5), 30, "chromedriver")
        browser = WebDriver(dport, tmp_path / "profile")

        t0 = time.monotonic()
        browser.get(url + "/")
        page = wait_for(lambda: (r := browser.js(RENDERED)) and r["frames"] and r["captions"] and r, 90,
                        "the leaderboard table")
        grid = wait_for(lambda: (g := browser.js(GRID_COLUMNS)) and g["heads"] and g, 30, "the grid's columns")
        print(f"leaderboard rendered in {time.monotonic() - t0:.1f} s; columns in view: {grid['heads']}")
        assert page["title"] == "arena leaderboard" and page["h1"][0].startswith("Leaderboard")
        assert page["frames"] == 1 and page["exceptions"] == 0
        assert any(f"· {len(frame)} rows from {int(frame['n'].sum())} runs ·" in c for c in page["captions"])
        # rank, score and the three ratios are in view at 1600 px, and so is the column after them (so the last
        # ratio is not cut at the edge): no sideways scrolling needed to read the ranking
        heads = grid["heads"]
        wanted = ["#", "architecture", "accuracy ± std", "per M params", "per GFLOP", "per ms"]
        assert all(h in heads for h in wanted), heads
        assert heads.index("per ms") + 1 < len(heads), heads
        assert grid["right"] <= grid["vw"] and grid["left"] >= 0
        shot = browser.full_page(artifacts / "leaderboard.png")
        assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 20_000

        for name in ("pareto", "depth", "lr_robustness", "glossary"):
            t0 = time.monotonic()
            browser.get(f"{url}/{name}")
            page = wait_for(lambda n=name: (r := browser.js(RENDERED)) and r["h1"]
                            and browser.js(CHARTS) >= (n != "glossary") and r, 90, f"the {name} page")
            print(f"{name} rendered in {time.monotonic() - t0:.1f} s")
            assert page["exceptions"] == 0, name
            browser.full_page(artifacts / f"{name}.png")

        t0 = time.monotonic()
        browser.get(f"{url}/run_detail?run={ids['hostile']}")
        page = wait_for(lambda: (r := browser.js(RENDERED)) and any("alert(1)" in t for t in r["texts"])
                        and any("arena run" in c for c in r["codes"]) and r,
                        90, "the run detail page")
        print(f"run detail rendered in {time.monotonic() - t0:.1f} s")
        browser.full_page(artifacts / "run_detail.png")
        assert page["exceptions"] == 0
        assert any(XSS_ARCH in t for t in page["texts"])  # shown literally, as text
        assert any(c.strip().startswith("arena run --arch '<script>") for c in page["codes"])
        assert not page["xss"] and page["scripts"] == 0 and page["imgs"] == 0  # and never executed
        assert {p.name for p in artifacts.glob("*.png")} >= {f"{n}.png" for n in (
            "leaderboard", "pareto", "depth", "lr_robustness", "run_detail", "glossary")}
    finally:
        if browser is not None:
            try:
                browser.quit()
            except OSError:
                pass
        for proc in (driver_proc, server):
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
                try:
                    proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait()
        log.close()
