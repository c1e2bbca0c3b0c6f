"""The dashboard's charts as SVG drawn on the server (no JavaScript, nothing from a CDN): bars
(funnel, message statuses, RFM segment sizes, conversion rates), lines over months (retention and
churn, NPS), an interval (the lift against the holdout), a heatmap (cohorts).

Every chart draws the numbers it is given, from the report, and computes none: each mark carries
its figure as `data-value` (the report's number) and as a text label, and the chart's `<title>`
and `<desc>` say in words what it shows, values included, for screen readers (`role="img"`)."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from markupsafe import Markup, escape

ACCENT = "#1f5ea8"
SECOND = "#a3231c"
MUTED = "#595959"  # 7:1 on white
GRID = "#d6d6d6"
FONT = 'font-family="system-ui, sans-serif" font-size="12"'

Format = Callable[[float], str]


def count_text(value: float) -> str:
    return f"{value:g}"


def percent_text(value: float) -> str:
    return f"{value * 100:.1f} %"


def _attrs(data: dict[str, str]) -> str:
    return "".join(f' data-{key}="{escape(value)}"' for key, value in data.items())


def _number(value: float) -> str:
    """A report's number as JSON wrote it (an int stays an int)."""
    return repr(value) if not isinstance(value, float) or not value.is_integer() else f"{value:g}"


def svg(name: str, width: int, height: int, title: str, desc: str, body: str) -> Markup:
    """An accessible SVG chart: scales down to its container, never up."""
    return Markup(
        f'<svg class="chart" id="{name}" viewBox="0 0 {width} {height}" width="100%" '
        f'style="max-width: {width}px" role="img" aria-labelledby="{name}-title {name}-desc" '
        f'xmlns="http://www.w3.org/2000/svg" {FONT}>'
        f'<title id="{name}-title">{escape(title)}</title>'
        f'<desc id="{name}-desc">{escape(desc)}</desc>{body}</svg>'
    )


def ticks(low: float, high: float, most: int = 5, whole: bool = False) -> list[float]:
    """Round tick values (1, 2 or 5 times a power of ten apart; whole numbers for counts)
    covering [low, high]."""
    span = high - low if high > low else 1.0
    raw = max(span / most, 1.0) if whole else span / most
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= raw)
    first = math.floor(low / step) * step
    values = []
    value = first
    while value < high + step / 2:
        values.append(round(value, 10))
        value += step
    return values


def _text(x: float, y: float, content: str, anchor: str = "start", extra: str = "") -> str:
    return f'<text x="{x:.1f}" y="{y:.1f}" text-anchor="{anchor}"{extra}>{escape(content)}</text>'


@dataclass(frozen=True)
class Bar:
    label: str
    value: float
    data: dict[str, str] = field(default_factory=dict)


def bar_chart(
    name: str,
    title: str,
    bars: Sequence[Bar],
    axis: str,
    fmt: Format = count_text,
    top: float | None = None,
    color: str = ACCENT,
) -> Markup:
    """Horizontal bars, one per row, each labelled with its value; an x axis with round ticks."""
    label_w, plot_w, value_w, row = 150, 330, 70, 24
    width = label_w + plot_w + value_w
    height = 14 + row * len(bars) + 36
    maximum = top if top is not None else max((bar.value for bar in bars), default=0) or 1
    scale = ticks(0, maximum, whole=fmt is count_text)
    maximum = max(maximum, scale[-1])
    body = []
    for value in scale:
        x = label_w + plot_w * value / maximum
        body.append(
            f'<line x1="{x:.1f}" y1="8" x2="{x:.1f}" y2="{height - 30}" stroke="{GRID}"/>'
            + _text(x, height - 16, fmt(value), "middle", f' fill="{MUTED}"')
        )
    for index, bar in enumerate(bars):
        y = 12 + index * row
        w = plot_w * bar.value / maximum
        shown = fmt(bar.value)
        body.append(
            f'<g class="bar"{_attrs(bar.data)} data-value="{_number(bar.value)}">'
            f"<title>{escape(bar.label)}: {escape(shown)}</title>"
            + _text(label_w - 8, y + 14, _clip(bar.label, 22), "end")
            + f'<rect x="{label_w}" y="{y + 3}" width="{max(w, 1):.1f}" height="{row - 8}" '
            f'fill="{color}"/>'
            + _text(label_w + w + 6, y + 14, shown, extra=' class="value" data-figure="value"')
            + "</g>"
        )
    body.append(
        f'<line x1="{label_w}" y1="8" x2="{label_w}" y2="{height - 30}" stroke="{MUTED}"/>'
        + _text(label_w + plot_w / 2, height - 2, axis, "middle", f' fill="{MUTED}"')
    )
    desc = f"{axis}: " + "; ".join(f"{bar.label} {fmt(bar.value)}" for bar in bars)
    return svg(name, width, height, title, desc if bars else f"{title}: nothing yet", "".join(body))


