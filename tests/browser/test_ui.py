"""The web UI in Chromium against local mode: the daily loop, actions, safety, screenshots."""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from pytest_httpserver import HTTPServer

from .conftest import LiveSystem

pytestmark = pytest.mark.browser

XSS = "<img src=x onerror=alert(1)>"


def _serve_page(httpserver: HTTPServer, path: str, body: str) -> str:
    httpserver.expect_request(path).respond_with_data(body, content_type="text/html; charset=utf-8")
    return httpserver.url_for(path)


def _replace_page(httpserver: HTTPServer, path: str, body: str) -> None:
    httpserver.handlers[:] = [h for h in httpserver.handlers if h.matcher.uri != path]
    httpserver.expect_request(path).respond_with_data(body, content_type="text/html; charset=utf-8")


def _next_second() -> None:
    """A manual fire's id is the job and the second it was asked for: start the next
    fire in a new second, or the runtime takes it for a duplicate of the previous one."""
    time.sleep(1.05 - (time.time() % 1))


def _sign_in(page: Any, system: LiveSystem) -> None:
    page.goto(f"{system.base_url}/#token={system.admin_token}")
    page.wait_for_selector("#nav:not([hidden])")


def _create_job(system: LiveSystem, **fields: Any) -> dict[str, Any]:
    body = {"schedule": {"kind": "rate", "every": 1, "unit": "days"}, "enabled": True, **fields}
    response = system.api("POST", "/jobs", json=body)
    assert response.status_code == 201, response.text
    return response.json()


def _delete_all(system: LiveSystem) -> None:
    for job in system.api("GET", "/jobs").json()["items"]:
        system.api("DELETE", f"/jobs/{job['job_id']}")


def test_sign_in_rejects_a_bad_token_and_accepts_the_admin_token(
    page: Any, live_system: LiveSystem
) -> None:
    _delete_all(live_system)
    response = page.goto(live_system.base_url + "/")
    csp = response.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp
    page.fill("#token", "sst_0000000000000000_" + "x" * 43)
    page.click("#signin")
    page.wait_for_selector("text=That token was not accepted.")
    page.fill("#token", live_system.admin_token)
    page.click("#signin")
    page.wait_for_selector("text=No monitors yet")
    assert page.evaluate("sessionStorage.getItem('scheduler.token')") == live_system.admin_token
    assert page.console_errors == []


