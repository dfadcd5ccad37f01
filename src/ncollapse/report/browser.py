"""Check a report page in headless Chromium over the DevTools protocol (CDP), and screenshot it.

Used by the browser test and to make the documentation's screenshot. Needs a Chromium binary
(Debian: ``apt-get install -y chromium``; ``make chromium`` installs it as root) and the optional
package ``websocket-client`` (extra ``browser``). Nothing is downloaded: the browser runs with a
fresh profile and without background networking, and any request that leaves the machine is
reported as a failure of the page (the report must be self-contained).
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ncollapse.errors import NCollapseError

__all__ = ["find_chromium", "PageCheck", "Browser", "CHROMIUM_FLAGS"]

CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-extensions",
    "--disable-dev-shm-usage",
    "--hide-scrollbars",
    "--mute-audio",
]

CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")

#: What the page reports about itself (evaluated in the page).
_PROBE = """(() => {
  const charts = [...document.querySelectorAll('svg.chart, svg.heat')];
  const drawn = charts.filter(s => {
    const r = s.getBoundingClientRect();
    return r.width > 50 && r.height > 50 &&
      s.querySelector('path, rect[fill^="#"], circle, polygon') !== null;
  });
  return JSON.stringify({
    scrollWidth: document.documentElement.scrollWidth,
    innerWidth: window.innerWidth,
    bodyScrollWidth: document.body.scrollWidth,
    charts: charts.length,
    drawn: drawn.length,
    empty: charts.filter(s => !drawn.includes(s)).map(s => s.id),
    ready: document.documentElement.getAttribute('data-report-ready') === '1',
    height: document.documentElement.scrollHeight,
    title: document.title,
  });
})()"""


def find_chromium() -> str | None:
    """Path of a Chromium / Chrome binary on PATH (``$NCOLLAPSE_CHROMIUM`` first), or None."""
    env = os.environ.get("NCOLLAPSE_CHROMIUM")
    if env:
        return env if Path(env).is_file() else None
    for name in CANDIDATES:
        p = shutil.which(name)
        if p:
            return p
    return None


@dataclass
class PageCheck:
    """Result of :meth:`Browser.check` at one viewport width."""

    width: int
    scroll_width: int
    inner_width: int
    charts: int
    drawn: int
    empty: list[str]
    ready: bool
    height: int
    errors: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)
    screenshot: Path | None = None

    @property
    def overflows(self) -> bool:
        """The page is wider than the viewport asked for. (With phone emulation an overflowing
        page also widens ``innerWidth``, so both are compared with the requested width.)"""
        return max(self.scroll_width, self.inner_width) > self.width


class Browser:
    """A headless Chromium with one page, driven over CDP. Use as a context manager."""

    def __init__(self, binary: str | None = None, timeout: float = 30.0):
        try:
            import websocket  # websocket-client
        except ImportError as exc:
            raise NCollapseError(
                "the browser check needs the package websocket-client; install it with "
                "`pip install websocket-client` (or the extra ncollapse[browser])"
            ) from exc
        self._ws_mod = websocket
        self.binary = binary or find_chromium()
        if self.binary is None:
            raise NCollapseError(
                f"no Chromium found (looked for {', '.join(CANDIDATES)} on PATH and "
                "$NCOLLAPSE_CHROMIUM); as root: apt-get update && apt-get install -y chromium "
                "(or `make chromium`)"
            )
        self.timeout = timeout
        self._id = 0
        self.events: list[dict[str, Any]] = []

    # -- process and connection -----------------------------------------------------------

    def __enter__(self) -> Browser:
        self._profile = tempfile.mkdtemp(prefix="ncollapse-chromium-")
        args = [self.binary, *CHROMIUM_FLAGS, f"--user-data-dir={self._profile}",
                "--remote-debugging-port=0", "--remote-debugging-address=127.0.0.1",
                "about:blank"]  # fmt: skip
        self._log = open(Path(self._profile) / "chromium.log", "wb")  # noqa: SIM115
        self.proc = subprocess.Popen(args, stdout=self._log, stderr=subprocess.STDOUT)
        try:
            port = self._port()
            self.ws = self._connect(port)
            for m in ("Page.enable", "Runtime.enable", "Log.enable", "Network.enable"):
                self.call(m)
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def __exit__(self, *exc) -> None:
        ws = getattr(self, "ws", None)
        if ws is not None:
            try:
                ws.close()
            except Exception:  # noqa: BLE001
                pass
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self._log.close()
        shutil.rmtree(self._profile, ignore_errors=True)

    def _port(self) -> int:
        f = Path(self._profile) / "DevToolsActivePort"
        t0 = time.monotonic()
        while time.monotonic() - t0 < self.timeout:
            if f.is_file() and f.read_text().strip():
                return int(f.read_text().split()[0])
            if self.proc.poll() is not None:
                break
            time.sleep(0.1)
        log = (Path(self._profile) / "chromium.log").read_text(errors="replace")[-600:]
        raise NCollapseError(f"{self.binary} did not open its DevTools port; its log ends: {log}")

    def _connect(self, port: int):
        t0 = time.monotonic()
        while True:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=5) as r:
                targets = json.loads(r.read())
            pages = [t for t in targets if t.get("type") == "page"]
            if pages:
                break
            if time.monotonic() - t0 > self.timeout:
                raise NCollapseError("Chromium opened no page target")
            time.sleep(0.1)
        return self._ws_mod.create_connection(
            pages[0]["webSocketDebuggerUrl"], timeout=self.timeout, suppress_origin=True
        )

    def call(self, method: str, **params) -> dict[str, Any]:
        """Send one CDP command and return its result (events arriving meanwhile are kept)."""
        self._id += 1
        my = self._id
        self.ws.send(json.dumps({"id": my, "method": method, "params": params}))
        while True:
            msg = json.loads(self.ws.recv())
            if msg.get("id") == my:
                if "error" in msg:
                    raise NCollapseError(f"CDP {method} failed: {msg['error']}")
                return msg.get("result", {})
            if "method" in msg:
                self.events.append(msg)

    def _wait_event(self, name: str) -> None:
        t0 = time.monotonic()
        while time.monotonic() - t0 < self.timeout:
            if any(e["method"] == name for e in self.events):
                return
            msg = json.loads(self.ws.recv())
            if "method" in msg:
                self.events.append(msg)
        raise NCollapseError(f"timed out waiting for {name}")

    # -- page checks ----------------------------------------------------------------------

    def _problems(self) -> tuple[list[str], list[str]]:
        errors, requests = [], []
        for e in self.events:
            m, p = e["method"], e.get("params", {})
            if m == "Runtime.exceptionThrown":
                d = p.get("exceptionDetails", {})
                errors.append("exception: " + (d.get("exception", {}).get("description")
                                               or d.get("text", "?")))  # fmt: skip
            elif m == "Runtime.consoleAPICalled" and p.get("type") in ("error", "assert"):
                errors.append("console." + p["type"] + ": " + " ".join(
                    str(a.get("value", a.get("description", ""))) for a in p.get("args", [])))  # fmt: skip
            elif m == "Log.entryAdded" and p.get("entry", {}).get("level") == "error":
                errors.append("log: " + p["entry"].get("text", ""))
            elif m == "Network.requestWillBeSent":
                url = p.get("request", {}).get("url", "")
                if not url.startswith(("file:", "data:", "about:")):
                    requests.append(url)
        return errors, requests

    def check(self, path: str | Path, width: int, height: int = 900,
              screenshot: str | Path | None = None, full_page: bool = True) -> PageCheck:  # fmt: skip
        """Load ``path`` at a ``width`` x ``height`` viewport (a phone below 500 px) and measure it;
        optionally save a PNG screenshot (the whole page, or the first viewport)."""
        self.call("Emulation.setDeviceMetricsOverride", width=width, height=height,
                  deviceScaleFactor=1, mobile=width < 500)  # fmt: skip
        self.events.clear()
        self.call("Page.navigate", url=Path(path).resolve().as_uri())
        self._wait_event("Page.loadEventFired")
        res = self.call("Runtime.evaluate", expression=_PROBE, returnByValue=True)
        info = json.loads(res["result"]["value"])
        errors, requests = self._problems()
        out = PageCheck(width, info["scrollWidth"], info["innerWidth"], info["charts"],
                        info["drawn"], info["empty"], info["ready"], info["height"], errors,
                        requests)  # fmt: skip
        if screenshot is not None:
            clip = None
            if full_page:
                clip = dict(x=0, y=0, width=width, height=min(info["height"], 16000), scale=1)
            kw = {"clip": clip, "captureBeyondViewport": True} if clip else {}
            shot = self.call("Page.captureScreenshot", format="png", **kw)
            out.screenshot = Path(screenshot)
            out.screenshot.parent.mkdir(parents=True, exist_ok=True)
            out.screenshot.write_bytes(base64.b64decode(shot["data"]))
        return out

    def screenshot_clip(self, path: str | Path, out: str | Path, width: int, height: int,
                        scale: float = 1.0) -> Path:  # fmt: skip
        """Screenshot the top ``width`` x ``height`` CSS pixels of ``path``, scaled by ``scale``."""
        self.call("Emulation.setDeviceMetricsOverride", width=width, height=height,
                  deviceScaleFactor=1, mobile=False)  # fmt: skip
        self.events.clear()
        self.call("Page.navigate", url=Path(path).resolve().as_uri())
        self._wait_event("Page.loadEventFired")
        clip = dict(x=0, y=0, width=width, height=height, scale=scale)
        shot = self.call("Page.captureScreenshot", format="png", clip=clip)
        out = Path(out)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_bytes(base64.b64decode(shot["data"]))
        return out
