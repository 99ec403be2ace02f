"""End to end in real headless Chromium: `arena leaderboard` serves the app, the browser renders the table.

Chromium is driven through chromedriver's W3C WebDriver HTTP API (stdlib only): Streamlit renders over a
websocket after the page loads, so a one-shot ``chromium --dump-dom`` snapshots an empty shell; WebDriver lets the
test wait for the rendered table. Screenshots go to $ARENA_ARTIFACT_DIR (or the test's temp dir).
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
from arena.store.engine import open_store

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
DRIVER = shutil.which("chromedriver")
pytestmark = pytest.mark.skipif(not (CHROMIUM and DRIVER),
                                reason="needs Debian's chromium and chromium-driver (apt-get install -y chromium "
                                       "chromium-driver; .ci/run installs them)")
CHROME_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
               "--disable-background-networking", "--disable-component-update", "--disable-sync",
               "--disable-dev-shm-usage", "--window-size=1400,1000"]


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

    def quit(self) -> None:
        self.call("DELETE", f"/session/{self.sid}")


RENDERED = """
const q = s => document.querySelectorAll(s);
if (q('[data-testid="stStatusWidgetRunningIcon"]').length) return null;
return {title: document.title, frames: q('[data-testid="stDataFrame"]').length,
        exceptions: q('[data-testid="stException"]').length,
        h1: Array.from(q('h1')).map(e => e.innerText),
        metrics: Array.from(q('[data-testid="stMetric"]')).map(e => e.innerText),
        texts: Array.from(q('[data-testid="stText"]')).map(e => e.innerText),
        codes: Array.from(q('[data-testid="stCode"]')).map(e => e.innerText),
        alerts: Array.from(q('[data-testid="stAlert"]')).map(e => e.innerText),
        xss: window.__xss === 1,
        scripts: Array.from(q('script')).filter(s => s.textContent.includes('alert(1)')).length,
        imgs: Array.from(q('img')).filter(i => i.getAttribute('src') === 'x').length};
"""


@pytest.mark.slow  # ~40 s on the shared 2-core machine (two page loads, torch imported for the run page)
def test_leaderboard_in_headless_chromium(tmp_path):
    db = f"sqlite:///{tmp_path / 'board.db'}"
    ids = seed_small(db)
    expected_rows = len(leaderboard_frame(open_store(db, readonly=True)))
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
        page = wait_for(lambda: (r := browser.js(RENDERED)) and r["frames"] and r["metrics"] and r, 90,
                        "the leaderboard table")
        print(f"leaderboard rendered in {time.monotonic() - t0:.1f} s")
        t0 = time.monotonic()
        shot = browser.screenshot(artifacts / "leaderboard.png")
        assert page["title"] == "arena leaderboard" and page["h1"][0].startswith("Leaderboard")
        assert page["frames"] == 1 and page["exceptions"] == 0
        metrics = {m.split("\n")[0]: m.split("\n")[-1] for m in page["metrics"]}
        assert metrics["rows"] == str(expected_rows) and metrics["runs"] == "61"
        assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 20_000

        browser.get(f"{url}/run_detail?run={ids['hostile']}")
        page = wait_for(lambda: (r := browser.js(RENDERED)) and any("alert(1)" in t for t in r["texts"])
                        and any("arena run" in c for c in r["codes"]) and r,
                        90, "the run detail page")
        print(f"run detail rendered in {time.monotonic() - t0:.1f} s")
        browser.screenshot(artifacts / "run_detail.png")
        assert page["exceptions"] == 0
        assert any(XSS_ARCH in t for t in page["texts"])  # shown literally, as text
        assert any(c.strip().startswith("arena run --arch '<script>") for c in page["codes"])
        assert not page["xss"] and page["scripts"] == 0 and page["imgs"] == 0  # and never executed
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
