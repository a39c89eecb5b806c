"""Validation of `html_monitor_job`: clear errors naming the field, secrets not echoed."""

from __future__ import annotations

import re
from typing import Any

import pytest
from pydantic import ValidationError

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
