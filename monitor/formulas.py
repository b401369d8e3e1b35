"""Spreadsheet formula injection: a text cell starting with one of these characters would run as a
formula in Excel or LibreOffice, so the report's CSV and the exports give it a leading apostrophe."""

from __future__ import annotations

from typing import Any

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def neutralise(value: Any) -> Any:
    """A text cell a spreadsheet would run as a formula gets a leading apostrophe; others pass."""
    if isinstance(value, str) and value.startswith(FORMULA_START):
        return "'" + value
    return value
