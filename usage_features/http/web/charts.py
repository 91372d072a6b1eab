"""Charts as SVG drawn on the server: the geometry here, the markup in ``templates/_charts.html``.

Each data point is one mark (a ``<rect>`` or ``<circle>`` of class ``mark``, with a ``<title>``
saying its values); lines joining points are ``<path>`` elements of another class, so the
marks in the page are exactly the data's points. Colours come from the stylesheet (classes
``s0`` to ``s9``): no inline style, nothing for the Content-Security-Policy to allow. Every chart
also comes with its data as a table (for keyboards and screen readers, and to read exact
values).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

WIDTH, HEIGHT = 720, 260
LEFT, RIGHT, TOP, BOTTOM = 52, 28, 12, 40
SERIES_CLASSES = 10


@dataclass(frozen=True)
class Mark:
    kind: str  # "rect" or "circle"
    x: float
    y: float
    width: float = 0.0
    height: float = 0.0
    series: int = 0
    title: str = ""


@dataclass(frozen=True)
class Line:
    d: str
    series: int = 0
    kind: str = "line"  # "line" or "reference" (a dashed guide: the diagonal, a baseline)


@dataclass(frozen=True)
class Tick:
    at: float
    label: str


@dataclass
class Chart:
    """One SVG chart: marks, lines, axes and a legend, in a ``WIDTH`` x ``HEIGHT`` box."""

    name: str
    title: str
    x_label: str = ""
    y_label: str = ""
    height: int = HEIGHT
    marks: list[Mark] = field(default_factory=list)
    lines: list[Line] = field(default_factory=list)
    x_ticks: list[Tick] = field(default_factory=list)
    y_ticks: list[Tick] = field(default_factory=list)
    legend: list[tuple[int, str]] = field(default_factory=list)
    width: int = WIDTH
    left: float = LEFT  # room for the y axis' labels

    @property
    def plot(self) -> tuple[float, float, float, float]:
        """The plotting area: left, top, right, bottom."""
        return self.left, TOP, self.width - RIGHT, self.height - BOTTOM

    @property
    def points(self) -> int:
        return len(self.marks)


def series_class(i: int) -> int:
    return i % SERIES_CLASSES


def nice_max(value: float) -> float:
    """The smallest of 1, 2, 2.5, 5 times a power of ten at or above ``value`` (1 for 0)."""
    if value <= 0 or not math.isfinite(value):
        return 1.0
    power = 10 ** math.floor(math.log10(value))
    return next(m * power for m in (1, 2, 2.5, 5, 10) if m * power >= value)


def percent_label(value: float) -> str:
    """A share as a percentage, with a decimal only where it needs one."""
    return f"{value:.0%}" if abs(value * 100 - round(value * 100)) < 1e-9 else f"{value:.1%}"


def y_ticks(top: float, chart: Chart, percent: bool = False, count: int = 4) -> list[Tick]:
    _, y0, _, y1 = chart.plot
    ticks = []
    for i in range(count + 1):
        value = top * i / count
        if percent:
            label = percent_label(value)
        else:
            label = f"{value:g}" if value < 1e4 else f"{value:,.0f}"
        ticks.append(Tick(y1 - (y1 - y0) * i / count, label))
    return ticks


def stacked_bars(name: str, title: str, categories: Sequence[str],
                 series: Sequence[str], values: Sequence[Sequence[float]],
                 y_label: str = "", unit: str = "", label_every: int = 1) -> Chart:
    """One bar per category, stacked by series; a mark per (category, series) with a value."""
    chart = Chart(name, title, y_label=y_label)
    x0, y0, x1, y1 = chart.plot
    top = nice_max(max((sum(row) for row in values), default=0))
    slot = (x1 - x0) / max(len(categories), 1)
    bar = slot * 0.72
    for i, (category, row) in enumerate(zip(categories, values)):
        base = y1
        for j, value in enumerate(row):
            if not value:
                continue
            h = (y1 - y0) * value / top
            base -= h
            chart.marks.append(Mark("rect", x0 + i * slot + (slot - bar) / 2, base, bar, h,
                                    series_class(j), f"{category}: {value:g} {series[j]}{unit}"))
        if i % label_every == 0:
            chart.x_ticks.append(Tick(x0 + (i + 0.5) * slot, category))
    chart.y_ticks = y_ticks(top, chart)
    chart.legend = [(series_class(j), s) for j, s in enumerate(series)]
    return chart


def horizontal_bars(name: str, title: str, items: Sequence[tuple[str, float, int]],
                    x_label: str = "", fmt: str = "{:.3f}", limit: float | None = None
                    ) -> Chart:
    """One bar per ``(label, value, series)``, top to bottom; a dashed guide at ``limit``."""
    row = 18
    chart = Chart(name, title, x_label=x_label, height=TOP + BOTTOM + row * max(len(items), 1),
                  left=WIDTH * 0.36)
    x0, y0, x1, _ = chart.plot
    top = nice_max(max([v for _, v, _ in items] + [limit or 0], default=0))
    for i, (label, value, series) in enumerate(items):
        w = (x1 - x0) * max(value, 0) / top
        chart.marks.append(Mark("rect", x0, y0 + i * row + 3, w, row - 6, series,
                                f"{label}: {fmt.format(value)}"))
        chart.y_ticks.append(Tick(y0 + i * row + row / 2, label))
    if limit is not None:
        x = x0 + (x1 - x0) * limit / top
        chart.lines.append(Line(f"M{x:.1f},{y0:.1f}V{chart.plot[3]:.1f}", 0, "reference"))
    chart.x_ticks = [Tick(x0 + (x1 - x0) * i / 4, f"{top * i / 4:g}") for i in range(5)]
    return chart


def line_chart(name: str, title: str, series: Sequence[tuple[str, Sequence[tuple[float, float,
               str]]]], x_range: tuple[float, float], y_top: float | None = None,
               x_ticks: Sequence[tuple[float, str]] = (), x_label: str = "", y_label: str = "",
               percent: bool = True, diagonal: bool = False,
               guides: Sequence[float] = (), steps: bool = False) -> Chart:
    """Lines through points ``(x, y, title)``, a circle mark per point. ``diagonal``: the
    dashed y = x guide (calibration); ``guides``: dashed horizontal lines at those values;
    ``steps``: the line steps (a survival curve) instead of joining points straight."""
    chart = Chart(name, title, x_label=x_label, y_label=y_label)
    x0, y0, x1, y1 = chart.plot
    values = [y for _, points in series for _, y, _ in points]
    top = y_top if y_top is not None else nice_max(max(values, default=0))
    lo, hi = x_range
    span = (hi - lo) or 1.0

    def px(x: float) -> float:
        return x0 + (x1 - x0) * (x - lo) / span

    def py(y: float) -> float:
        return y1 - (y1 - y0) * min(max(y, 0.0), top) / top

    if diagonal:
        chart.lines.append(Line(f"M{px(lo):.1f},{py(lo):.1f}L{px(hi):.1f},{py(min(hi, top)):.1f}",
                                0, "reference"))
    for guide in guides:
        chart.lines.append(Line(f"M{x0:.1f},{py(guide):.1f}H{x1:.1f}", 0, "reference"))
    for i, (label, points) in enumerate(series):
        cls = series_class(i)
        if len(points) > 1:
            parts = []
            for k, (x, y, _) in enumerate(points):
                if k == 0:
                    parts.append(f"M{px(x):.1f},{py(y):.1f}")
                elif steps:
                    parts.append(f"H{px(x):.1f}V{py(y):.1f}")
                else:
                    parts.append(f"L{px(x):.1f},{py(y):.1f}")
            chart.lines.append(Line("".join(parts), cls))
        for x, y, text in points:
            chart.marks.append(Mark("circle", px(x), py(y), series=cls, title=text))
        if label:
            chart.legend.append((cls, label))
    chart.y_ticks = y_ticks(top, chart, percent=percent)
    chart.x_ticks = [Tick(px(x), text) for x, text in x_ticks]
    return chart


__all__ = ["Chart", "Line", "Mark", "Tick", "horizontal_bars", "line_chart", "nice_max",
           "stacked_bars"]
