"""Line diff of two normalised snapshots: unified diff text plus +N/-M counts.

Page changes are usually local, so the common head and tail are trimmed before
difflib's matcher runs on the middle (its index of the new side costs time linear in
the whole page, its matching more). The opcodes are then shifted back and grouped the
way `difflib.unified_diff` groups them, so the output is the standard format.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Sequence
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


Opcode = tuple[str, int, int, int, int]


def _opcodes(old: Sequence[str], new: Sequence[str]) -> list[Opcode]:
    """difflib opcodes for old -> new, computed on the part between common head and tail."""
    limit = min(len(old), len(new))
    head = 0
    while head < limit and old[head] == new[head]:
        head += 1
    tail = 0
    while tail < limit - head and old[-1 - tail] == new[-1 - tail]:
        tail += 1
    old_mid = old[head : len(old) - tail]
    new_mid = new[head : len(new) - tail]
    ops: list[Opcode] = []
    if head:
        ops.append(("equal", 0, head, 0, head))
    matcher = difflib.SequenceMatcher(None, old_mid, new_mid, autojunk=False)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        ops.append((tag, i1 + head, i2 + head, j1 + head, j2 + head))
    if tail:
        ops.append(("equal", len(old) - tail, len(old), len(new) - tail, len(new)))
    return ops or [("equal", 0, 0, 0, 0)]


def _grouped(ops: list[Opcode], n: int) -> list[list[Opcode]]:
    """Hunks with `n` lines of context (difflib's get_grouped_opcodes, on given opcodes)."""
    matcher = difflib.SequenceMatcher(None, "", "")
    matcher.opcodes = ops  # type: ignore[attr-defined]  # difflib's own cache slot
    return list(matcher.get_grouped_opcodes(n))


def _range(start: int, stop: int) -> str:
    length = stop - start
    beginning = start + 1 if length else start
    return f"{beginning}" if length == 1 else f"{beginning},{length}"


def line_diff(
    old: Sequence[str],
    new: Sequence[str],
    *,
    old_label: str = "before",
    new_label: str = "after",
    context: int = 3,
    limit: int = MAX_DIFF_CHARS,
    key: Callable[[str], str] | None = None,
) -> LineDiff:
    """Unified diff of two line lists (size-capped) with added/removed counts.

    With `key`, lines are matched by `key(line)` (e.g. attributes in name order) and
    shown as they are.
    """
    added = removed = 0
    out: list[str] = []
    if key is None:
        ops = _opcodes(old, new)
    else:
        ops = _opcodes([key(line) for line in old], [key(line) for line in new])
    if any(tag != "equal" for tag, *_ in ops):
        out += [f"--- {old_label}", f"+++ {new_label}"]
        for group in _grouped(ops, context):
            first, last = group[0], group[-1]
            out.append(f"@@ -{_range(first[1], last[2])} +{_range(first[3], last[4])} @@")
            for tag, i1, i2, j1, j2 in group:
                if tag == "equal":
                    out.extend(" " + line for line in old[i1:i2])
                    continue
                if tag in ("replace", "delete"):
                    out.extend("-" + line for line in old[i1:i2])
                    removed += i2 - i1
                if tag in ("replace", "insert"):
                    out.extend("+" + line for line in new[j1:j2])
                    added += j2 - j1
    return LineDiff(text=cap("\n".join(out), limit), added=added, removed=removed)
