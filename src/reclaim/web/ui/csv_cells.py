"""CSV cells that are safe to open in a spreadsheet."""

from __future__ import annotations

_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def cell(value: object) -> str:
    """``value`` as a CSV cell; one starting like a formula is defused (CSV injection)."""
    text = "" if value is None else str(value)
    # A cell starting with = + - @ is a formula to a spreadsheet: a leading quote keeps
    # it text. Negative numbers get the quote too: a small price for never running one.
    return "'" + text if text[:1] in _FORMULA_STARTS else text