def test_create_run_change_diff_pause_resume_delete(
    page: Any, live_system: LiveSystem, httpserver: HTTPServer, screenshots: Path
) -> None:
    _delete_all(live_system)
    url = _serve_page(
        httpserver,
        "/pricing",
        "<html><body><h1>Pricing</h1><p>Basic plan: 10 EUR</p></body></html>",
    )
    _sign_in(page, live_system)
    page.click("#empty-new")
    page.wait_for_selector("form.job-form")

    # The API's 422 details land next to the fields they name.
    page.fill("#f-name", "Pricing page")
    page.fill("#f-url", "not a url")
    page.check("input[name=schedule-kind][value=cron]")
    page.fill("#f-schedule-expression", "0 9 * *")
    page.click("#save")
    url_error = page.locator("[data-path=url] > .error")
    url_error.wait_for()
    assert url_error.inner_text().strip()
    schedule_error = page.locator("[data-path=schedule] > .error")
    assert "5 fields" in schedule_error.inner_text()

    page.fill("#f-url", url)
    assert page.locator("[data-path=url].invalid").count() == 0
    page.fill("#f-schedule-expression", "0 9 * * 1-5")
    page.fill("#f-schedule-timezone", "Europe/Warsaw")
    assert "weekdays at 09:00 Europe/Warsaw" in page.inner_text("#schedule-preview")
    page.check("input[name=schedule-kind][value=rate]")
    page.fill("#f-schedule-every", "6")
    page.select_option("#f-schedule-unit", "hours")
    assert "every 6 hours" in page.inner_text("#schedule-preview")
    page.screenshot(path=str(screenshots / "form.png"), full_page=True)
    page.click("#save")
    page.wait_for_selector("#job-title")
    assert page.inner_text("#job-title") == "Pricing page"
    assert page.inner_text("#schedule-words") == "every 6 hours"
    job_id = re.search(r"#/jobs/([^/]+)$", page.url).group(1)

    # First run records the page; the second, after the page changed, shows the diff.
    page.click("#run-now")
    page.wait_for_selector("tr[data-status=ok]")
    _replace_page(
        httpserver,
        "/pricing",
        "<html><body><h1>Pricing</h1><p>Basic plan: 12 EUR</p><p>New: Team plan</p></body></html>",
    )
    _next_second()
    page.click("#run-now")
    page.wait_for_selector("tr[data-status=changed]")
    added = page.locator("#diff .diff-add .code").all_inner_texts()
    removed = page.locator("#diff .diff-del .code").all_inner_texts()
    assert any("12 EUR" in line for line in added)
    assert any("10 EUR" in line for line in removed)
    assert page.locator(".chart rect.bar").count() == 2
    page.locator("#diff").scroll_into_view_if_needed()
    page.screenshot(path=str(screenshots / "diff.png"), full_page=True)

    # Pause and resume go through PUT and show up in the page and the API.
    page.click("#toggle")
    page.wait_for_selector(".job-header .pill.paused")
    assert live_system.api("GET", f"/jobs/{job_id}").json()["enabled"] is False
    page.click("#toggle")
    page.wait_for_selector(".job-header .pill.active")
    assert live_system.api("GET", f"/jobs/{job_id}").json()["enabled"] is True

    # The list shows the monitor with its schedule in words and its last run.
    _create_job(
        live_system,
        job_type="html_monitor_job",
        name="Release notes",
        url=httpserver.url_for("/notes"),
        schedule={"kind": "cron", "expression": "0 9 * * 1-5", "timezone": "Europe/Warsaw"},
    )
    _create_job(
        live_system,
        job_type="html_monitor_job",
        name="Status page",
        url=httpserver.url_for("/status"),
        enabled=False,
        schedule={"kind": "rate", "every": 5, "unit": "minutes"},
    )
    page.click("a.brand")
    page.wait_for_selector("table.jobs")
    row = page.locator(f"tr[data-job-id='{job_id}']")
    row.locator(".last-run .badge").wait_for()
    assert row.locator(".last-run .badge").inner_text() == "changed"
    assert "weekdays at 09:00 Europe/Warsaw" in page.inner_text("table.jobs")
    assert "every 5 minutes" in page.inner_text("table.jobs")
    page.fill("#filter", "release")
    assert page.locator("table.jobs tbody tr:visible").count() == 1
    page.fill("#filter", "")
    page.click("#flash button")
    page.screenshot(path=str(screenshots / "list.png"), full_page=True)
    for name in ("form.png", "diff.png", "list.png"):
        assert (screenshots / name).read_bytes().startswith(b"\x89PNG"), name

    # Delete asks first (an in-page dialog) and then removes the monitor.
    page.click(f"tr[data-job-id='{job_id}'] a.job-name")
    page.wait_for_selector("#delete")
    page.click("#delete")
    page.click("#confirm button[value=cancel]")
    assert live_system.api("GET", f"/jobs/{job_id}").status_code == 200
    page.click("#delete")
    page.click("#confirm-ok")
    page.wait_for_selector("table.jobs")
    assert page.locator(f"tr[data-job-id='{job_id}']").count() == 0
    assert live_system.api("GET", f"/jobs/{job_id}").status_code == 404
    assert page.dialogs == []
    assert page.console_errors == []


def test_hostile_name_and_diff_are_shown_as_text(
    page: Any, live_system: LiveSystem, httpserver: HTTPServer
) -> None:
    _delete_all(live_system)
    url = _serve_page(httpserver, "/hostile", "<html><body><p>calm</p></body></html>")
    job = _create_job(live_system, job_type="html_monitor_job", name=XSS, url=url, mode="html")
    live_system.api("POST", f"/jobs/{job['job_id']}/run")
    live_system.wait_for_runs(job["job_id"], 1)
    _replace_page(
        httpserver,
        "/hostile",
        f"<html><body><p>calm</p><p>{XSS}</p><p>&lt;script&gt;alert(2)&lt;/script&gt;</p></body></html>",
    )
    _next_second()
    live_system.api("POST", f"/jobs/{job['job_id']}/run")
    runs = live_system.wait_for_runs(job["job_id"], 2)
    assert runs[0]["status"] == "changed", runs[0]

    _sign_in(page, live_system)
    page.wait_for_selector("table.jobs")
    assert page.locator("a.job-name").inner_text() == XSS
    page.click("a.job-name")
    page.wait_for_selector("#diff .diff-add")
    assert page.inner_text("#job-title") == XSS
    added = "\n".join(page.locator("#diff .diff-add .code").all_inner_texts())
    # mode=html keeps the markup (normalised with quoted attributes): shown as text.
    assert '<img src="x" onerror="alert(1)">' in added
    # Nothing the page or the name carried became an element.
    assert page.locator("#app img").count() == 0
    assert page.locator("#app script").count() == 0
    page.wait_for_timeout(300)
    assert page.dialogs == []


