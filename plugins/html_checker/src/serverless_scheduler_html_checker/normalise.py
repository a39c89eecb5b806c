"""Normaliser: page -> selected element(s) -> comparable lines -> stable hash.

The parser is selectolax's lexbor backend (measured fastest; see docs/html_checker.md).
Text extraction serialises the selected elements (lexbor's output is well-formed:
attributes quoted, `<` in text escaped), turns block-level tag boundaries into line
breaks, drops the remaining tags and unescapes entities. lxml is imported only when a job
uses `xpath`, which lexbor does not support.

`css_selector_problem` and `xpath_problem` check a job's selectors when the job is
validated, with the same library calls a check makes, so a selector the API accepts is
not refused as invalid at run time.
"""

from __future__ import annotations

import functools
import hashlib
import html as html_lib
import json
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

_BLOCK_TAGS = [
    "address",
    "article",
    "aside",
    "blockquote",
    "body",
    "br",
    "caption",
    "dd",
    "details",
    "div",
    "dl",
    "dt",
    "fieldset",
    "figcaption",
    "figure",
    "footer",
    "form",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "head",
    "header",
    "hr",
    "html",
    "legend",
    "li",
    "main",
    "nav",
    "ol",
    "option",
    "p",
    "pre",
    "section",
    "summary",
    "table",
    "tbody",
    "td",
    "tfoot",
    "th",
    "thead",
    "title",
    "tr",
    "ul",
]


def _block_tag_pattern(tags: Sequence[str]) -> re.Pattern[str]:
    """Opening/closing block tags, alternatives grouped by first letter.

    Grouping matters: Python's regex engine tries alternatives one by one at every
    `<`, and grouping cut this pass from 2.6 ms to 0.9 ms on a 100 KB page.
    lexbor serialises tag names in lower case, so no IGNORECASE is needed.
    """
    groups: dict[str, list[str]] = {}
    for tag in tags:
        groups.setdefault(tag[0], []).append(re.escape(tag[1:]))
    alternatives = "|".join(
        first + "(?:" + "|".join(sorted(rest, key=len, reverse=True)) + ")"
        for first, rest in sorted(groups.items())
    )
    return re.compile(rf"</?(?:{alternatives})(?=[\s/>])[^>]*>")


_BLOCK_RE = _block_tag_pattern(_BLOCK_TAGS)
_TAG_RE = re.compile(r"<[^>]*>")
_COMMENT_RE = re.compile(r"<!--.*?-->", re.S)
_BETWEEN_TAGS_RE = re.compile(r">\s*<")
_DROP_TAGS = ["script", "style", "noscript", "template"]
#: `<pre>` elements, whose line breaks are content (elsewhere a line break is a space).
_PRE_RE = re.compile(r"(<pre(?=[\s>])[^>]*>.*?</pre>)", re.S)
#: An opening tag as lexbor and lxml serialise it: name, then `name="value"` attributes.
_OPEN_TAG_RE = re.compile(r"<([A-Za-z][^\s/>]*)((?:\s+[^\s=/>]+(?:=\"[^\"]*\")?)+)\s*(/?)>")
_ATTRIBUTE_RE = re.compile(r"[^\s=/>]+(?:=\"[^\"]*\")?")
#: Bumped when the same page yields different lines or hashes than before; a snapshot
#: from another version is compared ignoring whitespace (see `same_text`).
NORMALISER_VERSION = 2


#: How much of a refused selector an error message quotes.
_QUOTED_CHARS = 80


class SelectorError(ValueError):
    """The selector is invalid or matched nothing (an error run, not a change)."""


#: Longest time one ignore pattern may spend on a page's lines; past it the check is
#: an error run naming the pattern.
IGNORE_BUDGET_S = 1.0


class IgnorePatternError(SelectorError):
    """An ignore pattern took longer than `IGNORE_BUDGET_S` on a page (an error run)."""


def _kept(lines: list[str], ignore: Sequence[Any]) -> list[str]:
    """The lines no pattern of `ignore` matches, each pattern within `IGNORE_BUDGET_S`.

    A pattern that backtracks catastrophically on some line (`(a|aa)+$` against many
    `a`s and a `b`) would otherwise hold the worker for minutes or forever; each search
    gets what is left of its pattern's budget as its timeout instead. The budget is per
    pattern, so many simple patterns over a long page do not add up to a refusal.
    """
    kept = lines
    for index, pattern in enumerate(ignore):
        deadline = time.monotonic() + IGNORE_BUDGET_S
        survivors: list[str] = []
        for line in kept:
            left = deadline - time.monotonic()
            try:
                matched = left > 0 and pattern.search(line, timeout=left) is not None
            except TimeoutError:
                left = 0
            if left <= 0:
                raise IgnorePatternError(
                    f"ignore_patterns[{index}] took over {IGNORE_BUDGET_S:g} s on this "
                    "page (it backtracks too much); simplify it"
                )
            if not matched:
                survivors.append(line)
        kept = survivors
    return kept


