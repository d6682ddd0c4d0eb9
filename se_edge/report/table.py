"""The one Markdown table helper every report and benchmark uses, and the one number format."""
from __future__ import annotations

from typing import Iterable, Sequence


def fmt(value, spec: str = ".4f", missing: str = "—") -> str:
    """`value` formatted with `spec`, or `missing` for None."""
    return missing if value is None else format(value, spec)


def markdown_table(headers: Sequence[str], rows: Iterable[Sequence], align: str | None = None) -> str:
    """A GitHub Markdown table. `align` has one letter per column: `l` (left) or `r` (right); by default the first
    column is left-aligned and the others right-aligned. Cells are written with str(); a `|` inside one is escaped."""
    align = align or "l" + "r" * (len(headers) - 1)
    if len(align) != len(headers):
        raise ValueError(f"align {align!r} has {len(align)} columns, headers {len(headers)}")
    rule = {"l": "---", "r": "---:"}
    lines = ["| " + " | ".join(map(str, headers)) + " |", "|" + "|".join(rule[a] for a in align) + "|"]
    for row in rows:
        cells = [str(c).replace("|", "\\|") for c in row]
        if len(cells) != len(headers):
            raise ValueError(f"a row has {len(cells)} cells for {len(headers)} columns: {cells}")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)