@dataclass(frozen=True)
class Series:
    name: str
    values: Sequence[float | None]
    color: str


def line_chart(
    name: str,
    title: str,
    months: Sequence[str],
    series: Sequence[Series],
    low: float,
    high: float,
    fmt: Format,
    axis: str,
) -> Markup:
    """Lines over months, one per series, a labelled point per month that has a value (a month
    without one breaks the line); a legend; y gridlines at round ticks."""
    left, plot_w, plot_h, top = 56, 520, 170, 30
    width, height = left + plot_w + 24, top + plot_h + 44
    step = plot_w / max(len(months), 1)

    def x_of(index: int) -> float:
        return left + step * (index + 0.5)

    def y_of(value: float) -> float:
        return top + plot_h * (high - value) / (high - low)

    body = []
    for value in ticks(low, high):
        if low <= value <= high:
            y = y_of(value)
            body.append(
                f'<line x1="{left}" y1="{y:.1f}" x2="{left + plot_w}" y2="{y:.1f}" '
                f'stroke="{GRID}"/>' + _text(left - 6, y + 4, fmt(value), "end", f' fill="{MUTED}"')
            )
    for index, month in enumerate(months):
        body.append(_text(x_of(index), top + plot_h + 16, month, "middle"))
    body.append(_text(12, top - 14, axis, extra=f' fill="{MUTED}"'))
    described = []
    for number, line in enumerate(series):
        legend_x = left + plot_w / 2 - 50 * len(series) + 100 * number
        body.append(
            f'<rect x="{legend_x:.1f}" y="{height - 15}" width="12" height="12" '
            f'fill="{line.color}"/>' + _text(legend_x + 16, height - 4, line.name)
        )
        points = [(i, v) for i, v in enumerate(line.values) if v is not None]
        for run in _unbroken(line.values):
            path = " ".join(f"{x_of(i):.1f},{y_of(v):.1f}" for i, v in run)
            body.append(
                f'<polyline points="{path}" fill="none" stroke="{line.color}" stroke-width="2"/>'
            )
        body.append(f'<g class="series" data-series="{escape(line.name)}">')
        for i, v in points:
            shown = fmt(v)
            body.append(
                f'<g class="point" data-month="{escape(months[i])}" data-value="{_number(v)}">'
                f"<title>{escape(line.name)}, {escape(months[i])}: {escape(shown)}</title>"
                f'<circle cx="{x_of(i):.1f}" cy="{y_of(v):.1f}" r="4" fill="{line.color}"/>'
                + _text(x_of(i), y_of(v) - 8 + 18 * number, shown, "middle", ' class="value"')
                + "</g>"
            )
        body.append("</g>")
        values = ", ".join(
            f"{month} {'no data' if v is None else fmt(v)}"
            for month, v in zip(months, line.values, strict=True)
        )
        described.append(f"{line.name}: {values}")
    return svg(name, width, height, title, ". ".join(described), "".join(body))


def _unbroken(values: Sequence[float | None]) -> list[list[tuple[int, float]]]:
    runs: list[list[tuple[int, float]]] = [[]]
    for index, value in enumerate(values):
        if value is None:
            runs.append([])
        else:
            runs[-1].append((index, value))
    return [run for run in runs if len(run) > 1]


