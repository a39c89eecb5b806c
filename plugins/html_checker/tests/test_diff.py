"""The line diff: standard unified format, correct counts, applies back to the new text."""

from __future__ import annotations

import difflib
import re

from hypothesis import given, settings
from hypothesis import strategies as st

from serverless_scheduler_html_checker.diff import cap, line_diff

_HUNK = re.compile(r"^@@ -(\d+)(?:,(\d+))? \+(\d+)(?:,(\d+))? @@$")


def apply(old: list[str], diff: str) -> list[str]:
    """Apply a unified diff to `old` (a tiny patch tool for the property test)."""
    lines = diff.split("\n") if diff else []
    out: list[str] = []
    pos = 0
    i = 2 if lines else 0  # skip ---/+++ headers
    while i < len(lines):
        match = _HUNK.match(lines[i])
        assert match, lines[i]
        start = int(match.group(1))
        length = int(match.group(2) or 1)
        start = start - 1 if length else start
        out.extend(old[pos:start])
        pos = start
        i += 1
        while i < len(lines) and not lines[i].startswith("@@"):
            kind, text = lines[i][0], lines[i][1:]
            if kind == " ":
                assert old[pos] == text
                out.append(text)
                pos += 1
            elif kind == "-":
                assert old[pos] == text
                pos += 1
            else:
                out.append(text)
            i += 1
    out.extend(old[pos:])
    return out


def test_matches_difflib_on_a_simple_change() -> None:
    old = [f"line {i}" for i in range(20)]
    new = [*old[:10], "inserted", *old[10:15], *old[16:]]
    ours = line_diff(old, new)
    theirs = "\n".join(
        difflib.unified_diff(old, new, fromfile="before", tofile="after", lineterm="")
    )
    assert ours.text == theirs
    assert (ours.added, ours.removed) == (1, 1)
    assert ours.summary == "changed (+1/-1 lines)"


def test_identical_inputs_give_an_empty_diff() -> None:
    assert line_diff(["a", "b"], ["a", "b"]).text == ""
    assert line_diff([], []).text == ""


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.sampled_from("abcdef"), max_size=30),
    st.lists(st.sampled_from("abcdefg"), max_size=30),
)
def test_diff_applies_back_and_counts_match(old: list[str], new: list[str]) -> None:
    diff = line_diff(old, new, context=2)
    assert apply(old, diff.text) == new
    body = diff.text.split("\n")[2:] if diff.text else []
    assert diff.added == sum(1 for line in body if line.startswith("+"))
    assert diff.removed == sum(1 for line in body if line.startswith("-"))


def test_cap_cuts_at_a_line_boundary() -> None:
    text = "\n".join(f"+line {i}" for i in range(1000))
    capped = cap(text, 100)
    assert len(capped) < 160
    assert capped.split("\n")[-2].startswith("+line")
    assert capped.endswith("more characters]")


def test_key_matches_lines_by_key_and_shows_them_as_they_are() -> None:
    from serverless_scheduler_html_checker.normalise import markup_key

    old = ['<a href="/x" id="i">Buy</a>', "<p>10 EUR</p>"]
    new = ['<a id="i" href="/x">Buy</a>', "<p>12 EUR</p>"]
    diff = line_diff(old, new, key=markup_key)
    assert (diff.added, diff.removed) == (1, 1)
    assert diff.text.split("\n")[2:] == [
        "@@ -1,2 +1,2 @@",
        ' <a href="/x" id="i">Buy</a>',
        "-<p>10 EUR</p>",
        "+<p>12 EUR</p>",
    ]
