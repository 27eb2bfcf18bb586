"""Trend charts as SVG, drawn on the server by pygal.

Charts are served as their own ``image/svg+xml`` responses and shown with ``<img>``:
an SVG loaded as an image runs no script and loads nothing else, so pygal's inline
styles can be allowed for that response alone (see :data:`SVG_CSP`) while the pages
keep their strict policy. pygal's tooltip script is not requested (``js=[]``); its
small configuration snippet is inert in an image.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pygal
from pygal.style import Style

#: The Content-Security-Policy for chart responses: styles inline, nothing else.
SVG_CSP = "default-src 'none'; style-src 'unsafe-inline'"

_STYLE = Style(
    background="#ffffff",
    plot_background="#ffffff",
    foreground="#1c2430",
    foreground_strong="#1c2430",
    foreground_subtle="#5f6b7a",
    colors=("#1f6feb", "#2e7d32", "#c62828", "#8e24aa", "#ef6c00", "#00838f"),
    font_family="system-ui, sans-serif",
    label_font_size=11,
    major_label_font_size=11,
    legend_font_size=11,
    title_font_size=13,
)


def _chart(kind: Any, title: str, months: Sequence[str]) -> Any:
    chart = kind(
        js=[],
        disable_xml_declaration=True,
        width=640,
        height=260,
        title=title,
        style=_STYLE,
        show_legend=True,
        legend_at_bottom=True,
        x_label_rotation=0,
        print_values=False,
        include_x_axis=True,
        margin=12,
    )
    chart.x_labels = [m[2:] for m in months]  # "26-03": short enough for 12 labels
    return chart


def seats_chart(months: Sequence[str], per_policy: Mapping[str, Sequence[int]]) -> str:
    """Stacked bars: seats reclaimed per month, one colour per policy."""
    chart = _chart(pygal.StackedBar, "Seats reclaimed per month", months)
    for name, values in per_policy.items():
        chart.add(name, list(values))
    if not per_policy:
        chart.add("seats", [0] * len(months))
    return str(chart.render(is_unicode=True))


def savings_chart(months: Sequence[str], per_currency: Mapping[str, Sequence[str]]) -> str:
    """Lines: the monthly saving added by each month's reclaimed seats, per currency."""
    chart = _chart(pygal.Line, "Monthly saving added by seats reclaimed", months)
    for currency, values in per_currency.items():
        chart.add(currency, [float(v) for v in values])
    if not per_currency:
        chart.add("saving", [0.0] * len(months))
    return str(chart.render(is_unicode=True))
