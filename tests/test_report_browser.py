"""The demo's report in a real browser: headless Chromium (Debian's package) over CDP.

Renders the report of a tiny demo run (sklearn digits, 1 epoch per method) at 1,280 px and at a
390 px phone width: no horizontal overflow of the page, no console errors or exceptions, no request
leaving the machine, every chart drawn. Screenshots are kept under ``tmp/artifacts/report-browser``
at the repository root (``$NCOLLAPSE_ARTIFACTS`` overrides) and their paths printed.

Without Chromium (``make chromium`` installs it as root) or the ``websocket-client`` package the
test is skipped with the reason -- never passed silently.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from ncollapse.cli import main as cli_main
from ncollapse.report.browser import Browser, find_chromium

ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = Path(os.environ.get("NCOLLAPSE_ARTIFACTS", ROOT / "tmp" / "artifacts"))


@pytest.fixture(scope="module")
def demo_report(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo")
    rc = cli_main(["demo", "--dataset", "digits", "--epochs", "1", "--out", str(out),
                   "--configs", str(ROOT / "configs"), "--json"])  # fmt: skip
    assert rc == 0
    return out / "report.html"


def test_demo_report_in_chromium(demo_report, capsys):
    if find_chromium() is None:
        pytest.skip(
            "Chromium is not installed, so the report was NOT checked in a browser; as root run "
            "`make chromium` (apt-get update && apt-get install -y chromium)"
        )
    pytest.importorskip(
        "websocket", reason="websocket-client is not installed (pip install -e '.[dev]')"
    )
    html = demo_report.read_text()
    n_charts = html.count('class="chart"') + html.count('class="heat"')
    assert n_charts >= 20  # 5 per-class + 2 minority + 7 curves + 8 heatmaps
    dest = ARTIFACTS / "report-browser"
    shots = []
    with Browser() as b:
        for width in (1280, 390):
            shot = dest / f"demo-report-{width}px.png"
            r = b.check(demo_report, width, screenshot=shot)
            shots.append(shot)
            # a page wider than a phone also widens innerWidth there, so compare with `width`
            assert r.inner_width == width and r.scroll_width <= width, (
                f"page scrolls sideways at {width}px: scrollWidth {r.scroll_width}, "
                f"innerWidth {r.inner_width}"
            )
            assert not r.overflows
            assert r.errors == [], f"console errors at {width}px: {r.errors}"
            assert r.requests == [], f"the page fetched {r.requests}"
            assert r.ready, "the page's script did not run to the end"
            assert r.charts == n_charts and r.drawn == n_charts, f"not drawn: {r.empty}"
            assert shot.stat().st_size > 20_000
        # the legend toggles hide and show a series in every panel of its figure
        js = """(() => { const b = document.querySelector('#fig-per-class .legend button');
          const key = b.dataset.key, g = document.getElementById('fig-per-class');
          const sel = '.series[data-key="' + key + '"]';
          const before = [...g.querySelectorAll(sel)].filter(e => e.getBoundingClientRect().width > 0).length;
          b.click();
          const hidden = [...g.querySelectorAll(sel)].filter(e => e.getBoundingClientRect().width > 0).length;
          b.click();
          const after = [...g.querySelectorAll(sel)].filter(e => e.getBoundingClientRect().width > 0).length;
          return JSON.stringify({before, hidden, after, pressed: b.getAttribute('aria-pressed')});
        })()"""
        res = json.loads(
            b.call("Runtime.evaluate", expression=js, returnByValue=True)["result"]["value"]
        )
        assert res["before"] >= 4 and res["hidden"] == 0 and res["after"] == res["before"]
        # hover values: every point has its text for the tooltip
        tips = b.call("Runtime.evaluate", returnByValue=True, expression=(
            "document.querySelectorAll('svg.chart [data-tip]').length + ',' + "
            "document.querySelectorAll('svg.chart title').length"))["result"]["value"]  # fmt: skip
        n_tips, n_titles = map(int, tips.split(","))
        assert n_tips > 50 and n_titles == 0
    with capsys.disabled():
        print("\nbrowser screenshots: " + ", ".join(map(str, shots)))
