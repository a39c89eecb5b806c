"""The checker's consumer path against real pages on 127.0.0.1 (private networks allowed)."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from serverless_scheduler_common import RunContext, Settings
from serverless_scheduler_html_checker.normalise import content_hash
from serverless_scheduler_html_checker.plugin import NAMESPACE, HTMLMonitorJob

PAGE = """<!doctype html><html><head><title>Shop</title>
<script>var now = {stamp};</script></head>
<body><nav><a href="/">Home</a> <a href="/about">About</a></nav>
<div id="price"><h1>Widget</h1><p>Price: <b>{price}</b> EUR</p></div>
<div class="stock"><p>In stock: {stock}</p><p>Updated {stamp}</p></div>
<footer>Visitors today: {visitors}</footer></body></html>"""


def page(price: str = "10", stock: str = "yes", stamp: str = "1", visitors: str = "5") -> str:
    return PAGE.format(price=price, stock=stock, stamp=stamp, visitors=visitors)


def key(job: HTMLMonitorJob) -> str:
    return f"{job.owner_id}/{job.job_id}"


def test_first_check_records_a_baseline_without_notifying(checker: Any, pages: Any) -> None:
    job = checker.job(pages.set("/p", page()))
    outcome = checker.run(job)
    assert (outcome.status, outcome.summary) == ("ok", "baseline recorded")
    assert checker.notifier.sent == []
    snapshot = checker.store.get(NAMESPACE, key(job))
    assert snapshot is not None
    assert "Price: 10 EUR" in snapshot["lines"]
    assert checker.store.history(NAMESPACE, key(job)) == []


def test_unchanged_page_is_ok_unchanged(checker: Any, pages: Any) -> None:
    job = checker.job(pages.set("/p", page()))
    checker.run(job)
    outcome = checker.run(job)
    assert (outcome.status, outcome.summary, outcome.detail) == ("ok", "unchanged", None)
    assert checker.notifier.sent == []


def test_changed_text_gives_diff_history_and_one_notification(checker: Any, pages: Any) -> None:
    url = pages.set("/p", page(price="10"))
    job = checker.job(url)
    checker.run(job)
    pages.set("/p", page(price="12"))
    outcome = checker.run(job)
    assert outcome.status == "changed"
    assert outcome.summary == "changed (+1/-1 lines)"
    assert "-Price: 10 EUR" in outcome.detail
    assert "+Price: 12 EUR" in outcome.detail
    [message] = checker.notifier.sent
    assert message["urls"] == ["json://example.invalid/hook"]
    assert url in message["body"] and "+Price: 12 EUR" in message["body"]
    assert "+Price: 12 EUR" in message["html"] and "<pre>" in message["html"]
    [entry] = checker.store.history(NAMESPACE, key(job))
    assert (entry["added"], entry["removed"]) == (1, 1)
    assert "+Price: 12 EUR" in entry["diff"]
    assert entry["hash"] == checker.store.get(NAMESPACE, key(job))["text_hash"]
    # and the next check of the same content is unchanged again
    assert checker.run(job).summary == "unchanged"


def test_markup_and_script_only_changes_are_not_changes(checker: Any, pages: Any) -> None:
    job = checker.job(pages.set("/p", page()))
    checker.run(job)
    pages.set("/p", page().replace("<nav>", '<nav class="x">').replace("var now", "var later"))
    assert checker.run(job).summary == "unchanged"
    assert checker.notifier.sent == []


def test_change_only_in_an_ignored_line_does_not_notify(checker: Any, pages: Any) -> None:
    job = checker.job(
        pages.set("/p", page(stamp="1", visitors="5")),
        ignore_patterns=[r"^Updated \d+$", r"Visitors today: \d+"],
    )
    checker.run(job)
    pages.set("/p", page(stamp="2", visitors="99"))
    outcome = checker.run(job)
    assert (outcome.status, outcome.summary) == ("ok", "unchanged")
    assert checker.notifier.sent == []
    pages.set("/p", page(stamp="3", visitors="7", stock="no"))
    outcome = checker.run(job)
    assert outcome.summary == "changed (+1/-1 lines)"
    assert "Updated" not in outcome.detail and "Visitors" not in outcome.detail


def test_an_ignore_pattern_that_backtracks_forever_is_an_error_run_in_bounded_time(
    checker: Any, pages: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`(a|aa)+$` against 40 `a`s and a `b` backtracks for longer than anyone waits: one
    tenant's pattern must not hold the worker (with `re`, the whole process)."""
    from serverless_scheduler_html_checker import normalise

    monkeypatch.setattr(normalise, "IGNORE_BUDGET_S", 0.2)
    job = checker.job(pages.set("/p", page()), ignore_patterns=["Updated", "(a|aa)+$"])
    checker.run(job)
    pages.set("/p", page(stock="a" * 40 + "b"))
    started = time.monotonic()
    outcome = checker.run(job)
    assert time.monotonic() - started < 30
    assert outcome.status == "error"
    assert outcome.summary == (
        "error: ignore_patterns[1] took over 0.2 s on this page (it backtracks too much); "
        "simplify it"
    )
    assert checker.notifier.sent == []
    # The baseline is kept: once the page is harmless again, the check goes on.
    pages.set("/p", page(stock="no"))
    assert checker.run(job).summary == "changed (+1/-1 lines)"