def interval_chart(
    name: str, title: str, label: str, point: float, low: float, high: float
) -> Markup:
    """One estimate with its interval on an axis that shows zero (no effect)."""
    left, plot_w, width, height = 20, 480, 520, 92
    lo, hi = min(low, 0.0, point), max(high, 0.0, point)
    scale = ticks(lo, hi, 6)
    lo, hi = min(lo, scale[0]), max(hi, scale[-1])

    def x_of(value: float) -> float:
        return left + plot_w * (value - lo) / (hi - lo)

    body = []
    for value in scale:
        x = x_of(value)
        stroke = MUTED if value == 0 else GRID
        body.append(
            f'<line x1="{x:.1f}" y1="14" x2="{x:.1f}" y2="56" stroke="{stroke}"/>'
            + _text(x, 72, percent_text(value), "middle", f' fill="{MUTED}"')
        )
    shown = f"{percent_text(point)} (95 % interval {percent_text(low)} to {percent_text(high)})"
    body.append(
        f'<g class="interval" data-value="{_number(point)}" data-low="{_number(low)}" '
        f'data-high="{_number(high)}"><title>{escape(label)}: {escape(shown)}</title>'
        f'<line x1="{x_of(low):.1f}" y1="34" x2="{x_of(high):.1f}" y2="34" stroke="{ACCENT}" '
        'stroke-width="3"/>'
        f'<line x1="{x_of(low):.1f}" y1="26" x2="{x_of(low):.1f}" y2="42" stroke="{ACCENT}" '
        'stroke-width="2"/>'
        f'<line x1="{x_of(high):.1f}" y1="26" x2="{x_of(high):.1f}" y2="42" stroke="{ACCENT}" '
        'stroke-width="2"/>'
        f'<rect x="{x_of(point) - 6:.1f}" y="28" width="12" height="12" fill="{ACCENT}"/>'
        + _text(x_of(point), 20, percent_text(point), "middle", ' class="value"')
        + "</g>"
        + _text(left + plot_w / 2, height - 4, label, "middle", f' fill="{MUTED}"')
    )
    return svg(name, width, height, title, f"{label}: {shown}; zero is no effect", "".join(body))


def heatmap(
    name: str, title: str, rows: Sequence[tuple[str, int, Sequence[float | None]]], columns: int
) -> Markup:
    """Rows of shares (0 to 1) as cells shaded by value, each labelled with its percentage."""
    label_w, count_w, cell_w, cell_h = 70, 70, 50, 24
    width = label_w + count_w + cell_w * max(columns, 1) + 4
    height = 24 + cell_h * len(rows) + 4
    body = [
        _text(label_w - 6, 16, "cohort", "end", f' fill="{MUTED}"'),
        _text(label_w + count_w - 10, 16, "customers", "end", f' fill="{MUTED}"'),
    ]
    for column in range(columns):
        body.append(
            _text(label_w + count_w + cell_w * (column + 0.5), 16, f"+{column + 1}", "middle")
        )
    described = []
    for index, (month, customers, shares) in enumerate(rows):
        y = 22 + index * cell_h
        body.append(
            f'<g class="cohort" data-month="{escape(month)}" data-customers="{customers}">'
            + _text(label_w - 6, y + 16, month, "end")
            + _text(
                label_w + count_w - 10, y + 16, str(customers), "end", ' data-figure="customers"'
            )
        )
        for column, share in enumerate(shares[:columns]):
            x = label_w + count_w + cell_w * column
            value = share or 0.0
            ink = "#fff" if value > 0.45 else "#111"
            body.append(
                f'<g class="cell" data-offset="{column + 1}" data-value="{_number(value)}">'
                f"<title>{escape(month)} +{column + 1}: {percent_text(value)}</title>"
                f'<rect x="{x + 1}" y="{y}" width="{cell_w - 2}" height="{cell_h - 2}" '
                f'fill="{ACCENT}" fill-opacity="{value * 0.9 + 0.05:.2f}"/>'
                + _text(x + cell_w / 2, y + 16, f"{value * 100:.0f} %", "middle", f' fill="{ink}"')
                + "</g>"
            )
        body.append("</g>")
        described.append(
            f"{month} ({customers} customers): "
            + ", ".join(f"+{c + 1} {percent_text(s or 0)}" for c, s in enumerate(shares[:columns]))
        )
    desc = "; ".join(described) or "no cohort in this period"
    return svg(name, width, height, title, desc, "".join(body))


def _clip(text: str, most: int) -> str:
    return text if len(text) <= most else text[: most - 1] + "…"
