"""Charts as inline SVG: no script, no external file, readable when the page is opened offline.

Each function returns markup safe to insert as is: every text in it is escaped here. The SVGs have a
viewBox and no fixed width, so CSS scales them to the screen; they are drawn narrow (440 units) so
that their text stays readable on a phone (CSS caps how wide they grow on a desktop).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from markupsafe import Markup, escape

WIDTH = 440
FONT = 14
PALETTE = ("#2f6db5", "#d9822b", "#6a4c93", "#2a9d8f", "#8d6e63", "#c2185b")
KIND_COLOURS = {"anomaly": "#c43d3d", "opportunity": "#2e8b57"}


def compact(value: float) -> str:
    """12 345 678 → '12.3 M'; for axis labels and bar ends (tables show exact figures)."""
    magnitude = abs(value)
    for limit, suffix in ((1e9, " bn"), (1e6, " M"), (1e3, " k")):
        if magnitude >= limit:
            scaled = value / limit
            return f"{scaled:.1f}".rstrip("0").rstrip(".") + suffix if abs(scaled) < 100 else f"{scaled:.0f}{suffix}"
    return f"{value:.0f}"


def _nice_ticks(top: float, count: int = 4) -> list[float]:
    if top <= 0:
        return [0.0, 1.0]
    raw = top / count
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 2.5, 5, 10) if m * power >= raw)
    return [i * step for i in range(int(math.ceil(top / step)) + 1)]


def _svg(height: float, title: str, body: list[str], width: int = WIDTH, css_class: str = "chart") -> Markup:
    return Markup(
        f'<svg viewBox="0 0 {width} {height:.0f}" role="img" aria-label="{escape(title)}" '
        f'font-size="{FONT}" class="{css_class}"><title>{escape(title)}</title>' + "".join(body) + "</svg>")


def _legend(names: Sequence[tuple[str, str]], y: float) -> list[str]:
    parts, x = [], 0.0
    for name, colour in names:
        parts.append(f'<rect x="{x:.1f}" y="{y - 10:.1f}" width="11" height="11" fill="{colour}"/>'
                     f'<text x="{x + 16:.1f}" y="{y:.1f}">{escape(name)}</text>')
        x += 16 + 7.2 * len(name) + 18
    return parts


def _axis(ticks: list[float], left: float, top: float, plot_height: float, right: float) -> list[str]:
    parts = []
    for tick in ticks:
        y = top + plot_height - plot_height * tick / ticks[-1]
        parts.append(f'<line x1="{left}" x2="{right}" y1="{y:.1f}" y2="{y:.1f}" stroke="#d9dde3" stroke-width="1"/>'
                     f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end" fill="#555">{escape(compact(tick))}</text>')
    return parts


def grouped_bars(labels: Sequence[str], series: Sequence[tuple[str, Sequence[float]]], title: str) -> Markup:
    """Vertical bars, one group per label (a quarter), one bar per series (a category)."""
    left, top, plot_height, right = 52.0, 30.0, 170.0, WIDTH - 4.0
    ticks = _nice_ticks(max([v for _, values in series for v in values] + [0.0]))
    body = _legend([(name, PALETTE[i % len(PALETTE)]) for i, (name, _) in enumerate(series)], 14)
    body += _axis(ticks, left, top, plot_height, right)
    group = (right - left) / max(len(labels), 1)
    bar = min(22.0, (group - 8) / max(len(series), 1))
    for g, label in enumerate(labels):
        x0 = left + g * group + (group - bar * len(series)) / 2
        for s, (name, values) in enumerate(series):
            value = values[g]
            height = plot_height * value / ticks[-1]
            x, y = x0 + s * bar, top + plot_height - height
            body.append(f'<rect x="{x:.1f}" y="{y:.1f}" width="{bar - 1:.1f}" height="{height:.1f}" '
                        f'fill="{PALETTE[s % len(PALETTE)]}"><title>{escape(name)}, {escape(label)}: '
                        f'{escape(compact(value))}</title></rect>')
        year, _, quarter = label.partition(" ")  # "2026 Q1": the quarter, the year under it
        centre = left + g * group + group / 2
        body.append(f'<text x="{centre:.1f}" y="{top + plot_height + 16:.1f}" text-anchor="middle">'
                    f'{escape(quarter or label)}</text>')
        if quarter:
            body.append(f'<text x="{centre:.1f}" y="{top + plot_height + 31:.1f}" text-anchor="middle" '
                        f'fill="#555">{escape(year)}</text>')
    return _svg(top + plot_height + 38, title, body)


def stacked_bars(labels: Sequence[str], series: Sequence[tuple[str, Sequence[int], str]], title: str,
                 highlight: int | None = None) -> Markup:
    """Vertical stacked bars with the total on top; ``highlight`` marks one bar (the report's week)."""
    left, top, plot_height, right = 40.0, 30.0, 160.0, WIDTH - 4.0
    totals = [sum(values[i] for _, values, _ in series) for i in range(len(labels))]
    ticks = _nice_ticks(max(totals + [0]))
    ticks = [t for t in ticks if t == int(t)] if ticks[-1] >= 4 else [0.0, 1.0, 2.0, 3.0, 4.0]
    body = _legend([(name, colour) for name, _, colour in series], 14)
    body += _axis(ticks, left, top, plot_height, right)
    slot = (right - left) / max(len(labels), 1)
    bar = min(26.0, slot - 8)
    for i, label in enumerate(labels):
        x = left + i * slot + (slot - bar) / 2
        if i == highlight:
            body.append(f'<rect x="{left + i * slot + 1:.1f}" y="{top - 4}" width="{slot - 2:.1f}" '
                        f'height="{plot_height + 4}" fill="#fff4c2"/>')
        y = top + plot_height
        for name, values, colour in series:
            height = plot_height * values[i] / ticks[-1]
            if height > 0:
                y -= height
                body.append(f'<rect x="{x:.1f}" y="{y:.1f}" width="{bar:.1f}" height="{height:.1f}" fill="{colour}">'
                            f'<title>{escape(label)}: {values[i]} {escape(name)}</title></rect>')
        if totals[i]:
            total = compact(totals[i]) if totals[i] >= 10_000 else f"{totals[i]:,}".replace(",", "\u00a0")
            body.append(f'<text x="{x + bar / 2:.1f}" y="{y - 4:.1f}" text-anchor="middle">{total}</text>')
        weight = ' font-weight="bold"' if i == highlight else ""
        body.append(f'<text x="{x + bar / 2:.1f}" y="{top + plot_height + 16:.1f}" text-anchor="middle" '
                    f'font-size="{FONT - 2}"{weight}>{escape(label)}</text>')
    return _svg(top + plot_height + 24, title, body)


def horizontal_bars(rows: Sequence[tuple[str, float, str]], title: str, colour: str = PALETTE[0]) -> Markup:
    """One bar per row under its label, the figure at the right end of the label line."""
    row_height, bar_height, width = 38.0, 12.0, 380
    top = max((value for _, value, _ in rows), default=0.0) or 1.0
    body = []
    for i, (label, value, note) in enumerate(rows):
        y = i * row_height + 15
        length = max((width - 2) * value / top, 1.0)
        body.append(f'<text x="0" y="{y:.1f}">{escape(label)}</text>'
                    f'<text x="{width}" y="{y:.1f}" text-anchor="end" fill="#333">{escape(note)}</text>'
                    f'<rect x="0" y="{y + 5:.1f}" width="{length:.1f}" height="{bar_height}" fill="{colour}"/>')
    return _svg(max(len(rows), 1) * row_height + 4, title, body, width=width, css_class="chart bars")