def test_a_change_whose_notification_failed_is_listed_in_the_history(
    page: Any, live_system: LiveSystem, httpserver: HTTPServer
) -> None:
    """The change history comes from the checker's own records, not from the runs: a
    change whose notification could not be sent (its run is an `error`) is listed with
    its diff."""
    _delete_all(live_system)
    url = _serve_page(httpserver, "/plans", "<html><body><p>Plans: Basic</p></body></html>")
    httpserver.expect_request("/hook-down").respond_with_data("down", status=500)
    job = _create_job(
        live_system,
        job_type="html_monitor_job",
        name="Plans",
        url=url,
        notify=[f"json://127.0.0.1:{httpserver.port}/hook-down"],
    )
    live_system.api("POST", f"/jobs/{job['job_id']}/run")
    live_system.wait_for_runs(job["job_id"], 1)
    _replace_page(httpserver, "/plans", "<html><body><p>Plans: Basic, Team</p></body></html>")
    _next_second()
    live_system.api("POST", f"/jobs/{job['job_id']}/run")
    runs = live_system.wait_for_runs(job["job_id"], 2)
    assert [r["status"] for r in runs] == ["error", "ok"], runs

    _sign_in(page, live_system)
    page.goto(f"{live_system.base_url}/#/jobs/{job['job_id']}")
    page.wait_for_selector("#diff .diff-add")
    items = page.locator("ol.changes li")
    assert items.count() == 1
    assert "changed (+1/-1 lines)" in items.first.inner_text()
    assert items.first.locator(".badge.status-error").inner_text() == "run failed"
    assert "Plans: Basic, Team" in "\n".join(
        page.locator("#diff .diff-add .code").all_inner_texts()
    )
    assert "changed (+1/-1 lines)" in page.inner_text("#diff")
    assert page.console_errors == []


def test_only_http_urls_become_links(page: Any, live_system: LiveSystem) -> None:
    _sign_in(page, live_system)
    result = page.evaluate(
        """async () => {
            const { externalLink, safeHref } = await import('/js/dom.js');
            const bad = externalLink('javascript:alert(1)');
            const good = externalLink('https://example.com/a');
            return {
              bad: [bad.tagName, bad.getAttribute('href'), bad.textContent],
              good: [good.tagName, good.getAttribute('href')],
              data: safeHref('data:text/html,hi'),
            };
        }"""
    )
    assert result["bad"] == ["SPAN", None, "javascript:alert(1)"]
    assert result["good"] == ["A", "https://example.com/a"]
    assert result["data"] is None