def test_an_empty_body_is_an_error_that_keeps_the_baseline(checker: Any, pages: Any) -> None:
    """A server answering 200 with nothing (restarting, overloaded) is no change: not
    "everything removed" now and "everything added" at the next check."""
    job = checker.job(pages.set("/p", page()))
    checker.run(job)
    for empty in ("", " \n\t "):
        pages.set("/p", empty)
        outcome = checker.run(job)
        assert (outcome.status, outcome.summary) == ("error", "error: the page came back empty")
    pages.set("/p", page())
    assert checker.run(job).summary == "unchanged"
    assert checker.notifier.sent == []
    # A page whose markup came back without any text is treated the same way.
    pages.set("/p", "<html><head><title>x</title></head><body><div></div></body></html>")
    outcome = checker.run(job)
    assert (outcome.status, outcome.summary) == ("error", "error: the page came back without text")
    pages.set("/p", page())
    assert checker.run(job).summary == "unchanged"
    # An element a selector watches may empty for real: that is a change.
    job = checker.job(pages.set("/q", page()), css_selector="#price b")
    checker.run(job)
    pages.set("/q", page(price=""))
    assert checker.run(job).status == "changed"


def test_selector_scopes_what_is_compared(checker: Any, pages: Any) -> None:
    job = checker.job(pages.set("/p", page()), css_selector="#price")
    checker.run(job)
    pages.set("/p", page(stock="no", visitors="1000"))
    assert checker.run(job).summary == "unchanged"
    pages.set("/p", page(stock="no", price="9"))
    outcome = checker.run(job)
    assert outcome.status == "changed" and "+Price: 9 EUR" in outcome.detail


def test_xpath_scopes_what_is_compared(checker: Any, pages: Any) -> None:
    job = checker.job(pages.set("/p", page()), xpath="//div[@class='stock']/p[1]")
    checker.run(job)
    pages.set("/p", page(price="99"))
    assert checker.run(job).summary == "unchanged"
    pages.set("/p", page(stock="no"))
    assert "+In stock: no" in checker.run(job).detail


def test_selector_matching_nothing_is_an_error_not_a_change(checker: Any, pages: Any) -> None:
    job = checker.job(pages.set("/p", page()), css_selector="#price")
    checker.run(job)
    pages.set("/p", "<html><body><p>redesigned</p></body></html>")
    outcome = checker.run(job)
    assert outcome.status == "error"
    assert outcome.summary == "error: css_selector '#price' matched nothing on the page"
    assert checker.notifier.sent == []
    pages.set("/p", page())  # the element comes back unchanged: no change either
    assert checker.run(job).summary == "unchanged"


def test_mode_html_compares_markup(checker: Any, pages: Any) -> None:
    job = checker.job(pages.set("/p", page()), css_selector="#price", mode="html")
    checker.run(job)
    pages.set("/p", page().replace("<b>10</b>", "<i>10</i>"))
    outcome = checker.run(job)
    assert outcome.status == "changed"
    assert "+<p>Price: <i>10</i> EUR</p>" in outcome.detail


