"""Validation of `html_monitor_job`: clear errors naming the field, secrets not echoed."""

from __future__ import annotations

import re
import time
from typing import Any

import pytest
from pydantic import ValidationError

from serverless_scheduler_html_checker.normalise import SelectorError, normalise
from serverless_scheduler_html_checker.plugin import HTMLMonitorJob

BASE: dict[str, Any] = {
    "name": "w",
    "schedule": {"kind": "rate", "every": 5, "unit": "minutes"},
    "url": "https://example.com/",
}


def _error(**fields: Any) -> str:
    with pytest.raises(ValidationError) as info:
        HTMLMonitorJob(**{**BASE, **fields})
    return str(info.value)


def test_valid_job_defaults() -> None:
    job = HTMLMonitorJob(**BASE)
    assert (job.job_type, job.mode, job.notify, job.headers) == ("html_monitor_job", "text", [], {})
    assert job.secret_fields == {"headers", "notify"}


@pytest.mark.parametrize("url", ["ftp://example.com/", "file:///etc/passwd", "not a url"])
def test_only_http_urls(url: str) -> None:
    assert "url" in _error(url=url)


def test_ignore_patterns_are_validated() -> None:
    message = _error(ignore_patterns=["ok", "(unclosed"])
    assert "ignore_patterns[1] is not a valid regex" in message


def test_patterns_are_compiled_once_even_past_the_re_modules_cache(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Every fire validates its job's patterns: with more distinct patterns than `re`
    # caches (512), each validation would compile them again (about 0.1 ms each).
    patterns = [rf"updated {i}: \d+" for i in range(600)]
    for pattern in patterns:
        HTMLMonitorJob(**BASE, ignore_patterns=[pattern])
    compiled: list[str] = []
    real = re.compile
    monkeypatch.setattr(re, "compile", lambda p, *a: compiled.append(p) or real(p, *a))
    for pattern in patterns:
        assert HTMLMonitorJob(**BASE, ignore_patterns=[pattern]).ignore_patterns == [pattern]
    assert compiled == []
    assert "is not a valid regex" in _error(ignore_patterns=["(unclosed"])  # still refused


def test_headers_are_validated() -> None:
    assert "is not a valid header name" in _error(headers={"Bad Name": "x"})
    assert "must be one line" in _error(headers={"X-Token": "a\r\nInjected: 1"})
    assert "set by the checker" in _error(headers={"Host": "evil.example"})


def test_notify_urls_are_validated_without_echoing_them() -> None:
    message = _error(notify=["mailto://user:pw@example.com", "hunter2-secret"])
    assert "notify[1] is not an apprise URL" in message
    assert "hunter2-secret" not in message.split("input_value")[0]


def test_mode_is_text_or_html() -> None:
    assert "mode" in _error(mode="pdf")


@pytest.mark.parametrize(
    ("fields", "text"),
    [
        ({"css_selector": "##[["}, "css_selector '##[[' is not a valid CSS selector"),
        ({"css_selector": "div >"}, "css_selector 'div >' is not a valid CSS selector"),
        ({"css_selector": "   "}, "css_selector '   ' is not a valid CSS selector"),
        ({"xpath": "//[["}, "xpath '//[[' is not a valid XPath expression"),
        ({"xpath": "//a\x00"}, "xpath '//a\\x00' is not a valid XPath expression"),
    ],
)
def test_selectors_are_validated_naming_the_field(fields: dict[str, Any], text: str) -> None:
    assert text in _error(**fields)


@pytest.mark.parametrize(
    "fields",
    [
        {"css_selector": "#plans"},
        {"css_selector": "div.price > span:nth-child(2n+1), a:has(b):not(.x)"},
        {"css_selector": ""},  # empty means "no selector" to the checker
        {"xpath": "//div[@id='plans']//text()"},
        {"xpath": "count(//p)"},
        {"css_selector": "main", "xpath": "//h1"},
    ],
)
def test_valid_selectors_are_accepted(fields: dict[str, Any]) -> None:
    job = HTMLMonitorJob(**BASE, **fields)
    assert (job.css_selector, job.xpath) == (fields.get("css_selector"), fields.get("xpath"))


def test_a_refused_selector_is_quoted_only_in_part() -> None:
    for field in ("css_selector", "xpath"):
        message = _error(**{field: "##" + "x" * 400}).split("input_value")[0]
        assert f"{field} '##{'x' * 78}'... is not a valid" in message
        assert "x" * 79 not in message


def test_xpath_is_compiled_not_evaluated() -> None:
    # Evaluating this takes hours even on a one-element tree (2^30 steps); compiling is
    # linear. Nothing is fetched either: XPath 1.0 has no function that loads a document.
    nested = "count((//.)[" * 30 + "1" + "])" * 30
    started = time.perf_counter()
    assert HTMLMonitorJob(**BASE, xpath=nested).xpath == nested
    assert HTMLMonitorJob(**BASE, xpath="document('http://127.0.0.1:9/')").xpath
    assert time.perf_counter() - started < 1.0


CSS_CASES = [
    "#plans",
    "p",
    "##[[",
    "div >",
    "   ",
    ",",
    "a,,b",
    "p::before",
    ":first-line",
    "x:foo",
]
XPATH_CASES = ["//p", "//p/text()", "//[[", "//p[", "1 +", "/"]


@pytest.mark.parametrize(
    ("field", "selector"),
    [("css_selector", s) for s in CSS_CASES] + [("xpath", s) for s in XPATH_CASES],
)
def test_validation_agrees_with_the_run(field: str, selector: str) -> None:
    page = "<html><body><p id='plans'>Plans</p></body></html>"
    try:
        HTMLMonitorJob(**BASE, **{field: selector})
        accepted = True
    except ValidationError:
        accepted = False
    try:
        normalise(page, **{field: selector})
        runs = True
    except SelectorError as exc:
        runs = "is not valid" not in str(exc)  # "matched nothing" is a page problem
    assert accepted == runs


def test_selector_checks_are_cached(monkeypatch: pytest.MonkeyPatch) -> None:
    # Every fire validates its job: a selector is checked once per process.
    import lxml.etree
    import selectolax.lexbor

    HTMLMonitorJob(**BASE, css_selector="main > h1.cached", xpath="//h1[@class='cached']")
    calls: list[str] = []
    monkeypatch.setattr(selectolax.lexbor, "LexborHTMLParser", lambda *a: calls.append("css"))
    monkeypatch.setattr(lxml.etree, "XPath", lambda *a: calls.append("xpath"))
    job = HTMLMonitorJob(**BASE, css_selector="main > h1.cached", xpath="//h1[@class='cached']")
    assert job.css_selector == "main > h1.cached"
    assert calls == []
