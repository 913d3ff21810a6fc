"""Open the built site in headless Chromium: headings, console errors and screenshots.

    python docs/browser.py site --screenshots docs/images

serves ``site`` (``mkdocs build``'s output) on 127.0.0.1, opens the home page, the API page of
``TargetConvTranspose2d`` and the search results for "output_padding" (typed into the search
box), and prints each page's heading and every console error, failed request or request that
left the machine. tests/test_docs.py runs the same check. It drives Chromium through the
DevTools protocol over a pipe (``--remote-debugging-pipe``): no driver, no extra package.
docs/images/screenshot-search-output_padding.png is one of its screenshots.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import functools
import http.server
import json
import os
import queue
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--window-size=1280,900", "--remote-debugging-pipe"]


def find_chromium() -> str | None:
    """``$CHROMIUM``, else the first of chromium, chromium-browser, google-chrome on the PATH."""
    names = [os.environ.get("CHROMIUM", ""), "chromium", "chromium-browser", "google-chrome"]
    return next((path for name in names if name and (path := shutil.which(name))), None)


class Chromium:
    """A headless Chromium driven over the DevTools protocol on fds 3 and 4 (JSON messages ended by NUL)."""

    def __init__(self, executable: str, profile: str) -> None:
        to_child, self._to_browser = os.pipe()
        self._from_browser, from_child = os.pipe()

        def pipes_at_3_and_4() -> None:
            os.dup2(to_child, 3)
            os.dup2(from_child, 4)

        self.process = subprocess.Popen(
            [executable, *FLAGS, f"--user-data-dir={profile}", "about:blank"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            preexec_fn=pipes_at_3_and_4, pass_fds=(3, 4),
        )
        os.close(to_child)
        os.close(from_child)
        self._next_id = 0
        self._replies: dict[int, dict[str, Any]] = {}
        self.events: queue.Queue[dict[str, Any]] = queue.Queue()
        self._lock = threading.Condition()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        buffer = b""
        with os.fdopen(self._from_browser, "rb", buffering=0) as stream:
            while chunk := stream.read(65536):
                buffer += chunk
                *messages, buffer = buffer.split(b"\0")
                for raw in messages:
                    message = json.loads(raw)
                    if "id" in message:
                        with self._lock:
                            self._replies[message["id"]] = message
                            self._lock.notify_all()
                    else:
                        self.events.put(message)

    def send(self, method: str, session: str | None = None, timeout: float = 30, **params: Any) -> dict[str, Any]:
        """Send one command and wait for its reply; raises RuntimeError on a protocol error."""
        self._next_id += 1
        message: dict[str, Any] = {"id": self._next_id, "method": method, "params": params}
        if session:
            message["sessionId"] = session
        os.write(self._to_browser, json.dumps(message).encode() + b"\0")
        with self._lock:
            if not self._lock.wait_for(lambda: self._next_id in self._replies, timeout):
                raise TimeoutError(f"Chromium did not answer {method} within {timeout} s")
            reply = self._replies.pop(self._next_id)
        if "error" in reply:
            raise RuntimeError(f"{method}: {reply['error']}")
        return dict(reply.get("result", {}))

    def close(self) -> None:
        with contextlib.suppress(OSError, RuntimeError, TimeoutError):
            self.send("Browser.close", timeout=5)
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        os.close(self._to_browser)


@dataclass
class PageResult:
    """What one page showed: its heading, its problems, a screenshot (PNG bytes)."""

    name: str
    url: str
    heading: str
    problems: list[str] = field(default_factory=list)
    screenshot: bytes = b""


class Tab:
    """One page of the browser, with console errors, failed requests and outside requests recorded."""

    def __init__(self, browser: Chromium, origin: str) -> None:
        self.browser, self.origin = browser, origin
        target = browser.send("Target.createTarget", url="about:blank")["targetId"]
        self.session = browser.send("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]
        for domain in ("Page", "Runtime", "Log", "Network"):
            self.send(f"{domain}.enable")
        self.problems: list[str] = []

    def send(self, method: str, **params: Any) -> dict[str, Any]:
        return self.browser.send(method, self.session, **params)

    def _drain(self) -> None:
        """Record the problems among the events received so far."""
        while True:
            try:
                event = self.browser.events.get_nowait()
            except queue.Empty:
                return
            if event.get("sessionId") == self.session and (problem := self._problem(event)):
                self.problems.append(problem)

    def _problem(self, event: dict[str, Any]) -> str | None:
        method, params = event["method"], event.get("params", {})
        if method == "Runtime.consoleAPICalled" and params["type"] in ("error", "assert"):
            return "console error: " + " ".join(str(arg.get("value", arg.get("description"))) for arg in params["args"])
        if method == "Runtime.exceptionThrown":
            details = params["exceptionDetails"]
            return f"uncaught exception: {details.get('exception', {}).get('description', details['text'])}"
        if method == "Log.entryAdded" and params["entry"]["level"] == "error":
            return f"console error ({params['entry']['source']}): {params['entry']['text']}"
        if method == "Network.loadingFailed" and not params.get("canceled"):
            return f"request failed: {params['errorText']} ({params.get('type', '?')})"
        if method == "Network.requestWillBeSent":
            url = params["request"]["url"]
            if not url.startswith((self.origin, "data:", "blob:", "about:")):
                return f"request outside the site: {url}"
        return None

    def evaluate(self, expression: str) -> Any:
        return self.send("Runtime.evaluate", expression=expression, returnByValue=True)["result"].get("value")

    def wait_for(self, expression: str, timeout: float = 20) -> Any:
        """Poll a JavaScript expression until it is truthy; return its value (or the last one)."""
        deadline = time.monotonic() + timeout
        while not (value := self.evaluate(expression)) and time.monotonic() < deadline:
            time.sleep(0.1)
        return value

    def open(self, url: str) -> None:
        self.send("Page.navigate", url=url)
        self.wait_for("document.readyState === 'complete'")

    def screenshot(self) -> bytes:
        return base64.b64decode(self.send("Page.captureScreenshot", format="png")["data"])

    def result(self, name: str, heading: str) -> PageResult:
        time.sleep(0.5)  # late console messages and requests
        self._drain()
        return PageResult(name, self.evaluate("location.href"), heading, self.problems, self.screenshot())


HEADING = """(() => {  // the page's h1 without its permalink sign
    const h1 = document.querySelector('article h1');
    if (!h1) return null;
    const copy = h1.cloneNode(true);
    copy.querySelectorAll('.headerlink').forEach(link => link.remove());
    return copy.textContent.trim();
})()"""
SEARCH_DONE = ("document.querySelector('.md-search-result__list li') &&"
               " document.querySelector('.md-search-result__meta').innerText")
RESULT_TITLES = "[...document.querySelectorAll('.md-search-result__item > a h1')].map(h => h.innerText.trim())"


def _page(browser: Chromium, origin: str, name: str, path: str) -> PageResult:
    tab = Tab(browser, origin)
    tab.open(origin + path)
    return tab.result(name, tab.wait_for(HEADING) or "")


def _search(browser: Chromium, origin: str, query: str) -> PageResult:
    """Type ``query`` into the home page's search box; the heading is the results' count line
    followed by the titles of the matching pages."""
    tab = Tab(browser, origin)
    tab.open(origin)
    tab.wait_for("!!document.querySelector('.md-search__input')")
    tab.evaluate("document.querySelector('label.md-header__button[for=__search]').click()")
    tab.evaluate("document.querySelector('.md-search__input').focus()")
    for key in query:  # typed key by key, as a person would: the search box listens to keyup
        tab.send("Input.dispatchKeyEvent", type="keyDown", key=key, text=key)
        tab.send("Input.dispatchKeyEvent", type="keyUp", key=key)
    meta = tab.wait_for(SEARCH_DONE) or ""
    titles = tab.evaluate(RESULT_TITLES) or []
    return tab.result(f"search {query!r}", "\n".join([meta, *titles]))


PAGES: list[tuple[str, Callable[[Chromium, str], PageResult]]] = [
    ("home", functools.partial(_page, name="home", path="")),
    ("api-TargetConvTranspose2d", functools.partial(_page, name="TargetConvTranspose2d",
                                                     path="api/TargetConvTranspose2d/")),
    ("search-output_padding", functools.partial(_search, query="output_padding")),
]


@contextlib.contextmanager
def serve(site: Path) -> Iterator[str]:
    """Serve ``site`` on 127.0.0.1 at a free port; yields the origin URL ending in a slash."""
    handler = functools.partial(_QuietHandler, directory=str(site))
    with http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler) as server:
        threading.Thread(target=server.serve_forever, daemon=True).start()
        try:
            yield f"http://127.0.0.1:{server.server_address[1]}/"
        finally:
            server.shutdown()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


def check_site(site: Path, executable: str) -> dict[str, PageResult]:
    """Open the three pages of the built ``site`` in a fresh headless Chromium."""
    with serve(site) as origin, tempfile.TemporaryDirectory() as profile:
        browser = Chromium(executable, profile)
        try:
            return {key: open_page(browser, origin) for key, open_page in PAGES}
        finally:
            browser.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("site", type=Path, help="the folder mkdocs build wrote")
    parser.add_argument("--screenshots", type=Path, help="write screenshot-<page>.png here")
    args = parser.parse_args(argv)
    executable = find_chromium()
    if executable is None:
        parser.error("no Chromium found: apt-get install chromium, or set CHROMIUM")
    results = check_site(args.site, executable)
    for key, result in results.items():
        print(f"{result.name}: {result.url}\n  heading: {result.heading!r}")
        print("".join(f"  problem: {problem}\n" for problem in result.problems) or "  no problems")
        if args.screenshots:
            args.screenshots.mkdir(parents=True, exist_ok=True)
            (args.screenshots / f"screenshot-{key}.png").write_bytes(result.screenshot)
    return 1 if any(result.problems for result in results.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