def test_schedules_in_words_and_next_run(page: Any, live_system: LiveSystem) -> None:
    _sign_in(page, live_system)
    result = page.evaluate(
        """async () => {
            const { describeSchedule, nextRun } = await import('/js/schedule.js');
            const cron = (expression, timezone) => ({ kind: 'cron', expression, timezone });
            const words = [
              { kind: 'rate', every: 5, unit: 'minutes' },
              { kind: 'rate', every: 1, unit: 'hours' },
              cron('0 9 * * 1-5', 'Europe/Warsaw'),
              cron('30 7 * * *', 'UTC'),
              cron('0 18 * * 6,0', 'America/New_York'),
              cron('*/15 * * * *', 'UTC'),
              cron('0 8 1 * *', 'UTC'),
            ].map(describeSchedule);
            // Friday 2026-03-27 10:00 UTC: next weekday 09:00 Warsaw is Monday 07:00 UTC
            // (Warsaw moves to summer time on Sunday the 29th).
            const now = new Date('2026-03-27T10:00:00Z');
            const job = (schedule, extra = {}) => ({ schedule, enabled: true, ...extra });
            return {
              words,
              cron: nextRun(job(cron('0 9 * * 1-5', 'Europe/Warsaw')), now).toISOString(),
              rate: nextRun(job({ kind: 'rate', every: 5, unit: 'minutes' },
                                { created_at: '2026-03-27T09:58:00Z' }), now).toISOString(),
              paused: nextRun(job({ kind: 'rate', every: 5, unit: 'minutes' }, { enabled: false }), now),
              past: nextRun(job({ kind: 'at', at: '2026-03-01T00:00:00Z' }), now),
              // Warsaw's clock changes: 02:30 does not exist on 29 March, and comes twice
              // on 25 October (it fires once, in summer time, as on EventBridge).
              spring: nextRun(job(cron('30 2 * * *', 'Europe/Warsaw')),
                              new Date('2026-03-28T12:00:00Z')).toISOString(),
              autumn: nextRun(job(cron('30 2 * * *', 'Europe/Warsaw')),
                              new Date('2026-10-25T00:45:00Z')).toISOString(),
              every20: nextRun(job(cron('*/20 * * * *', 'Europe/Warsaw')),
                               new Date('2026-10-25T00:45:00Z')).toISOString(),
            };
        }"""
    )
    assert result["words"] == [
        "every 5 minutes",
        "every hour",
        "weekdays at 09:00 Europe/Warsaw",
        "every day at 07:30 UTC",
        "weekends at 18:00 America/New_York",
        "every 15 minutes",
        "on day 1 of every month at 08:00 UTC",
    ]
    assert result["cron"] == "2026-03-30T07:00:00.000Z"
    assert result["rate"] == "2026-03-27T10:03:00.000Z"
    assert result["paused"] is None
    assert result["past"] is None
    assert result["spring"] == "2026-03-30T00:30:00.000Z"
    assert result["autumn"] == "2026-10-26T01:30:00.000Z"
    assert result["every20"] == "2026-10-25T02:00:00.000Z"  # 03:00 CET


def test_the_detail_view_shows_when_the_schedule_is_active(
    page: Any, live_system: LiveSystem, httpserver: HTTPServer
) -> None:
    start = datetime.now(UTC) + timedelta(days=7)
    end = start + timedelta(days=30)
    schedule = {
        "kind": "rate",
        "every": 1,
        "unit": "days",
        "start_at": start.isoformat(),
        "end_at": end.isoformat(),
    }
    job = _create_job(
        live_system,
        job_type="html_monitor_job",
        name="Windowed",
        url=httpserver.url_for("/windowed"),
        schedule=schedule,
    )
    _sign_in(page, live_system)
    page.goto(f"{live_system.base_url}/#/jobs/{job['job_id']}")
    window = page.locator("#schedule-window")
    window.wait_for()
    text = window.inner_text()
    assert text.startswith("from ") and " until " in text
    assert str(start.year) in text and str(end.day) in text
    assert page.console_errors == []


def test_edit_keeps_the_job_and_saves_changes(
    page: Any, live_system: LiveSystem, httpserver: HTTPServer
) -> None:
    _delete_all(live_system)
    job = _create_job(
        live_system,
        job_type="html_monitor_job",
        name="Docs",
        url=httpserver.url_for("/docs"),
        css_selector="#main",
        ignore_patterns=["\\d+ visitors"],
        schedule={"kind": "cron", "expression": "0 9 * * 1-5", "timezone": "Europe/Warsaw"},
    )
    _sign_in(page, live_system)
    page.goto(f"{live_system.base_url}/#/jobs/{job['job_id']}/edit")
    page.wait_for_selector("form.job-form")
    assert page.input_value("#f-css_selector") == "#main"
    assert page.input_value("#f-ignore_patterns") == "\\d+ visitors"
    assert page.input_value("#f-schedule-timezone") == "Europe/Warsaw"
    assert page.is_disabled("#f-job_type")
    page.fill("#f-name", "Docs home")
    page.fill("#f-ignore_patterns", "\\d+ visitors\nupdated .*")
    page.click("#save")
    page.wait_for_selector("#job-title")
    assert page.inner_text("#job-title") == "Docs home"
    stored = live_system.api("GET", f"/jobs/{job['job_id']}").json()
    assert stored["name"] == "Docs home"
    assert stored["ignore_patterns"] == ["\\d+ visitors", "updated .*"]
    assert stored["css_selector"] == "#main"
    assert stored["schedule"]["expression"] == "0 9 * * 1-5"
    assert stored["version"] == job["version"] + 1