def _quoted(text: str) -> str:
    return repr(text[:_QUOTED_CHARS]) + ("..." if len(text) > _QUOTED_CHARS else "")


@functools.lru_cache(maxsize=4096)
def css_selector_problem(selector: str) -> str | None:
    """Why lexbor refuses `selector` (None when it takes it), as `_css_fragments` runs it.

    selectolax has no parse-only call, so the selector runs against an empty document
    (about 0.1 ms; nothing is fetched). Cached: every fire validates its job.
    """
    from selectolax.lexbor import LexborHTMLParser

    try:
        LexborHTMLParser("").css(selector)
    except Exception:  # lexbor raises SelectolaxError/ValueError variants
        return f"css_selector {_quoted(selector)} is not a valid CSS selector"
    return None


@functools.lru_cache(maxsize=4096)
def xpath_problem(expression: str) -> str | None:
    """Why lxml cannot compile `expression` (None when it compiles).

    Compiled, not evaluated: evaluation can take exponential time in the nesting depth
    even on a one-element tree (22 levels of `count((//.)[...])` took 1.7 s), while
    compiling is linear. Names that only evaluation resolves (an unknown function,
    namespace prefix or variable) are therefore still reported by the check's run.
    """
    import lxml.etree

    try:
        lxml.etree.XPath(expression)
    except (lxml.etree.XPathError, ValueError) as exc:  # ValueError: NUL, lone surrogate
        reason = str(exc)[:_QUOTED_CHARS]
        return f"xpath {_quoted(expression)} is not a valid XPath expression: {reason}"
    return None


@dataclass(frozen=True)
class Normalised:
    """Comparable content of a page: lines, their hash, and the matched element count."""

    lines: list[str]
    content_hash: str
    matched: int


def content_hash(data: bytes) -> str:
    """Stable, fast hash (BLAKE2b, 128 bits) used for raw bodies and normalised text."""
    return hashlib.blake2b(data, digest_size=16).hexdigest()


def _flowed(fragment: str) -> str:
    """Line breaks in the source are whitespace like any other, except inside `<pre>`:
    re-wrapping a paragraph in the HTML source is not a change of the page."""
    if "<pre" not in fragment:
        return fragment.replace("\n", " ")
    pieces = _PRE_RE.split(fragment)
    pieces[::2] = [piece.replace("\n", " ") for piece in pieces[::2]]
    return "".join(pieces)


def html_to_lines(fragment: str) -> list[str]:
    """Block-aware text of serialised HTML: one line per block, whitespace collapsed."""
    fragment = _flowed(_COMMENT_RE.sub("", fragment))
    fragment = _BLOCK_RE.sub("\n", fragment)
    text = html_lib.unescape(_TAG_RE.sub("", fragment))
    # A block-heavy page yields several empty pieces per line: skip them with C-level
    # checks before collapsing whitespace (measured faster than regex collapsing).
    return [" ".join(piece.split()) for piece in text.split("\n") if piece and not piece.isspace()]


def pretty_html_lines(fragment: str) -> list[str]:
    """Serialised HTML with one tag per line, whitespace collapsed, for `mode=html` diffs."""
    fragment = _BETWEEN_TAGS_RE.sub(">\n<", _flowed(_COMMENT_RE.sub("", fragment)))
    return [
        " ".join(piece.split()) for piece in fragment.split("\n") if piece and not piece.isspace()
    ]


def _sorted_attributes(match: re.Match[str]) -> str:
    attributes = sorted(_ATTRIBUTE_RE.findall(match.group(2)))
    return f"<{match.group(1)} {' '.join(attributes)}{match.group(3)}>"


def markup_key(line: str) -> str:
    """A `mode=html` line with each tag's attributes in name order: what is compared,
    so that a page serving the same attributes in another order is unchanged. The
    lines shown keep the page's own order."""
    if "=" not in line:
        return line
    return _OPEN_TAG_RE.sub(_sorted_attributes, line)


