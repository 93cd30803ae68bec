"""Open a report in headless Chromium, offline: a screenshot, the rendered DOM and the console.

This is how nnspec checks that its HTML really renders (tests/test_report_browser.py) and how the
README's screenshot is made::

    python -m nnspec.report.browser out/report.html screenshot.png [--size 1280,1600]

Only the Python standard library and the system's Chromium (Debian's ``chromium`` package) are used:
no browser is downloaded. The network is cut off inside the browser (every host resolves to nothing,
every request goes to a closed proxy port), so a report that needed the network would show it.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
_CONSOLE = re.compile(r":CONSOLE(?:\(\d+\)|:\d+)\] (.*)$", re.MULTILINE)


def find_chromium() -> str | None:
    """The path of an installed Chromium or Chrome, or None."""
    for name in CANDIDATES:
        path = shutil.which(name)
        if path:
            return path
    return None


@dataclass
class Rendered:
    """What the browser made of a page."""

    dom: str
    console: list[str]  # every console message and uncaught error, as Chromium logs them
    screenshot: Path | None


def _flags(profile: Path) -> list[str]:
    return [
        "--headless",
        "--disable-gpu",
        "--no-sandbox",  # root in containers and CI
        "--hide-scrollbars",
        "--no-first-run",
        "--disable-extensions",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        # no network: every name resolves to nothing and anything that still tries hits a closed port
        "--host-resolver-rules=MAP * ~NOTFOUND",
        "--proxy-server=http://127.0.0.1:9",
        "--proxy-bypass-list=<-loopback>",
        "--enable-logging=stderr",
        "--v=0",
        f"--user-data-dir={profile}",
    ]


def render(html: Path | str, screenshot: Path | str | None = None, *, size: tuple[int, int] = (1280, 1600),
           timeout: float = 90.0, chromium: str | None = None) -> Rendered:
    """Load ``html`` (a file) offline; return the DOM after scripts ran, the console messages and
    (when ``screenshot`` is given) a PNG of the first ``size`` pixels. Raises FileNotFoundError when
    no Chromium is installed and :class:`subprocess.TimeoutExpired` when it hangs."""
    browser = chromium or find_chromium()
    if browser is None:
        raise FileNotFoundError(f"no Chromium found (looked for {', '.join(CANDIDATES)}); "
                                "on Debian: apt-get install chromium")
    url = Path(html).absolute().as_uri()
    console: list[str] = []
    with tempfile.TemporaryDirectory(prefix="nnspec-chromium-") as tmp:
        flags = _flags(Path(tmp)) + [f"--window-size={size[0]},{size[1]}"]
        dom = subprocess.run([browser, *flags, "--dump-dom", url], capture_output=True, text=True,
                             timeout=timeout, check=True)
        console += _CONSOLE.findall(dom.stderr)
        shot = None
        if screenshot is not None:
            shot = Path(screenshot).absolute()
            run = subprocess.run([browser, *flags, f"--screenshot={shot}", url], capture_output=True,
                                 text=True, timeout=timeout, check=True)
            console += _CONSOLE.findall(run.stderr)
            if not shot.is_file():
                raise RuntimeError(f"Chromium wrote no screenshot:\n{run.stderr[-2000:]}")
    return Rendered(dom=dom.stdout, console=console, screenshot=shot)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m nnspec.report.browser",
                                     description="Screenshot a report in headless Chromium, offline.")
    parser.add_argument("html", type=Path)
    parser.add_argument("png", type=Path)
    parser.add_argument("--size", default="1280,1600", help="WIDTH,HEIGHT in pixels")
    args = parser.parse_args(argv)
    width, height = (int(v) for v in args.size.split(","))
    rendered = render(args.html, args.png, size=(width, height))
    for line in rendered.console:
        print(f"console: {line}", file=sys.stderr)
    print(args.png)
    return 1 if rendered.console else 0


if __name__ == "__main__":
    sys.exit(main())
