"""How the HTML report writes values: escaped text, numbers, shares, sizes, and tables."""

from __future__ import annotations

from html import escape
from typing import Any


def esc(value: Any) -> str:
    return escape("" if value is None else str(value), quote=True)


def number(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        if abs(value) >= 100:
            return f"{value:,.0f}"
        return f"{value:.3g}"
    return f"{value:,}" if isinstance(value, int) else esc(value)


def percent(value: float | None) -> str:
    return "–" if value is None else f"{value:.1%}"


def shorten(label: str, limit: int) -> str:
    """Paths and URLs keep their tail (the file name), other labels their head."""
    if len(label) <= limit:
        return label
    return "…" + label[-(limit - 1):] if "/" in label else label[: limit - 1] + "…"


def plural(n: int, word: str) -> str:
    return f"{n:,} {word}{'' if n == 1 else 's'}"


def byte_size(n: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:,.0f} {unit}" if unit == "B" else f"{n:,.1f} {unit}"
        n /= 1024
    return str(n)


def html_table(headers: list[str], rows: list[list[str]], numeric: set[int] = frozenset(),
           bad_rows: set[int] = frozenset()) -> str:
    head = "".join(f'<th class="n">{h}</th>' if i in numeric else f"<th>{h}</th>" for i, h in enumerate(headers))
    body = []
    for r, row in enumerate(rows):
        cells = "".join(f'<td class="n">{c}</td>' if i in numeric else f"<td>{c}</td>" for i, c in enumerate(row))
        body.append(f'<tr class="bad">{cells}</tr>' if r in bad_rows else f"<tr>{cells}</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"
