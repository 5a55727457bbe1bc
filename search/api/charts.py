"""Geometry of the small SVG charts on the admin pages (no JavaScript, nothing fetched).

The template draws what these return; every label stays text, so it is escaped there.
"""

from __future__ import annotations

from typing import Any


def bar_chart(rows: list[dict[str, Any]], label: str, value: str, width: int = 640, bar_height: int = 22) -> dict[str, Any]:
    """Horizontal bars, longest first as given; label column on the left."""
    top = max((float(r[value]) for r in rows), default=0.0) or 1.0
    label_width = 200
    span = width - label_width - 60
    bars = [
        {"y": i * (bar_height + 6), "label": str(r[label]), "value": r[value],
         "width": max(1.0, span * float(r[value]) / top)}
        for i, r in enumerate(rows)
    ]
    return {"width": width, "height": max(1, len(bars)) * (bar_height + 6), "bar_height": bar_height,
            "label_width": label_width, "bars": bars}


def line_chart(rows: list[dict[str, Any]], x: str, series: list[str], width: int = 640, height: int = 200) -> dict[str, Any]:
    """One polyline per series over evenly spaced x labels (days)."""
    pad = 36
    top = max((float(r[s]) for r in rows for s in series), default=0.0) or 1.0
    n = len(rows)
    step = (width - 2 * pad) / max(1, n - 1)

    def point(i: int, v: float) -> tuple[float, float]:
        return (pad + i * step, height - pad - (height - 2 * pad) * v / top)

    lines = []
    for name in series:
        points = [point(i, float(r[name])) for i, r in enumerate(rows)]
        lines.append({"name": name, "points": " ".join(f"{px:.1f},{py:.1f}" for px, py in points),
                      "dots": [{"x": px, "y": py, "value": r[name], "label": r[x]} for (px, py), r in zip(points, rows, strict=True)]})
    ticks = [{"x": pad + i * step, "label": r[x]} for i, r in enumerate(rows)]
    if len(ticks) > 10:  # keep the axis readable
        every = len(ticks) // 10 + 1
        ticks = ticks[::every]
    return {"width": width, "height": height, "pad": pad, "top": top, "lines": lines, "ticks": ticks}
