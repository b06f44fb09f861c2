"""Markdown tables."""
from __future__ import annotations


def markdown_table(header: list[str], rows: list[list]) -> str:
    """A GitHub markdown table; cells are str()-ed; ends with a newline."""
    lines = ["| " + " | ".join(str(h) for h in header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"