def _new_monitor_form(page: Any, live_system: LiveSystem, name: str, url: str) -> None:
    """Signed in, no jobs, the new-monitor form open with its name and URL filled."""
    _delete_all(live_system)
    _sign_in(page, live_system)
    page.goto(f"{live_system.base_url}/#/new")
    page.wait_for_selector("form.job-form")
    page.fill("#f-name", name)
    page.fill("#f-url", url)


def test_cron_preview_names_the_invalid_field_at_once(
    page: Any, live_system: LiveSystem, httpserver: HTTPServer
) -> None:
    _new_monitor_form(page, live_system, "Cron check", httpserver.url_for("/cron"))
    page.check("input[name=schedule-kind][value=cron]")
    preview = page.locator("#schedule-preview")
    for expression, problem in [
        ("61 * * * *", "minute 61 is out of range 0-59"),
        ("60 9 * * *", "minute 60 is out of range 0-59"),
        ("0 25 * * *", "hour 25 is out of range 0-23"),
        ("0 0 0 * *", "day-of-month 0 is out of range 1-31"),
        ("0 0 * 13 *", "month 13 is out of range 1-12"),
        ("0 0 * * 8", "day-of-week 8 is out of range 0-7"),
        ("*/0 * * * *", "minute step “0” must be a whole number above 0"),
        ("0 9-5 * * *", "hour range 9-5 runs backwards; write it as two ranges, e.g. 9-23,0-5"),
        (
            "0 0 * * FRI-MON",
            "day-of-week range FRI-MON runs backwards; write it as two ranges, e.g. FRI-SAT,SUN-MON",
        ),
        (
            "0 0 * NOV-FEB *",
            "month range NOV-FEB runs backwards; write it as two ranges, e.g. NOV-DEC,JAN-FEB",
        ),
        ("0 0 * foo *", "month value “foo” is not understood"),
    ]:
        started = time.monotonic()
        page.fill("#f-schedule-expression", expression)
        # Before the fix the first of these froze the tab for over a minute.
        preview.filter(has_text=f"Invalid cron expression: {problem}").wait_for()
        assert time.monotonic() - started < 5, expression
    # Valid expressions that fire rarely or never answer at once, too.
    page.fill("#f-schedule-expression", "0 0 31 2 *")
    preview.filter(has_text="no fire time found in the next 8 years").wait_for(timeout=5_000)
    page.fill("#f-schedule-expression", "0 12 * jan-mar mon")
    preview.filter(has_text="next:").wait_for(timeout=5_000)
    # A day-of-week range may end on Sunday (the server accepts it too).
    page.fill("#f-schedule-expression", "0 12 * * fri-sun")
    preview.filter(has_text="next:").wait_for(timeout=5_000)
    words = page.evaluate(
        """async () => {
            const { describeSchedule } = await import('/js/schedule.js');
            return describeSchedule({ kind: 'cron', expression: '0 12 * * fri-sun', timezone: 'UTC' });
        }"""
    )
    assert words.startswith("every Friday, Saturday, Sunday"), words
    weekend = page.evaluate(
        """async () => {
            const { nextRun } = await import('/js/schedule.js');
            const job = { enabled: true,
              schedule: { kind: 'cron', expression: '0 12 * * fri-sun', timezone: 'UTC' } };
            return ['2026-03-26T13:00:00Z', '2026-03-28T13:00:00Z', '2026-03-29T13:00:00Z']
              .map((t) => nextRun(job, new Date(t)).toISOString());
        }"""
    )
    assert weekend == [
        "2026-03-27T12:00:00.000Z",  # Thursday -> Friday
        "2026-03-29T12:00:00.000Z",  # Saturday -> Sunday
        "2026-04-03T12:00:00.000Z",  # Sunday -> next Friday
    ]
    result = page.evaluate(
        """async () => {
            const { nextRun } = await import('/js/schedule.js');
            const job = (expression) => ({
              enabled: true, schedule: { kind: 'cron', expression, timezone: 'Europe/Warsaw' } });
            const now = new Date('2026-03-27T10:00:00Z');
            const started = performance.now();
            const never = nextRun(job('0 0 30 2 *'), now);
            const leap = nextRun(job('0 0 29 2 *'), now).toISOString();
            return { never, leap, ms: performance.now() - started };
        }"""
    )
    assert result["never"] is None
    assert result["leap"] == "2028-02-28T23:00:00.000Z"
    assert result["ms"] < 1000, result

    # The server's 422 still lands under the schedule on submit.
    page.fill("#f-schedule-expression", "61 * * * *")
    page.click("#save")
    schedule_error = page.locator("[data-path=schedule] > .error")
    schedule_error.filter(has_text="not a valid cron expression").wait_for()
    assert "Invalid cron expression: minute 61" in preview.inner_text()
    assert live_system.api("GET", "/jobs").json()["items"] == []
    assert page.console_errors == []