def test_trigger_text_gates_notifications(checker: Any, pages: Any) -> None:
    job = checker.job(pages.set("/p", page(stock="no")), trigger_text="In stock: YES")
    checker.run(job)
    pages.set("/p", page(stock="maybe"))
    outcome = checker.run(job)
    assert outcome.status == "changed"
    assert checker.notifier.sent == []
    pages.set("/p", page(stock="yes"))
    assert checker.run(job).status == "changed"
    assert len(checker.notifier.sent) == 1


def test_304_short_circuits(checker: Any, pages: Any, httpserver: HTTPServer) -> None:
    job = checker.job(pages.set("/p", page(), headers={"ETag": '"v1"'}))
    checker.run(job)
    assert checker.run(job).summary == "unchanged"
    assert httpserver.log[-1][0].headers["If-None-Match"] == '"v1"'
    assert httpserver.log[-1][1].status_code == 304


def test_oversized_page_is_an_error(checker: Any, pages: Any) -> None:
    checker.context.settings = Settings(allow_private_networks=True, http_max_bytes=10_000)
    job = checker.job(pages.set("/big", "<p>" + "x" * 50_000 + "</p>"))
    outcome = checker.run(job)
    assert outcome.status == "error"
    assert "larger than the limit of 10000 bytes" in outcome.summary


def test_non_utf8_page(checker: Any, pages: Any) -> None:
    html = "<html><body><p>Cena: 10 zł, żółw</p></body></html>"
    job = checker.job(pages.set("/pl", html.encode("iso-8859-2"), "text/html; charset=iso-8859-2"))
    checker.run(job)
    assert "Cena: 10 zł, żółw" in checker.store.get(NAMESPACE, key(job))["lines"]
    meta = '<html><head><meta charset="windows-1252"></head><body><p>café \u2013 naïve</p></body></html>'
    job2 = checker.job(pages.set("/fr", meta.encode("cp1252"), "text/html"))
    checker.run(job2)
    assert "café \u2013 naïve" in checker.store.get(NAMESPACE, key(job2))["lines"]


def test_redirect_chain_is_followed(checker: Any, pages: Any, httpserver: HTTPServer) -> None:
    httpserver.expect_request("/old").respond_with_data("", 301, {"Location": "/older"})
    httpserver.expect_request("/older").respond_with_data("", 302, {"Location": "/new"})
    pages.set("/new", page())
    job = checker.job(httpserver.url_for("/old"))
    assert checker.run(job).summary == "baseline recorded"
    assert "Price: 10 EUR" in checker.store.get(NAMESPACE, key(job))["lines"]


def test_timeout_is_an_error_run(checker: Any, httpserver: HTTPServer) -> None:
    def slow(request: Request) -> Response:
        time.sleep(0.8)
        return Response("late", content_type="text/html")

    httpserver.expect_request("/slow").respond_with_handler(slow)
    checker.context.settings = Settings(allow_private_networks=True, http_timeout_s=0.2)
    outcome = checker.run(checker.job(httpserver.url_for("/slow")))
    assert outcome.status == "error"
    assert "timed out" in outcome.summary


def test_binary_content_is_refused_with_a_clear_error(checker: Any, pages: Any) -> None:
    outcome = checker.run(checker.job(pages.set("/pdf", b"%PDF-1.7\x00\x01", "application/pdf")))
    assert outcome.status == "error"
    assert outcome.summary.startswith("error: content type 'application/pdf' is not supported")
    outcome = checker.run(checker.job(pages.set("/bin", b"\x00\x01\x02binary", "text/plain")))
    assert outcome.summary == "error: the response body is binary, not a text page"


def test_http_error_status_is_an_error_run(checker: Any, httpserver: HTTPServer) -> None:
    httpserver.expect_request("/gone").respond_with_data("nope", status=404)
    outcome = checker.run(checker.job(httpserver.url_for("/gone")))
    assert (outcome.status, outcome.summary) == ("error", "error: HTTP 404")


def test_guard_applies_to_the_checker(tmp_path: Any, pages: Any, checker: Any) -> None:
    checker.context.settings = Settings()  # guard on: 127.0.0.1 is refused
    outcome = checker.run(checker.job(pages.set("/p", page())))
    assert outcome.status == "error"
    assert "not allowed (loopback)" in outcome.summary
    assert pages.server.log == []


