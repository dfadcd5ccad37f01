"""Small, dependency-free SVG charts for the HTML report.

The charts are drawn here, in Python, as static SVG: they render without JavaScript (each point and
heatmap cell carries a ``<title>``, the browser's native hover text). The page's small inline script
(:mod:`ncollapse.report.page`) adds the interactive layer: a tooltip that also works on touch, and
legend buttons that show / hide a series in every panel of a figure. Elements of one series carry
``data-key``. Sizes are in viewBox units; the SVG scales to its container's width.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from html import escape

import numpy as np

__all__ = [
    "Line",
    "Panel",
    "line_chart",
    "heatmap",
    "swatch",
    "nice_ticks",
    "log_ticks",
    "fmt",
    "tick_label",
]

W, H = 400, 280
ML, MR, MT, MB = 56, 12, 10, 42
MARKERS = ("circle", "square", "triangle", "diamond", "down", "cross")


@dataclass
class Line:
    """One series: ``y[i]`` at ``x[i]`` (None / NaN = gap). ``tips[i]`` is the hover text."""

    key: str
    label: str
    x: list[float]
    y: list[float | None]
    color: str
    dash: str = ""
    marker: str | None = "circle"
    width: float = 2.0
    tips: list[str] | None = None


@dataclass
class Panel:
    title: str
    xlabel: str
    ylabel: str
    lines: list[Line] = field(default_factory=list)
    xlog: bool = False
    ylog: bool = False
    note: str | None = None


def fmt(v: float | None, digits: int = 3) -> str:
    """Compact number for labels and tooltips (``digits`` significant digits)."""
    if v is None or not math.isfinite(v):
        return "–"
    a = abs(v)
    if a == 0:
        return "0"
    if a >= 1e5 or a < 1e-3:
        return f"{v:.{max(digits - 1, 1)}e}"
    if a >= 10 ** (digits - 1) or v == round(v):
        return str(int(round(v)))
    decimals = max(digits - 1 - math.floor(math.log10(a)), 0)
    return f"{v:.{decimals}f}"


def tick_label(t: float, step: float | None) -> str:
    """A tick value with as many decimals as the tick step needs (log ticks: ``step`` None)."""
    if step is None:
        return f"{t:g}"
    if abs(t) < step * 1e-6:
        return "0"
    dec = max(0, -math.floor(math.log10(step) + 1e-9))
    if round(step * 10**dec, 6) % 1 > 1e-6:  # steps like 0.25
        dec += 1
    return f"{t:.{dec}f}"


def nice_ticks(lo: float, hi: float, n: int = 5, integer: bool = False) -> list[float]:
    """Round tick values covering [lo, hi] (about ``n`` of them; whole numbers if ``integer``)."""
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return []
    if hi <= lo:
        hi = lo + (abs(lo) or 1.0) * 0.1
    raw = (hi - lo) / max(n - 1, 1)
    if integer:
        raw = max(raw, 1.0)
    mag = 10 ** math.floor(math.log10(raw))
    mults = (1, 2, 5, 10) if integer else (1, 2, 2.5, 5, 10)
    step = next(m * mag for m in mults if m * mag >= raw - 1e-12)
    start = math.floor(lo / step + 1e-9) * step
    ticks = [round(start, 12)]
    while ticks[-1] < hi - step * 1e-9:
        ticks.append(round(start + len(ticks) * step, 12))
    return ticks


def log_ticks(lo: float, hi: float) -> list[float]:
    """Decades (and 2, 5 between them when the range is short) within [lo, hi]."""
    a, b = math.floor(math.log10(lo)), math.ceil(math.log10(hi))
    mults = (1, 2, 5) if b - a <= 2 else (1,)
    out = [m * 10.0**e for e in range(a, b + 1) for m in mults]
    inside = [t for t in out if lo * (1 - 1e-9) <= t <= hi * (1 + 1e-9)]
    return inside if len(inside) >= 2 else [10.0**a, 10.0**b]


def _marker(kind: str | None, x: float, y: float, color: str, r: float = 3.6) -> str:
    if kind is None:
        return f'<circle cx="{x:.1f}" cy="{y:.1f}" r="{r:.1f}" fill="{color}" fill-opacity="0"'
    if kind == "circle":
        return f'<circle cx="{x:.1f}" cy="{y:.1f}" r="{r:.1f}" fill="{color}"'
    pts = {
        "square": [(-1, -1), (1, -1), (1, 1), (-1, 1)],
        "triangle": [(0, -1.25), (1.15, 0.85), (-1.15, 0.85)],
        "diamond": [(0, -1.35), (1.35, 0), (0, 1.35), (-1.35, 0)],
        "down": [(0, 1.25), (1.15, -0.85), (-1.15, -0.85)],
        "cross": [(-1, -0.35), (-0.35, -0.35), (-0.35, -1), (0.35, -1), (0.35, -0.35), (1, -0.35),
                  (1, 0.35), (0.35, 0.35), (0.35, 1), (-0.35, 1), (-0.35, 0.35), (-1, 0.35)],
    }[kind]  # fmt: skip
    s = r * 0.9
    d = " ".join(f"{x + px * s:.1f},{y + py * s:.1f}" for px, py in pts)
    return f'<polygon points="{d}" fill="{color}"'


class _Scale:
    def __init__(self, lo: float, hi: float, a: float, b: float, log: bool):
        self.log, self.a, self.b = log, a, b
        self.lo, self.hi = (math.log10(lo), math.log10(hi)) if log else (lo, hi)
        if self.hi <= self.lo:
            pad = abs(self.lo) * 0.05 or 0.5
            self.lo, self.hi = self.lo - pad, self.hi + pad

    def __call__(self, v: float) -> float:
        t = math.log10(v) if self.log else v
        return self.a + (t - self.lo) / (self.hi - self.lo) * (self.b - self.a)


def _finite(vals, log: bool) -> list[float]:
    out = []
    for v in vals:
        if v is None:
            continue
        v = float(v)
        if math.isfinite(v) and (v > 0 or not log):
            out.append(v)
    return out


def line_chart(p: Panel, chart_id: str) -> str:
    """A panel as an ``<svg class="chart">`` (axes, grid, one ``<g data-key>`` per series)."""
    xs = _finite([x for ln in p.lines for x in ln.x], p.xlog)
    ys = _finite([y for ln in p.lines for y in ln.y], p.ylog)
    parts = [
        f'<svg class="chart" id="{chart_id}" viewBox="0 0 {W} {H}" role="img" '
        f'aria-label="{escape(p.title)}" preserveAspectRatio="xMidYMid meet">'
    ]
    if not xs or not ys:
        parts.append(f'<text x="{W / 2}" y="{H / 2}" text-anchor="middle" class="empty">'
                     "no data recorded</text></svg>")  # fmt: skip
        return "".join(parts)
    ylo, yhi = min(ys), max(ys)
    if p.ylog:
        ylo, yhi = ylo / 1.3, yhi * 1.3
        yt = log_ticks(ylo, yhi)
        ystep = None
    else:
        # ticks cover the data; the axis adds a margin (never below 0 for non-negative data)
        pad = (yhi - ylo) * 0.06 or (abs(yhi) * 0.1 or 0.5)
        lo = 0.0 if ylo >= 0 > ylo - pad else ylo - pad
        yt = nice_ticks(ylo, yhi) if yhi > ylo else nice_ticks(ylo - pad, yhi + pad)
        ylo, yhi = min(yt[0], lo), max(yt[-1], yhi + pad)
        ystep = yt[1] - yt[0] if len(yt) > 1 else None
    xlo, xhi = min(xs), max(xs)
    if p.xlog:
        xlo, xhi = xlo / 1.25, xhi * 1.25
        xt = log_ticks(xlo, xhi)
        xstep = None
    else:
        if xhi == xlo:
            xlo, xhi = xlo - 1, xhi + 1
        whole = all(float(x).is_integer() for x in xs)
        xt = [t for t in nice_ticks(xlo, xhi, 6, whole) if xlo - 1e-9 <= t <= xhi + 1e-9]
        xstep = (xt[1] - xt[0]) if len(xt) > 1 else 1.0
    sx = _Scale(xlo, xhi, ML, W - MR, p.xlog)
    sy = _Scale(ylo, yhi, H - MB, MT, p.ylog)
    # grid and axes
    parts.append('<g class="grid">')
    for t in yt:
        y = sy(t)
        if MT - 0.5 <= y <= H - MB + 0.5:
            parts.append(f'<line x1="{ML}" x2="{W - MR}" y1="{y:.1f}" y2="{y:.1f}"/>')
    for t in xt:
        x = sx(t)
        parts.append(f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{MT}" y2="{H - MB}"/>')
    parts.append("</g>")
    parts.append(f'<rect class="frame" x="{ML}" y="{MT}" width="{W - ML - MR}" '
                 f'height="{H - MT - MB}"/>')  # fmt: skip
    parts.append('<g class="ticks">')
    for t in yt:
        y = sy(t)
        if MT - 0.5 <= y <= H - MB + 0.5:
            parts.append(
                f'<text x="{ML - 5}" y="{y + 4:.1f}" text-anchor="end">{tick_label(t, ystep)}</text>'
            )
    for t in xt:
        parts.append(f'<text x="{sx(t):.1f}" y="{H - MB + 16}" text-anchor="middle">'
                     f"{tick_label(t, xstep)}</text>")  # fmt: skip
    parts.append("</g>")
    parts.append(f'<text class="axis" x="{(ML + W - MR) / 2}" y="{H - 6}" text-anchor="middle">'
                 f"{escape(p.xlabel)}</text>")  # fmt: skip
    parts.append(f'<text class="axis" transform="translate(13 {(MT + H - MB) / 2}) rotate(-90)" '
                 f'text-anchor="middle">{escape(p.ylabel)}</text>')  # fmt: skip
    # series (clipped to the frame)
    parts.append(f'<clipPath id="{chart_id}-clip"><rect x="{ML - 6}" y="{MT - 6}" '
                 f'width="{W - ML - MR + 12}" height="{H - MT - MB + 12}"/></clipPath>')  # fmt: skip
    parts.append(f'<g clip-path="url(#{chart_id}-clip)">')
    for ln in p.lines:
        parts.append(_series(ln, sx, sy, p.xlog, p.ylog))
    parts.append("</g></svg>")
    return "".join(parts)


def _series(ln: Line, sx, sy, xlog: bool, ylog: bool) -> str:
    pts: list[tuple[float, float, int] | None] = []
    for i, (x, y) in enumerate(zip(ln.x, ln.y)):
        ok = (x is not None and y is not None and math.isfinite(float(x))
              and math.isfinite(float(y)) and (float(x) > 0 or not xlog)
              and (float(y) > 0 or not ylog))  # fmt: skip
        pts.append((sx(float(x)), sy(float(y)), i) if ok else None)
    segs: list[list[tuple[float, float, int]]] = [[]]
    for pt in pts:
        if pt is None:
            if segs[-1]:
                segs.append([])
        else:
            segs[-1].append(pt)
    out = [f'<g class="series" data-key="{escape(ln.key)}">']
    dash = f' stroke-dasharray="{ln.dash}"' if ln.dash else ""
    for seg in segs:
        if len(seg) >= 2:
            d = "M" + " L".join(f"{x:.1f},{y:.1f}" for x, y, _ in seg)
            out.append(f'<path d="{d}" fill="none" stroke="{ln.color}" '
                       f'stroke-width="{ln.width}"{dash}/>')  # fmt: skip
    if ln.tips is not None:
        for x, y, i in (pt for seg in segs for pt in seg):
            tip = escape(ln.tips[i]) if i < len(ln.tips) else ""
            out.append(
                _marker(ln.marker, x, y, ln.color)
                + f' class="pt"><title>{tip}</title>'
                + ("</circle>" if ln.marker in (None, "circle") else "</polygon>")
            )
    out.append("</g>")
    return "".join(out)


def swatch(color: str, dash: str = "", marker: str | None = "circle") -> str:
    """A small legend sample (line + marker)."""
    d = f' stroke-dasharray="{dash}"' if dash else ""
    m = ""
    if marker is not None:
        m = _marker(marker, 15, 7, color, r=3.8) + "/>"
    return (f'<svg class="swatch" viewBox="0 0 30 14" aria-hidden="true"><line x1="1" x2="29" '
            f'y1="7" y2="7" stroke="{color}" stroke-width="2"{d}/>{m}</svg>')  # fmt: skip


def _rgb(v: float) -> str:
    """Diverging blue-white-red colour for v in [-1, 1] (ColorBrewer RdBu end points)."""
    v = max(-1.0, min(1.0, float(v))) if math.isfinite(v) else 0.0
    lo, mid, hi = np.array([33, 102, 172]), np.array([247, 247, 247]), np.array([178, 24, 43])
    c = mid + (hi - mid) * v if v >= 0 else mid + (lo - mid) * (-v)
    return "#" + "".join(f"{int(round(t)):02x}" for t in c)


def heatmap(G, names: list[str], title: str, key: str, chart_id: str) -> str:
    """A K x K matrix (values expected in [-1, 1]) as an SVG grid with a hover text per cell."""
    G = np.asarray(G, dtype=float)
    K = G.shape[0]
    size, lab = 200, 16
    cell = size / K
    parts = [f'<svg class="heat" id="{chart_id}" data-key="{escape(key)}" '
             f'viewBox="0 0 {size + lab} {size + lab}" role="img" aria-label="{escape(title)}">']  # fmt: skip
    step = max(1, int(math.ceil(K / 10)))
    for i in range(0, K, step):
        c = lab + (i + 0.5) * cell
        parts.append(f'<text class="hl" x="{c:.1f}" y="11" text-anchor="middle">{i}</text>')
        parts.append(
            f'<text class="hl" x="{lab - 3}" y="{c + 3.5:.1f}" text-anchor="end">{i}</text>'
        )
    for i in range(K):
        for j in range(K):
            tip = f"{title}\n{names[i]} × {names[j]}: {fmt(G[i, j])}"
            parts.append(f'<rect x="{lab + j * cell:.2f}" y="{lab + i * cell:.2f}" '
                         f'width="{cell + 0.05:.2f}" height="{cell + 0.05:.2f}" '
                         f'fill="{_rgb(G[i, j])}"><title>{escape(tip)}</title></rect>')  # fmt: skip
    parts.append("</svg>")
    return "".join(parts)


def colorbar() -> str:
    """The heatmaps' colour scale, -1 .. 1."""
    stops = "".join(f'<stop offset="{(v + 1) / 2:.2f}" stop-color="{_rgb(v)}"/>'
                    for v in np.linspace(-1, 1, 9))  # fmt: skip
    return (f'<svg class="cbar" viewBox="0 0 220 30" role="img" aria-label="colour scale -1 to 1">'
            f'<linearGradient id="cbar-g">{stops}</linearGradient>'
            f'<rect x="10" y="2" width="200" height="10" fill="url(#cbar-g)"/>'
            f'<text x="10" y="26" text-anchor="middle">−1</text>'
            f'<text x="110" y="26" text-anchor="middle">0</text>'
            f'<text x="210" y="26" text-anchor="middle">1</text></svg>')  # fmt: skip