def plain_text_lines(text: str) -> list[str]:
    """Lines of a plain-text body (no markup to parse), whitespace collapsed."""
    return [" ".join(line.split()) for line in text.splitlines() if line and not line.isspace()]


def json_lines(text: str) -> list[str]:
    """A JSON body pretty-printed with sorted keys: one value per line, so minified
    JSON diffs by value and key order or formatting is not a change. A body that is
    not JSON after all is compared as plain text."""
    try:
        value = json.loads(text)
    except ValueError:
        return plain_text_lines(text)
    return json.dumps(value, indent=1, sort_keys=True, ensure_ascii=False).split("\n")


def is_markup(content_type: str) -> bool:
    """Whether a response of `content_type` is parsed as HTML (unlabelled ones are)."""
    media = content_type.split(";", 1)[0].strip().lower()
    return not media or "html" in media or media.endswith("xml")


def same_text(old: Sequence[str], new: Sequence[str]) -> bool:
    """Equal apart from whitespace and line breaks (snapshots of another normaliser)."""
    return "".join("".join(old).split()) == "".join("".join(new).split())


def _css_fragments(page: str, selector: str | None) -> list[str]:
    from selectolax.lexbor import LexborHTMLParser

    tree = LexborHTMLParser(page)
    tree.strip_tags(_DROP_TAGS)
    if selector:
        try:
            nodes: Sequence[Any] = tree.css(selector)
        except Exception as exc:  # lexbor raises ValueError/SelectolaxError variants
            raise SelectorError(f"css_selector {selector!r} is not valid: {exc}") from None
        return [node.html or "" for node in nodes]
    root = tree.body or tree.root
    return [root.html or ""] if root is not None else []


def _xpath_fragments(page: str, expression: str) -> list[str]:
    import lxml.etree
    import lxml.html

    try:
        tree = lxml.html.document_fromstring(page)
    except (lxml.etree.ParserError, ValueError):
        return []
    for bad in tree.xpath("//script|//style|//noscript|//template"):
        bad.drop_tree()
    try:
        found = tree.xpath(expression)
    except lxml.etree.XPathError as exc:
        raise SelectorError(f"xpath {expression!r} is not valid: {exc}") from None
    if not isinstance(found, list):
        found = [found]
    out: list[str] = []
    for item in found:
        if isinstance(item, lxml.etree._Element):
            out.append(lxml.etree.tostring(item, encoding="unicode", method="html"))
        else:
            out.append(html_lib.escape(str(item)))
    return out


def normalise(
    page: str,
    *,
    css_selector: str | None = None,
    xpath: str | None = None,
    mode: str = "text",
    ignore: Sequence[Any] = (),
    content_type: str = "text/html",
) -> Normalised:
    """Select, convert to lines, drop ignored lines, hash.

    `ignore` holds compiled patterns of the `regex` package (their searches take a
    timeout; see `IGNORE_BUDGET_S`).

    A body that is not markup (`text/plain`, JSON, CSV...) is compared line by line
    without HTML parsing, unless a selector asks for parsing. Raises SelectorError when
    a selector is invalid or matches nothing.
    """
    if not css_selector and not xpath and not is_markup(content_type):
        media = content_type.split(";", 1)[0].strip().lower()
        is_json = media == "application/json" or media.endswith("+json")
        text_lines = json_lines(page) if is_json else plain_text_lines(page)
        return _finished(text_lines, ignore, matched=1, keyed=False)
    fragments: list[str] = []
    if css_selector or not xpath:
        fragments.extend(_css_fragments(page, css_selector))
        if css_selector and not fragments:
            raise SelectorError(f"css_selector {css_selector!r} matched nothing on the page")
    if xpath:
        found = _xpath_fragments(page, xpath)
        if not found:
            raise SelectorError(f"xpath {xpath!r} matched nothing on the page")
        fragments.extend(found)
    to_lines = pretty_html_lines if mode == "html" else html_to_lines
    lines: list[str] = []
    for fragment in fragments:
        lines.extend(to_lines(fragment))
    return _finished(lines, ignore, matched=len(fragments), keyed=mode == "html")


def _finished(lines: list[str], ignore: Sequence[Any], *, matched: int, keyed: bool) -> Normalised:
    """Drop ignored lines and hash what is compared (`markup_key` of each line in html mode)."""
    if ignore:
        lines = _kept(lines, ignore)
    compared = [markup_key(line) for line in lines] if keyed else lines
    digest = content_hash("\n".join(compared).encode("utf-8"))
    return Normalised(lines=lines, content_hash=digest, matched=matched)