def test_history_is_bounded(checker: Any, pages: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    import serverless_scheduler_html_checker.plugin as plugin

    monkeypatch.setattr(plugin, "HISTORY_KEEP", 3)
    job = checker.job(pages.set("/p", page(price="0")), notify=[])
    checker.run(job)
    for price in range(1, 6):
        pages.set("/p", page(price=str(price)))
        assert checker.run(job).status == "changed"
    history = checker.store.history(NAMESPACE, key(job))
    assert all(f"+Price: {p} EUR" in h["diff"] for h, p in zip(history, (5, 4, 3), strict=True))


def test_changing_the_selector_starts_a_new_baseline(checker: Any, pages: Any) -> None:
    job = checker.job(pages.set("/p", page()), css_selector="#price")
    checker.run(job)
    job.css_selector = ".stock"
    assert checker.run(job).summary == "baseline recorded"
    assert checker.notifier.sent == []


def test_duplicate_delivery_notifies_once(checker: Any, pages: Any) -> None:
    job = checker.job(pages.set("/p", page(price="1")))
    checker.run(job)
    pages.set("/p", page(price="2"))
    fired = checker.fired(job)
    first = checker.run(job, fired)
    second = checker.run(job, fired)
    assert first.status == second.status == "changed"
    assert second.detail == first.detail
    assert len(checker.notifier.sent) == 1


def test_failed_notification_is_retried_and_then_sent_once(checker: Any, pages: Any) -> None:
    job = checker.job(pages.set("/p", page(price="1")))
    checker.run(job)
    pages.set("/p", page(price="2"))
    fired = checker.fired(job)
    checker.notifier.fail_next = 1
    with pytest.raises(RuntimeError, match="notification service down"):
        checker.run(job, fired)
    pending = checker.store.get(NAMESPACE, key(job) + "#pending")
    assert pending["failures"] == 1
    assert "notification service down" in pending["last_error"]
    retried = checker.run(job, fired)  # the runtime's retry of the same fire
    assert retried.status == "changed"
    assert len(checker.notifier.sent) == 1
    assert "+Price: 2 EUR" in checker.notifier.sent[0]["body"]
    checker.run(job, fired)  # a late duplicate
    assert len(checker.notifier.sent) == 1


def test_consumer_ignores_other_job_types(checker: Any) -> None:
    from serverless_scheduler_common import ScheduledJob
    from serverless_scheduler_html_checker.plugin import serverless_scheduler_handle_job

    other = ScheduledJob(
        job_type="other", name="x", schedule={"kind": "rate", "every": 1, "unit": "hours"}
    )
    assert (
        serverless_scheduler_handle_job(
            job=other,
            fired=checker.fired(checker.job("http://x.invalid/")),
            context=checker.context,
        )
        is None
    )


def test_missing_state_store_is_a_clear_error(checker: Any) -> None:
    context = RunContext(settings=Settings(allow_private_networks=True))
    job = checker.job("http://127.0.0.1:1/")
    from serverless_scheduler_html_checker.plugin import check

    with pytest.raises(RuntimeError, match="needs a StateStore"):
        check(job, checker.fired(job), context)


def test_hook_is_reached_through_the_plugin_manager(checker: Any, pages: Any) -> None:
    from serverless_scheduler_common.plugins import build_registry, consumer_for, get_plugin_manager

    pm = get_plugin_manager(settings=Settings())
    registry = build_registry(pm)
    job = registry.parse_job(checker.job(pages.set("/p", page())).snapshot())
    assert isinstance(job, HTMLMonitorJob)
    hook = consumer_for(pm, registry, "html_monitor_job")
    outcome = hook(job=job, fired=checker.fired(job), context=checker.context)
    assert outcome.summary == "baseline recorded"


def test_rewrapped_source_text_is_not_a_change(checker: Any, pages: Any) -> None:
    job = checker.job(
        pages.set("/p", "<html><body><p>Prices start at 10 EUR today</p></body></html>")
    )
    checker.run(job)
    pages.set("/p", "<html><body><p>Prices start\n    at 10 EUR\n  today</p></body></html>")
    assert checker.run(job).summary == "unchanged"
    assert checker.store.get(NAMESPACE, key(job))["lines"] == ["Prices start at 10 EUR today"]
    # inside <pre> a line break is content
    pre = checker.job(pages.set("/pre", "<html><body><pre>a\nb</pre></body></html>"))
    checker.run(pre)
    pages.set("/pre", "<html><body><pre>a b</pre></body></html>")
    assert checker.run(pre).summary == "changed (+1/-2 lines)"


def test_mode_html_ignores_attribute_order_and_whitespace(checker: Any, pages: Any) -> None:
    job = checker.job(
        pages.set("/p", '<html><body><a href="/x" class="c" hidden>Buy now</a></body></html>'),
        mode="html",
    )
    checker.run(job)
    pages.set("/p", '<html><body><a hidden class="c"\n   href="/x">Buy\n now</a></body></html>')
    assert checker.run(job).summary == "unchanged"
    pages.set("/p", '<html><body><a hidden class="c" href="/y">Buy\n now</a></body></html>')
    outcome = checker.run(job)
    # one line changed; it is shown as the page last served it
    assert outcome.summary == "changed (+1/-1 lines)"
    assert '-<a hidden="" class="c" href="/x">Buy now</a>' in outcome.detail
    assert '+<a hidden="" class="c" href="/y">Buy now</a>' in outcome.detail


def test_plain_text_is_compared_as_text_not_markup(checker: Any, pages: Any) -> None:
    job = checker.job(pages.set("/t", "if a < b:\n  <keep> this\n", "text/plain"))
    checker.run(job)
    assert checker.store.get(NAMESPACE, key(job))["lines"] == ["if a < b:", "<keep> this"]
    pages.set("/t", "if a < b:\n  <kept> this\n", "text/plain")
    outcome = checker.run(job)
    assert outcome.status == "changed" and "+<kept> this" in outcome.detail


def test_json_is_compared_by_value(checker: Any, pages: Any) -> None:
    job = checker.job(pages.set("/j", '{"price": 10, "html": "<b>x</b>"}', "application/json"))
    checker.run(job)
    pages.set("/j", '{\n  "html": "<b>x</b>",\n  "price": 10\n}', "application/json")
    assert checker.run(job).summary == "unchanged"  # formatting and key order
    pages.set("/j", '{"price": 10, "html": "<i>x</i>"}', "application/json")
    outcome = checker.run(job)
    assert outcome.summary == "changed (+1/-1 lines)"
    assert '+ "html": "<i>x</i>",' in outcome.detail


def test_snapshot_of_an_older_normaliser_is_not_a_change(checker: Any, pages: Any) -> None:
    job = checker.job(pages.set("/p", "<html><body><p>Price:\n 10 EUR</p></body></html>"))
    checker.run(job)
    # what the previous normaliser stored: the source's line break split the paragraph
    old = checker.store.get(NAMESPACE, key(job))
    del old["normaliser"]
    lines = ["Price:", "10 EUR"]
    text_hash = content_hash("\n".join(lines).encode())
    checker.store.put(
        NAMESPACE, key(job), {**old, "lines": lines, "text_hash": text_hash, "raw_hash": ""}
    )
    assert checker.run(job).summary == "unchanged"
    pages.set("/p", "<html><body><p>Price:\n 12 EUR</p></body></html>")
    assert "+Price: 12 EUR" in checker.run(job).detail
    assert checker.notifier.sent


def test_a_json_snapshot_of_an_older_normaliser_is_a_new_baseline_not_a_change(
    checker: Any, pages: Any
) -> None:
    """The older normaliser read JSON as HTML (one line, entities unescaped); those
    lines cannot be compared with the new ones, and the update alone must not notify."""
    job = checker.job(pages.set("/j", '{"b": 1, "a": "x &amp; y"}', "application/json"))
    checker.run(job)
    old = checker.store.get(NAMESPACE, key(job))
    del old["normaliser"]
    lines = ['{"b": 1, "a": "x & y"}']
    checker.store.put(
        NAMESPACE,
        key(job),
        {**old, "lines": lines, "text_hash": content_hash(lines[0].encode()), "raw_hash": ""},
    )
    outcome = checker.run(job)
    assert (outcome.status, outcome.summary) == (
        "ok",
        "baseline recorded (the checker's comparison was updated)",
    )
    assert checker.notifier.sent == []
    assert checker.store.history(NAMESPACE, key(job)) == []
    pages.set("/j", '{"b": 2, "a": "x &amp; y"}', "application/json")
    changed = checker.run(job)
    assert changed.status == "changed" and '+ "b": 2' in changed.detail


def test_utf16_with_a_declared_charset_is_text(checker: Any, pages: Any) -> None:
    body = "<html><body><p>Grüße</p></body></html>".encode("utf-16-le")
    job = checker.job(pages.set("/u", body, "text/html; charset=utf-16le"))
    assert checker.run(job).summary == "baseline recorded"
    assert checker.store.get(NAMESPACE, key(job))["lines"] == ["Grüße"]


def test_binary_file_labelled_as_html_is_refused(checker: Any, pages: Any) -> None:
    pdf = b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n" + b"1 0 obj << >> endobj\n" * 100 + b"\x00"
    outcome = checker.run(checker.job(pages.set("/doc", pdf, "text/html")))
    assert outcome.summary == "error: the response body is binary, not a text page"


def test_notification_of_a_fire_out_of_retries_is_sent_by_the_next_fire(
    checker: Any, pages: Any
) -> None:
    job = checker.job(pages.set("/p", page(price="1")))
    checker.run(job)
    pages.set("/p", page(price="2"))
    fired = checker.fired(job)
    checker.notifier.fail_next = 3
    for _ in range(3):  # every attempt the runtime makes fails; the fire is dead-lettered
        with pytest.raises(RuntimeError, match="notification service down"):
            checker.run(job, fired)
    assert checker.notifier.sent == []
    assert checker.run(job).summary == "unchanged"  # the next fire: the service is back
    [message] = checker.notifier.sent
    assert "+Price: 2 EUR" in message["body"]
    checker.run(job)
    assert len(checker.notifier.sent) == 1


def test_a_target_that_stays_down_does_not_fail_the_checks_after_the_change(
    checker: Any, pages: Any
) -> None:
    """The change's own fire fails (and is retried); later checks carry its message
    without failing: a dead target must not dead-letter or pause the monitor."""
    job = checker.job(pages.set("/p", page(price="1")))
    checker.run(job)
    pages.set("/p", page(price="2"))
    checker.notifier.fail_next = 100
    with pytest.raises(RuntimeError, match="notification service down"):
        checker.run(job)  # the change's last attempt
    for _ in range(3):
        outcome = checker.run(job)
        assert outcome.status == "ok"
        assert outcome.summary.startswith("unchanged; an earlier change's notification is")
        assert "notification service down" in outcome.summary
    assert checker.notifier.sent == []
    checker.notifier.fail_next = 0
    assert checker.run(job).summary == "unchanged"  # back: sent once, then no more
    [message] = checker.notifier.sent
    assert "+Price: 2 EUR" in message["body"]
    assert checker.run(job).summary == "unchanged"
    assert len(checker.notifier.sent) == 1


@pytest.mark.parametrize(
    "created_at",
    [None, (datetime.now(UTC) - timedelta(days=8)).isoformat(timespec="seconds")],
)
def test_a_stale_undelivered_notification_is_dropped_not_sent(
    checker: Any, pages: Any, created_at: str | None
) -> None:
    """One from before notifications were carried (no created_at), or a week old."""
    job = checker.job(pages.set("/p", page()))
    checker.run(job)
    pending = {"fire_id": "old@1", "title": "t", "body": "stale", "html": "stale"}
    if created_at is not None:
        pending["created_at"] = created_at
    checker.store.put(NAMESPACE, key(job) + "#pending", pending)
    assert checker.run(job).summary == "unchanged"
    assert checker.notifier.sent == []
    assert not checker.store.get(NAMESPACE, key(job) + "#pending")


def test_undelivered_notification_is_folded_into_the_next_change(checker: Any, pages: Any) -> None:
    job = checker.job(pages.set("/p", page(price="1")))
    checker.run(job)
    pages.set("/p", page(price="2"))
    checker.notifier.fail_next = 1
    with pytest.raises(RuntimeError):
        checker.run(job)  # its last attempt
    pages.set("/p", page(price="3"))
    checker.notifier.fail_next = 1
    fired = checker.fired(job)
    with pytest.raises(RuntimeError):
        checker.run(job, fired)  # still down: both changes wait
    assert checker.run(job, fired).status == "changed"  # the retry delivers them together
    [message] = checker.notifier.sent
    assert message["body"].index("+Price: 3 EUR") < message["body"].index("+Price: 2 EUR")
    assert "+Price: 2 EUR" in message["html"] and "+Price: 3 EUR" in message["html"]
