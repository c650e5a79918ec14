"""Drive Debian's `chromium` headless over the Chrome DevTools Protocol (CDP).

Uses `websockets` (already locked: dagster-webserver -> uvicorn[standard] -> websockets) for the
DevTools websocket; nothing else. Each browser gets a fresh profile directory and the flags that
keep it from calling home, so it runs the same offline and in CI.
"""

from __future__ import annotations

import base64
import contextlib
import itertools
import json
import re
import shutil
import subprocess
import time
from pathlib import Path

from websockets.sync.client import connect

CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--window-size=1600,1000",
]


def chromium_path() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


class Page:
    """One CDP session on a page target: navigate, evaluate JS, screenshot."""

    def __init__(self, ws_url: str):
        self._stack = contextlib.ExitStack()
        self._ws = self._stack.enter_context(
            connect(ws_url, max_size=64 * 1024 * 1024, open_timeout=30)
        )
        self._ids = itertools.count(1)
        self.send("Page.enable")
        self.send("Runtime.enable")

    def send(self, method: str, params: dict | None = None, timeout: float = 60.0) -> dict:
        msg_id = next(self._ids)
        self._ws.send(json.dumps({"id": msg_id, "method": method, "params": params or {}}))
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"CDP {method}: no answer in {timeout}s")
            message = json.loads(self._ws.recv(timeout=remaining))
            if message.get("id") == msg_id:
                if "error" in message:
                    raise RuntimeError(f"CDP {method}: {message['error']}")
                return message.get("result", {})

    def navigate(self, url: str) -> None:
        self.send("Page.navigate", {"url": url})

    def evaluate(self, expression: str):
        result = self.send("Runtime.evaluate", {"expression": expression, "returnByValue": True})[
            "result"
        ]
        return result.get("value")

    def body_text(self) -> str:
        return self.evaluate("document.body ? document.body.innerText : ''") or ""

    def wait_for_text(self, patterns: list[str], timeout: float) -> str:
        """Poll the page text until every regex in `patterns` matches; returns the text."""
        deadline = time.monotonic() + timeout
        text = ""
        while time.monotonic() < deadline:
            text = self.body_text()
            if all(re.search(p, text) for p in patterns):
                return text
            time.sleep(0.5)
        raise TimeoutError(f"page never showed {patterns}; last text:\n{text[:3000]}")

    def screenshot(self, target: Path) -> Path:
        data = self.send("Page.captureScreenshot", {"format": "png"})["data"]
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(base64.b64decode(data))
        return target

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self._stack.close()


class HeadlessChromium:
    def __init__(self, profile_dir: Path, binary: str | None = None):
        self.binary = binary or chromium_path()
        if not self.binary:
            raise FileNotFoundError(
                "chromium not found; install it with: apt-get install -y chromium"
            )
        self.profile_dir = profile_dir
        self.proc: subprocess.Popen | None = None
        self.devtools_url = ""

    def __enter__(self) -> HeadlessChromium:
        self.profile_dir.mkdir(parents=True, exist_ok=True)
        self.proc = subprocess.Popen(
            [
                self.binary,
                *CHROMIUM_FLAGS,
                f"--user-data-dir={self.profile_dir}",
                "--remote-debugging-address=127.0.0.1",
                "--remote-debugging-port=0",
                "about:blank",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        # Chromium prints "DevTools listening on ws://127.0.0.1:PORT/devtools/browser/ID".
        deadline = time.monotonic() + 60
        for line in self.proc.stderr:
            match = re.search(r"DevTools listening on (ws://\S+)", line)
            if match:
                self.devtools_url = match.group(1)
                break
            if time.monotonic() > deadline:
                break
        if not self.devtools_url:
            self.__exit__(None, None, None)
            raise RuntimeError("chromium did not report its DevTools address")
        # Keep draining stderr so chromium never blocks on a full pipe.
        self._drain = subprocess.Popen(["cat"], stdin=self.proc.stderr, stdout=subprocess.DEVNULL)
        return self

    def new_page(self) -> Page:
        with connect(self.devtools_url, open_timeout=30) as browser:
            request = {"id": 1, "method": "Target.createTarget", "params": {"url": "about:blank"}}
            browser.send(json.dumps(request))
            while True:
                message = json.loads(browser.recv(timeout=30))
                if message.get("id") == 1:
                    target_id = message["result"]["targetId"]
                    break
        host_port = self.devtools_url.split("/")[2]
        return Page(f"ws://{host_port}/devtools/page/{target_id}")

    def __exit__(self, *exc) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        drain = getattr(self, "_drain", None)
        if drain is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                drain.wait(timeout=5)
