"""Screenshot the top of a report page for the docs (headless Chromium, see ncollapse.report.browser).

    python docs/scripts/report_screenshot.py outputs/demo/report.html docs/img/report_page.png

Options: --width (CSS px, default 1280), --height (CSS px of the page to keep, default 1900),
--scale (default 0.6: a small PNG that still reads).
"""

from __future__ import annotations

import argparse

from ncollapse.report.browser import Browser


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("page")
    ap.add_argument("out")
    ap.add_argument("--width", type=int, default=1280)
    ap.add_argument("--height", type=int, default=1900)
    ap.add_argument("--scale", type=float, default=0.6)
    a = ap.parse_args()
    with Browser() as b:
        r = b.check(a.page, a.width)
        if r.overflows or r.errors or r.drawn != r.charts:
            raise SystemExit(f"the page does not pass the browser check: {r}")
        path = b.screenshot_clip(a.page, a.out, a.width, a.height, a.scale)
    print(path)


if __name__ == "__main__":
    main()
