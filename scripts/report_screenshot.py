#!/usr/bin/env python3
"""Screenshot the plots of a stored run's `report.html` in headless Chromium.

    .venv/bin/python scripts/report_screenshot.py reports/nilm/<run>/report.html docs/report-screenshot.png

Opens the page offline (a file:// URL), sizes the window to the whole page and saves the part
that holds the given sections (default: the latency and Pareto plots). Needs Debian's
`chromium` and `chromium-driver` (scripts/test.sh installs them when run as root).
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

# offline and quiet: no first-run, sync, update or background requests
CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update",
                  "--disable-sync", "--hide-scrollbars", "--window-size=1300,1000")
SECTIONS = ("#latency", "#pareto")


def browser_paths() -> tuple[str | None, str | None]:
    """(Chromium, chromedriver) on PATH, either may be None."""
    browser = next((p for p in map(shutil.which, ("chromium", "chromium-browser",
                                                  "google-chrome")) if p), None)
    return browser, shutil.which("chromedriver")


def open_browser(profile: Path, logs: bool = False) -> Any:
    """A headless Chromium through Selenium (console and network logs with `logs`)."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    binary, driver_path = browser_paths()
    if not (binary and driver_path):
        raise SystemExit(f"Chromium and chromedriver are needed (Debian: apt-get install chromium "
                         f"chromium-driver): found browser={binary}, driver={driver_path}")
    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={profile}")
    if logs:
        options.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    return webdriver.Chrome(service=Service(driver_path), options=options)


def full_page_screenshot(browser: Any, out: Path) -> None:
    """The whole page, the window stretched to its height."""
    height = browser.execute_script("return document.documentElement.scrollHeight")
    browser.set_window_size(1300, height)
    if not browser.save_screenshot(str(out)):
        raise RuntimeError(f"Chromium saved no screenshot to {out}")


def crop(screenshot: Path, browser: Any, selectors: list[str] | tuple[str, ...], out: Path) -> None:
    """Cut the union of the page elements `selectors` out of a full-page screenshot."""
    from PIL import Image

    boxes = [browser.execute_script(
        "const r = document.querySelector(arguments[0]).getBoundingClientRect();"
        "return [r.left, r.top + window.scrollY, r.right, r.bottom + window.scrollY];", s)
        for s in selectors]
    ratio = browser.execute_script("return window.devicePixelRatio")
    left, top = min(b[0] for b in boxes), min(b[1] for b in boxes)
    right, bottom = max(b[2] for b in boxes), max(b[3] for b in boxes)
    with Image.open(screenshot) as image:
        image.crop(tuple(round(v * ratio) for v in (left - 8, top - 8, right + 8,
                                                    bottom + 8))).save(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("report", type=Path, help="a run's report.html")
    parser.add_argument("out", type=Path, help="the PNG to write")
    parser.add_argument("--section", action="append", default=None,
                        help="CSS selector of a section to keep (repeatable; default: "
                             f"{' '.join(SECTIONS)})")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="report-screenshot-") as tmp:
        browser = open_browser(Path(tmp) / "profile")
        try:
            browser.get(args.report.resolve().as_uri())
            whole = Path(tmp) / "page.png"
            full_page_screenshot(browser, whole)
            crop(whole, browser, args.section or SECTIONS, args.out)
        finally:
            browser.quit()
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
