"""Small SVG charts drawn on the server: no chart library, no network, no script.

Every chart is one ``<svg class="chart" data-chart="KIND">`` string sized by its viewBox (it
scales to its container), with a ``<title>`` for screen readers and hover text on its marks.
The status page and the HTML report share them.

>>> svg = line_chart([1, 2, 3], [0.01, 0.02, 0.30], flagged=[False, False, True],
...                  kind="drift-over-time", title="income ks")
>>> svg.startswith('<svg class="chart"') and 'data-chart="drift-over-time"' in svg
True
>>> svg.count('class="mark bad"')
1
"""

from __future__ import annotations

import html
import math
from collections.abc import Sequence

WINDOW = "#2563eb"      # the current window
REFERENCE = "#9ca3af"   # the reference
BAD = "#dc2626"
OK = "#16a34a"
INK = "#374151"


def esc(s: object) -> str:
    return html.escape(str(s), quote=True)


def fmt(x: float | None, digits: int = 3) -> str:
    """A figure for people: short, and honest about None / non-finite values.

    >>> fmt(0.000123), fmt(12345.6), fmt(None), fmt(0.25)
    ('1.23e-04', '1.23e+04', '–', '0.25')
    """
    if x is None or not math.isfinite(x):
        return "–"
    if x != 0 and (abs(x) < 1e-3 or abs(x) >= 1e4):
        return f"{x:.{digits - 1}e}"
    return f"{x:.{digits}g}"


def _svg(kind: str, w: int, h: int, title: str, body: list[str]) -> str:
    return (f'<svg class="chart" data-chart="{esc(kind)}" viewBox="0 0 {w} {h}" '
            f'style="max-width:{int(w * 1.5)}px" '
            f'role="img" aria-label="{esc(title)}" xmlns="http://www.w3.org/2000/svg">'
            f"<title>{esc(title)}</title>" + "".join(body) + "</svg>")


def _text(x: float, y: float, s: str, anchor: str = "start", size: int = 10,
          cls: str = "") -> str:
    c = f' class="{cls}"' if cls else ""
    return (f'<text x="{x:.1f}" y="{y:.1f}" font-size="{size}" text-anchor="{anchor}" '
            f'fill="{INK}"{c}>{esc(s)}</text>')


def line_chart(xs: Sequence[float], ys: Sequence[float | None], *, flagged: Sequence[bool],
               kind: str, title: str, labels: Sequence[str] | None = None,
               floor: float | None = None, w: int = 260, h: int = 90) -> str:
    """One series over windows (``xs`` in order), flagged points in red, optional floor line.
    ``None`` values leave a gap."""
    pad_l, pad_r, pad_t, pad_b = 42, 6, 6, 14
    vals = [y for y in ys if y is not None and math.isfinite(y)]
    top = max([*vals, floor or 0.0, 1e-9]) * 1.1
    x0, x1 = (min(xs), max(xs)) if xs else (0, 1)
    span = (x1 - x0) or 1

    def px(x: float) -> float:
        return pad_l + (x - x0) / span * (w - pad_l - pad_r)

    def py(y: float) -> float:
        return h - pad_b - y / top * (h - pad_t - pad_b)

    body = [f'<line x1="{pad_l}" y1="{h - pad_b}" x2="{w - pad_r}" y2="{h - pad_b}" '
            f'stroke="#d1d5db"/>', _text(pad_l - 3, pad_t + 8, fmt(top), "end", 9),
            _text(pad_l - 3, h - pad_b, "0", "end", 9)]
    if floor is not None and math.isfinite(floor):
        body.append(f'<line x1="{pad_l}" y1="{py(floor):.1f}" x2="{w - pad_r}" '
                    f'y2="{py(floor):.1f}" stroke="{BAD}" stroke-dasharray="3 3" '
                    f'stroke-width="0.8"/>')
    path, pen = [], "M"
    for x, y in zip(xs, ys):
        if y is None or not math.isfinite(y):
            pen = "M"
            continue
        path.append(f"{pen}{px(x):.1f},{py(y):.1f}")
        pen = "L"
    if path:
        body.append(f'<path d="{" ".join(path)}" fill="none" stroke="{WINDOW}" '
                    f'stroke-width="1.5"/>')
    for i, (x, y, bad) in enumerate(zip(xs, ys, flagged)):
        if y is None or not math.isfinite(y):
            continue
        tip = f"{labels[i] if labels else x}: {fmt(y)}" + (" (flagged)" if bad else "")
        body.append(f'<circle class="mark {"bad" if bad else "ok"}" cx="{px(x):.1f}" '
                    f'cy="{py(y):.1f}" r="{3 if bad else 2}" fill="{BAD if bad else WINDOW}">'
                    f"<title>{esc(tip)}</title></circle>")
    if labels:
        body.append(_text(pad_l, h - 2, labels[0], "start", 9))
        body.append(_text(w - pad_r, h - 2, labels[-1], "end", 9))
    return _svg(kind, w, h, title, body)


