"""Notifications through real apprise, posting to a local endpoint (json://)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Response

from serverless_scheduler_common import RunContext, Settings
from serverless_scheduler_common.notify import AppriseNotifier, NotificationError
from serverless_scheduler_common.state import SqliteStateStore


@pytest.fixture(scope="module")
def _hook_server_process() -> Iterator[HTTPServer]:
    """Its own server: the tests' pages are on pytest-httpserver's `httpserver`."""
    server = HTTPServer(host="127.0.0.1", port=0)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def hook_server(_hook_server_process: HTTPServer) -> Iterator[HTTPServer]:
    _hook_server_process.clear()
    yield _hook_server_process
    _hook_server_process.clear()


def _posts(server: HTTPServer) -> list[dict[str, Any]]:
    return [json.loads(request.get_data()) for request, _ in server.log]


def test_change_notification_carries_the_diff(
    tmp_path: Path, pages: Any, checker: Any, hook_server: HTTPServer
) -> None:
    hook_server.expect_request("/hook", method="POST").respond_with_data("ok")
    settings = Settings(allow_private_networks=True)
    notifier = AppriseNotifier(settings)
    checker.context = RunContext(
        settings=settings, state=SqliteStateStore(tmp_path / "scheduler.db"), notifier=notifier
    )
    notify_url = f"json://127.0.0.1:{hook_server.port}/hook"
    url = pages.set("/p", "<html><body><p>Price: {{ 10 }} EUR</p><p>fixed</p></body></html>")
    job = checker.job(url, notify=[notify_url])
    checker.run(job)
    assert hook_server.log == []  # baseline: nothing sent
    pages.set("/p", "<html><body><p>Price: {{ 12 }} EUR</p><p>fixed</p></body></html>")
    fired = checker.fired(job)
    outcome = checker.run(job, fired)
    assert outcome.summary == "changed (+1/-1 lines)"
    [post] = _posts(hook_server)
    assert post["title"] == "Page changed: watch"
    assert url in post["message"]
    # the diff arrives verbatim: user content is not treated as a template
    assert "-Price: {{ 10 }} EUR" in post["message"]
    assert "+Price: {{ 12 }} EUR" in post["message"]
    # a duplicate delivery of the same fire notifies once
    checker.run(job, fired)
    assert len(hook_server.log) == 1


def test_notifier_raises_when_no_url_accepts(hook_server: HTTPServer) -> None:
    hook_server.expect_request("/hook").respond_with_data("broken", status=500)
    notifier = AppriseNotifier(Settings(allow_private_networks=True))
    with pytest.raises(NotificationError, match=r"notify\[0\] \(json://\) was not accepted"):
        notifier.notify([f"json://127.0.0.1:{hook_server.port}/hook"], title="t", body="b")


def test_one_working_url_is_enough(hook_server: HTTPServer) -> None:
    hook_server.expect_request("/hook").respond_with_data("ok")
    notifier = AppriseNotifier(Settings(allow_private_networks=True))
    notifier.notify(
        ["not a url at all", f"json://127.0.0.1:{hook_server.port}/hook"], title="t", body="b"
    )
    assert _posts(hook_server)[0]["message"] == "b"


def test_a_url_that_refuses_fails_the_send_and_names_the_ones_that_took_it(
    hook_server: HTTPServer,
) -> None:
    hook_server.expect_request("/good").respond_with_data("ok")
    hook_server.expect_request("/bad").respond_with_data("down", status=503)
    good = f"json://127.0.0.1:{hook_server.port}/good"
    bad = f"json://127.0.0.1:{hook_server.port}/bad"
    notifier = AppriseNotifier(Settings(allow_private_networks=True))
    with pytest.raises(NotificationError, match=r"notify\[1\] \(json://\) was not accepted") as err:
        notifier.notify([good, bad, "not a url at all"], title="t", body="b")
    assert err.value.delivered == (good,)


def test_a_change_reaches_a_url_that_was_down_without_repeating_the_others(
    tmp_path: Path, checker: Any, pages: Any, hook_server: HTTPServer
) -> None:
    """Two notify URLs, one down: the fire fails (the runtime retries it) and its retry
    sends to the one that was down only."""
    bad_status = [503]
    hook_server.expect_request("/good").respond_with_data("ok")
    hook_server.expect_request("/bad").respond_with_handler(
        lambda request: Response("state", status=bad_status[0])
    )
    settings = Settings(allow_private_networks=True)
    checker.context = RunContext(
        settings=settings,
        state=SqliteStateStore(tmp_path / "scheduler.db"),
        notifier=AppriseNotifier(settings),
    )
    good = f"json://127.0.0.1:{hook_server.port}/good"
    bad = f"json://127.0.0.1:{hook_server.port}/bad"
    job = checker.job(pages.set("/p", "<p>10 EUR</p>"), notify=[good, bad])
    checker.run(job)
    pages.set("/p", "<p>12 EUR</p>")
    fired = checker.fired(job)
    with pytest.raises(NotificationError, match=r"notify\[1\]"):
        checker.run(job, fired)
    # The retry sends to the one that was down only, and its error names it as the job
    # does: notify[1], not the first of what is left.
    with pytest.raises(NotificationError, match=r"^notify\[1\] \(json://\) was not accepted$"):
        checker.run(job, fired)
    bad_status[0] = 200
    assert checker.run(job, fired).summary == "changed (+1/-1 lines)"  # the retry
    paths = [request.path for request, _ in hook_server.log]
    assert paths.count("/good") == 1
    assert paths.count("/bad") == 3  # refused twice, then delivered
    checker.run(job, fired)  # a later duplicate sends nothing
    assert len(hook_server.log) == 4


def test_private_webhook_destinations_are_refused_by_default(
    hook_server: HTTPServer, caplog: pytest.LogCaptureFixture
) -> None:
    notifier = AppriseNotifier(Settings())
    secret_url = f"json://user:s3cretpw@127.0.0.1:{hook_server.port}/hook"
    with pytest.raises(NotificationError, match="loopback"):
        notifier.notify([secret_url], title="t", body="b")
    assert hook_server.log == []
    assert "s3cretpw" not in caplog.text


def test_long_bodies_are_truncated(hook_server: HTTPServer) -> None:
    hook_server.expect_request("/hook").respond_with_data("ok")
    notifier = AppriseNotifier(Settings(allow_private_networks=True))
    notifier.notify(
        [f"json://127.0.0.1:{hook_server.port}/hook"], title="x" * 1000, body="y" * 100_000
    )
    [post] = _posts(hook_server)
    assert len(post["message"]) <= 32 * 1024
    assert post["message"].endswith("[truncated]")
    assert len(post["title"]) <= 250


# -- SSRF: apprise services that make their own connections --------------------------------
@pytest.fixture
def forbidden_server(second_loopback_server: HTTPServer) -> Iterator[HTTPServer]:
    before = second_loopback_server.no_handler_status_code
    second_loopback_server.clear()
    second_loopback_server.no_handler_status_code = 200
    yield second_loopback_server
    second_loopback_server.clear()
    second_loopback_server.no_handler_status_code = before


@pytest.mark.parametrize(
    "template",
    [
        "ntfy://{host}/topic",
        "gotify://{host}/tokentokentoken",
        "apprise://{host}/token",
        "rocket://user:pass@{host}/room",
        "matrix://user:pass@{host}/room",
        "ntfy://localhost:{port}/topic",  # a name resolving to loopback
        " json://{host}/hook",  # leading space: apprise strips it
        "mailto://user:pw@{host}?from=a@example.org&to=b@example.org",  # SMTP
    ],
)
def test_every_apprise_service_is_held_to_the_address_policy(
    forbidden_server: HTTPServer, template: str, caplog: pytest.LogCaptureFixture
) -> None:
    host = f"127.0.0.2:{forbidden_server.port}"
    url = template.format(host=host, port=forbidden_server.port)
    with pytest.raises(NotificationError, match=r"loopback|not allowed"):
        AppriseNotifier(Settings()).notify([url], title="t", body="b")
    assert forbidden_server.log == []


def test_a_redirect_from_an_allowed_hook_into_private_space_is_refused(
    hook_server: HTTPServer, forbidden_server: HTTPServer
) -> None:
    """127.0.0.1 stands in for a public host (trusted); it redirects to 127.0.0.2."""
    hook_server.expect_request("/hook").respond_with_data(
        "", status=307, headers={"Location": forbidden_server.url_for("/steal")}
    )
    notifier = AppriseNotifier(Settings(), trusted_networks=["127.0.0.1/32"])
    with pytest.raises(NotificationError, match=r"notify\[0\] \(json://\) .*127\.0\.0\.2"):
        notifier.notify([f"json://127.0.0.1:{hook_server.port}/hook"], title="t", body="b")
    assert len(hook_server.log) >= 1
    assert forbidden_server.log == []


def test_a_refused_service_does_not_fail_a_message_another_url_delivered(
    hook_server: HTTPServer, forbidden_server: HTTPServer
) -> None:
    hook_server.expect_request("/hook").respond_with_data("ok")
    notifier = AppriseNotifier(Settings(), trusted_networks=["127.0.0.1/32"])
    notifier.notify(
        [
            f"ntfy://127.0.0.2:{forbidden_server.port}/t",
            f"json://127.0.0.1:{hook_server.port}/hook",
        ],
        title="t",
        body="b",
    )
    assert _posts(hook_server)[0]["message"] == "b"
    assert forbidden_server.log == []
