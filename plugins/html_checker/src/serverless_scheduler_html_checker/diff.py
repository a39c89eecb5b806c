"""Line diff of two normalised snapshots: unified diff text plus +N/-M counts."""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from dataclasses import dataclass

#: Largest diff kept in history and notifications; longer ones are cut with a marker.
MAX_DIFF_CHARS = 32 * 1024


@dataclass(frozen=True)
class LineDiff:
    """A unified diff and how many lines it adds and removes."""

    text: str
    added: int
    removed: int

    @property
    def summary(self) -> str:
        return f"changed (+{self.added}/-{self.removed} lines)"


def cap(text: str, limit: int = MAX_DIFF_CHARS) -> str:
    """Cut at a line boundary when possible, saying how much was left out."""
    if len(text) <= limit:
        return text
    cut = text.rfind("\n", 0, limit)
    cut = cut if cut > 0 else limit
    return text[:cut] + f"\n... [diff truncated, {len(text) - cut} more characters]"


def line_diff(
    old: Sequence[str],
    new: Sequence[str],
    *,
    old_label: str = "before",
    new_label: str = "after",
    context: int = 3,
    limit: int = MAX_DIFF_CHARS,
) -> LineDiff:
    """Unified diff of two line lists (size-capped) with added/removed counts."""
    added = removed = 0
    out: list[str] = []
    for line in difflib.unified_diff(
        old, new, fromfile=old_label, tofile=new_label, n=context, lineterm=""
    ):
        out.append(line)
        if line.startswith("+") and not line.startswith("+++"):
            added += 1
        elif line.startswith("-") and not line.startswith("---"):
            removed += 1
    return LineDiff(text=cap("\n".join(out), limit), added=added, removed=removed)