def histogram(window: Sequence[int], reference: Sequence[int], *, title: str,
              ticks: Sequence[str], w: int = 560, h: int = 220) -> str:
    """Window vs reference as proportions per bin, side by side; ``ticks`` label the bins
    (numeric: the bins' lower edges, categorical: the categories)."""
    pad_l, pad_r, pad_t, pad_b = 40, 8, 18, 34
    nw, nr = max(sum(window), 1), max(sum(reference), 1)
    pw = [c / nw for c in window]
    pr = [c / nr for c in reference]
    top = max([*pw, *pr, 1e-9]) * 1.1
    n = max(len(pw), 1)
    slot = (w - pad_l - pad_r) / n
    bw = slot * 0.4
    body = [_text(pad_l, 11, "■ reference", size=10), _text(pad_l + 80, 11, "■ this window",
                                                            size=10),
            f'<rect x="{pad_l - 1}" y="3" width="9" height="9" fill="{REFERENCE}"/>',
            f'<rect x="{pad_l + 79}" y="3" width="9" height="9" fill="{WINDOW}"/>',
            _text(pad_l - 3, pad_t + 8, f"{top:.0%}", "end", 9),
            _text(pad_l - 3, h - pad_b, "0", "end", 9)]

    def py(y: float) -> float:
        return h - pad_b - y / top * (h - pad_t - pad_b)

    every = max(1, math.ceil(n / 10))
    for i in range(n):
        x = pad_l + i * slot
        for dx, p, c, col, who in ((slot * 0.1, pr[i], reference[i], REFERENCE, "reference"),
                                   (slot * 0.5, pw[i], window[i], WINDOW, "window")):
            body.append(f'<rect class="bar {who}" x="{x + dx:.1f}" y="{py(p):.1f}" '
                        f'width="{bw:.1f}" height="{h - pad_b - py(p):.1f}" fill="{col}">'
                        f"<title>{esc(ticks[i] if i < len(ticks) else i)}: {who} {p:.1%} "
                        f"({c:,})</title></rect>")
        if i % every == 0 and i < len(ticks):
            body.append(_text(x + slot / 2, h - pad_b + 12, ticks[i], "middle", 9))
    body.append(f'<line x1="{pad_l}" y1="{h - pad_b}" x2="{w - pad_r}" y2="{h - pad_b}" '
                f'stroke="#d1d5db"/>')
    return _svg("histogram", w, h, title, body)


def intervals(rows: Sequence[tuple[str, float | None, float | None, float | None, bool]], *,
              kind: str, title: str, line: float | None = None, lo: float = 0.0,
              hi: float = 1.0, w: int = 560) -> str:
    """One row per (label, value, low, high, bad): a dot with its interval on a shared
    axis from ``lo`` to ``hi``; ``line`` marks a threshold (e.g. the four-fifths rule)."""
    row_h, pad_l, pad_r, pad_t = 20, 190, 58, 16
    h = pad_t + row_h * max(len(rows), 1) + 16

    def px(v: float) -> float:
        v = min(max(v, lo), hi)
        return pad_l + (v - lo) / ((hi - lo) or 1) * (w - pad_l - pad_r)

    body = [_text(px(lo), h - 3, fmt(lo), "middle", 9), _text(px(hi), h - 3, fmt(hi),
                                                               "middle", 9)]
    if line is not None:
        body.append(f'<line x1="{px(line):.1f}" y1="{pad_t - 6}" x2="{px(line):.1f}" '
                    f'y2="{h - 14}" stroke="{BAD}" stroke-dasharray="3 3"/>')
        body.append(_text(px(line), pad_t - 8, fmt(line), "middle", 9))
    for i, (label, v, a, b, bad) in enumerate(rows):
        y = pad_t + i * row_h + row_h / 2
        col = BAD if bad else WINDOW
        body.append(_text(pad_l - 6, y + 3, label, "end", 10))
        if a is not None and b is not None:
            body.append(f'<line x1="{px(a):.1f}" y1="{y:.1f}" x2="{px(b):.1f}" y2="{y:.1f}" '
                        f'stroke="{col}" stroke-width="2"/>')
        if v is not None:
            tip = f"{label}: {fmt(v)}" + (f" [{fmt(a)}, {fmt(b)}]" if a is not None else "")
            body.append(f'<circle class="mark {"bad" if bad else "ok"}" cx="{px(v):.1f}" '
                        f'cy="{y:.1f}" r="4" fill="{col}"><title>{esc(tip)}</title></circle>')
            body.append(_text(w - pad_r + 4, y + 3, fmt(v), "start", 9))
    return _svg(kind, w, h, title, body)


def reliability(bins: Sequence[tuple[float, float, int]], *, title: str, w: int = 260,
                h: int = 260) -> str:
    """Reliability diagram: (mean predicted probability, observed positive rate, count) per
    bin against the diagonal of perfect calibration; dot area follows the count."""
    pad = 30
    side = min(w, h) - 2 * pad

    def p(x: float, y: float) -> tuple[float, float]:
        return pad + x * side, pad + (1 - y) * side

    body = [f'<rect x="{pad}" y="{pad}" width="{side}" height="{side}" fill="none" '
            f'stroke="#d1d5db"/>',
            f'<line x1="{pad}" y1="{pad + side}" x2="{pad + side}" y2="{pad}" '
            f'stroke="{REFERENCE}" stroke-dasharray="4 3"/>',
            _text(pad + side / 2, h - 6, "mean predicted probability", "middle", 9),
            f'<text x="0" y="0" font-size="9" text-anchor="middle" fill="{INK}" '
            f'transform="translate(12 {pad + side / 2:.1f}) rotate(-90)">observed rate</text>']
    total = max(sum(n for _, _, n in bins), 1)
    pts = [(p(x, y), n, x, y) for x, y, n in bins if n > 0]
    if pts:
        body.append('<path d="' + " ".join(f"{'M' if i == 0 else 'L'}{a:.1f},{b:.1f}"
                                            for i, ((a, b), *_) in enumerate(pts))
                    + f'" fill="none" stroke="{WINDOW}"/>')
    for (a, b), n, x, y in pts:
        r = 2 + 6 * math.sqrt(n / total)
        body.append(f'<circle class="mark" cx="{a:.1f}" cy="{b:.1f}" r="{r:.1f}" '
                    f'fill="{WINDOW}" fill-opacity="0.7"><title>predicted {x:.2f}, observed '
                    f"{y:.2f} ({n:,})</title></circle>")
    return _svg("reliability", w, h, title, body)
