"""Markdown tables of the benchmarks: one way to write a header and a row."""

from __future__ import annotations

from collections.abc import Sequence


def md_row(*cells: object) -> str:
    """A table row of already formatted `cells`: `| a | b |`."""
    return "| " + " | ".join(str(c) for c in cells) + " |"


def md_header(columns: Sequence[str], align: str) -> list[str]:
    """The header and separator lines; `align` has one letter per column: l (left) or r (right)."""
    if len(align) != len(columns) or set(align) - {"l", "r"}:
        raise ValueError(f"align {align!r} must be one of l/r per column ({len(columns)} columns)")
    return [md_row(*columns), "|" + "|".join("---:" if a == "r" else "---" for a in align) + "|"]
