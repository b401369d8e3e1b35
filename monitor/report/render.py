"""Render the report data as HTML and Markdown (Jinja2); flags.csv is written while the data is read.

Untrusted text (titles, names, evidence) never runs: the HTML environment autoescapes everything;
the Markdown environment escapes every value it prints (Markdown and HTML punctuation) unless it
is markup built here.
"""

from __future__ import annotations

import re
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

from jinja2 import Environment, FileSystemLoader, StrictUndefined
from markupsafe import Markup

from monitor.report import charts
from monitor.report.data import (
    HTML_OPPORTUNITIES,
    HTML_ROWS_PER_RULE,
    FlagRow,
    ReportData,
)
from monitor.report.weeks import KYIV

TEMPLATES = Path(__file__).resolve().parent / "templates"
NBSP = "\u00a0"
_TIMESTAMP = re.compile(r"^\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}(:?\d{2})?)$")
_LINE_BREAKS = re.compile(r"\s*[\r\n\t\v\f\u2028\u2029]+\s*")
_MARKDOWN_SPECIAL = re.compile(r"([\\`*_\[\]{}#|~!])")

def number(value: float | int | None, decimals: int | None = None) -> str:
    """Grouped with no-break spaces, as Ukrainian readers write them: 12 345 678."""
    if value is None:
        return ""
    if decimals is None:
        decimals = 0 if abs(value) >= 100 or float(value).is_integer() else 2
    return f"{value:,.{decimals}f}".replace(",", NBSP)


def money(values: dict[str, float]) -> list[str]:
    return [f"{number(amount)}{NBSP}{currency}" for currency, amount in values.items()]


def kyiv(moment: datetime | None, with_time: bool = True) -> str:
    if moment is None:
        return ""
    local = moment.astimezone(KYIV)
    return local.strftime("%Y-%m-%d %H:%M" if with_time else "%Y-%m-%d")


def evidence_text(value: Any) -> str:
    """An evidence value as an analyst reads it: times in Kyiv, numbers grouped, lists joined."""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (int, float)):
        return number(value)
    if isinstance(value, str):
        if _TIMESTAMP.match(value):
            try:
                return kyiv(datetime.fromisoformat(value.replace("Z", "+00:00")))
            except ValueError:
                return value
        return value
    if isinstance(value, dict):
        return ", ".join(f"{label(str(k))} {evidence_text(v)}" for k, v in value.items() if v is not None)
    if isinstance(value, list):
        separator = "; " if any(isinstance(v, (dict, list)) for v in value) else ", "
        return separator.join(evidence_text(v) for v in value)
    return "" if value is None else str(value)


def evidence_lines(value: Any) -> list[str]:
    """Like evidence_text, but a list of records gives one line per record."""
    if isinstance(value, list) and any(isinstance(v, (dict, list)) for v in value):
        return [evidence_text(v) for v in value]
    return [evidence_text(value)]


def label(key: str) -> str:
    return key.replace("_", " ")


def days_left(row: FlagRow, clock: datetime) -> str:
    if row.deadline is None:
        return ""
    seconds = (row.deadline - clock).total_seconds()
    if seconds <= 0:
        return "closed"
    days = int(seconds // 86400)
    return "under 1 day" if days == 0 else f"{days} day{'s' if days != 1 else ''}"


def value_text(row: FlagRow) -> str:
    if row.masked:
        return "masked"
    return f"{number(row.amount)}{NBSP}{row.currency or ''}".strip() if row.amount is not None else ""


def markdown_escape(value: Any) -> Any:
    """Escape a value printed into Markdown (table cells included): punctuation and HTML, one line."""
    if isinstance(value, Markup) or value is None:
        return value
    text = _LINE_BREAKS.sub(" ", str(value))
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return _MARKDOWN_SPECIAL.sub(r"\\\1", text)


def markdown_url(url: str) -> Markup:
    """A URL safe inside ``[text](url)``: nothing that could end the link or start HTML."""
    return Markup(quote(url, safe=":/?&=#%~.-_"))


def _environment(markdown: bool) -> Environment:
    environment = Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=not markdown,
        finalize=markdown_escape if markdown else None,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    environment.filters.update(number=number, money=money, kyiv=kyiv, evidence=evidence_text, label=label,
                               evidence_lines=evidence_lines,
                               value_text=value_text, md_url=markdown_url, compact=charts.compact)
    return environment


def _charts(data: ReportData) -> dict[str, Markup]:
    labels, sectors = data.spend_by_quarter
    weeks, by_kind = data.flags_by_week
    currency = data.main_currency
    return {
        "spend_by_quarter": charts.grouped_bars(
            labels, [(name, values) for _, name, values in sectors],
            f"Expected value of health and social tenders per quarter, {currency}"),
        "spend_by_region": charts.horizontal_bars(
            [(region, value, f"{charts.compact(value)} {currency} · {count}") for region, value, count
             in data.spend_by_region],
            f"Health and social tenders by region, last 12 months, {currency}"),
        "flags_by_week": charts.stacked_bars(
            [f"W{w.number:02d}" for w in weeks],
            [("anomalies" if kind == "anomaly" else "opportunities", counts, charts.KIND_COLOURS.get(kind, "#777"))
             for kind, counts in by_kind.items()],
            "New flags per week, by kind", highlight=len(weeks) - 1),
    }


def _context(data: ReportData) -> dict[str, Any]:
    return {
        "data": data,
        "all_processes": data.categories[0],
        "rows_per_rule": HTML_ROWS_PER_RULE,
        "opportunity_limit": HTML_OPPORTUNITIES,
        "days_left": lambda row: days_left(row, data.clock),
    }


def render_html(data: ReportData) -> str:
    """The page, with its charts as SVG (drawn here only: the Markdown shows them as tables)."""
    context = _context(data) | {"charts": _charts(data)}
    return _environment(markdown=False).get_template("report.html.j2").render(context)


def render_markdown(data: ReportData) -> str:
    return _environment(markdown=True).get_template("report.md.j2").render(_context(data))