def test_header_lines_without_a_colon_block_submission(
    page: Any, live_system: LiveSystem, httpserver: HTTPServer
) -> None:
    _new_monitor_form(page, live_system, "With headers", httpserver.url_for("/headers"))
    page.fill("#f-headers", "Accept: text/html\n\nno colon line\n: no name")
    page.click("#save")
    headers_error = page.locator("[data-path=headers] > .error")
    headers_error.filter(has_text="lines 3, 4 are not in the form “Name: value”").wait_for()
    assert page.locator("[data-path=headers].invalid").count() == 1
    assert page.url.endswith("#/new")
    assert live_system.api("GET", "/jobs").json()["items"] == []

    page.fill("#f-headers", "Accept: text/html\n\nX-Token: a:b")
    page.click("#save")
    page.wait_for_selector("#job-title")
    job_id = re.search(r"#/jobs/([^/]+)$", page.url).group(1)
    stored = live_system.api("GET", f"/jobs/{job_id}").json()
    assert stored["name"] == "With headers"
    # Values are secrets (masked on the way out); the names show both lines were kept.
    assert sorted(stored["headers"]) == ["Accept", "X-Token"]
    assert page.console_errors == []


def test_a_sign_in_link_with_another_token_asks_before_it_switches(
    page: Any, live_system: LiveSystem
) -> None:
    """Someone else's link must not sign a signed-in tab into their account unasked."""
    _delete_all(live_system)
    _sign_in(page, live_system)
    page.wait_for_selector("text=No monitors yet")
    # The tab's answers to the question, recorded with it.
    page.evaluate(
        """() => { window.asked = []; window.answer = false;
                   window.confirm = (text) => { window.asked.push(text); return window.answer; }; }"""
    )
    switch = "token => { location.hash = '#token=' + token; }"
    token = "() => sessionStorage.getItem('scheduler.token')"
    page.evaluate(switch, live_system.other_token)
    page.wait_for_function("() => window.asked.length === 1 && location.hash === '#/'")
    assert page.evaluate(token) == live_system.admin_token  # declined: still signed in as before
    assert "another API token" in page.evaluate("() => window.asked[0]")
    page.evaluate("() => { window.answer = true; }")
    page.evaluate(switch, live_system.other_token)
    page.wait_for_function(
        "t => sessionStorage.getItem('scheduler.token') === t", arg=live_system.other_token
    )
    page.evaluate(switch, live_system.other_token)  # the token it has: no question
    page.wait_for_function("() => location.hash === '#/'")
    page.wait_for_selector("text=No monitors yet")
    assert page.evaluate("() => window.asked.length") == 2
    assert page.console_errors == []


def test_sign_in_link_pasted_into_an_open_tab_signs_in(page: Any, live_system: LiveSystem) -> None:
    _delete_all(live_system)
    page.goto(live_system.base_url + "/")
    page.wait_for_selector("#token")
    # Pasting the link into the address bar of this tab changes only the fragment.
    page.evaluate("token => { location.hash = '#token=' + token; }", live_system.admin_token)
    page.wait_for_selector("text=No monitors yet")
    assert page.is_visible("#nav")
    assert "token" not in page.url
    assert page.url.endswith("/#/")
    assert page.evaluate("sessionStorage.getItem('scheduler.token')") == live_system.admin_token
    assert page.console_errors == []
