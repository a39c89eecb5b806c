"""Entry-point module of the HTML change checker plugin: the job type and its consumer.

One check: fetch (conditional GET) -> if the raw body hashes the same as last time,
stop (no parse) -> normalise -> compare with the stored snapshot -> on a change, store
the snapshot and a history entry, then notify once per fire.

Idempotency per `fired.fire_id`: the snapshot remembers the last fire it handled and
its outcome (a duplicate delivery returns that outcome without fetching), and a change
that still has to be announced is stored as a small `pending` record before the new
snapshot and before any notification is sent; it is cleared only after the send
succeeded. Delivery is therefore at least once: a crash between a successful send and
clearing `pending` re-sends on the retry, but a crash never loses a notification, and a
fire that completed never notifies again. Concurrent deliveries of one fire cannot both
send: the runtime runs a fire under its per-job (or per-fire) lock. A failed send records
the failure and raises, and the runtime's retry resumes the pending notification.
"""

from __future__ import annotations

import contextlib
import functools
import html as html_lib
import logging
import re
from datetime import UTC, datetime
from typing import Any, ClassVar, Literal

from pydantic import AnyHttpUrl, Field, field_validator

from serverless_scheduler_common import (
    JobFired,
    JobTypeRegistry,
    RunContext,
    RunOutcome,
    ScheduledJob,
    hookimpl,
)
from serverless_scheduler_common.headers import headers_problem
from serverless_scheduler_common.ports import StateStore

from .diff import LineDiff, line_diff
from .normalise import (
    NORMALISER_VERSION,
    content_hash,
    css_selector_problem,
    markup_key,
    same_text,
    xpath_problem,
)

log = logging.getLogger(__name__)

#: StateStore namespace of this plugin.
NAMESPACE = "html_checker"
#: Changes kept per job in the history.
HISTORY_KEEP = 50
#: Largest text (and HTML) body a pending notification keeps while it accumulates the
#: changes of fires that could not deliver it.
PENDING_BODY_CHARS = 64 * 1024
#: Longest time a notification no fire could deliver is carried to the next fires.
CARRY_MAX_AGE_S = 7 * 86_400
_APPRISE_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]{0,30}://\S+$")


@functools.lru_cache(maxsize=4096)
def _pattern(text: str) -> Any:
    """`text` compiled by the `regex` package (`re`'s syntax, `regex.V0`), cached: every
    fire validates its job's patterns and a changed page applies them, and the monitors
    of one deployment may hold thousands of distinct patterns (past a cache, a compile
    costs about 0.1 ms, a fifth of an unchanged check).

    `regex` rather than `re` because a search can be given a timeout: a pattern that
    backtracks catastrophically on some page (`(a+)+$`) would otherwise hold the
    worker, and with `re` the whole process's interpreter lock, for as long as it runs
    (see `normalise.IGNORE_BUDGET_S`). Imported on use: the API loads this module for
    the job class alone.
    """
    import regex

    return regex.compile(text, flags=regex.V0)


class HTMLMonitorJob(ScheduledJob):
    """Watch a web page (or part of it) and notify when its content changes."""

    secret_fields: ClassVar[frozenset[str]] = frozenset({"headers", "notify"})

    job_type: Literal["html_monitor_job"] = "html_monitor_job"
    url: AnyHttpUrl = Field(description="http(s) URL of the page to watch.")
    css_selector: str | None = Field(default=None, max_length=500)
    xpath: str | None = Field(default=None, max_length=500)
    mode: Literal["text", "html"] = "text"
    ignore_patterns: list[str] = Field(default_factory=list, max_length=50)
    trigger_text: str | None = Field(default=None, max_length=500)
    headers: dict[str, str] = Field(default_factory=dict)
    notify: list[str] = Field(default_factory=list, max_length=20, description="apprise URLs")

    @field_validator("ignore_patterns")
    @classmethod
    def _patterns_compile(cls, value: list[str]) -> list[str]:
        for i, pattern in enumerate(value):
            try:
                _pattern(pattern)
            except Exception as exc:  # regex.error; the package loads on use
                raise ValueError(f"ignore_patterns[{i}] is not a valid regex: {exc}") from exc
        return value

    @field_validator("css_selector")
    @classmethod
    def _css_selector_parses(cls, value: str | None) -> str | None:
        # An empty selector means "the whole body" to the checker, as None does.
        problem = css_selector_problem(value) if value else None
        if problem is not None:
            raise ValueError(problem)
        return value

    @field_validator("xpath")
    @classmethod
    def _xpath_compiles(cls, value: str | None) -> str | None:
        problem = xpath_problem(value) if value else None
        if problem is not None:
            raise ValueError(problem)
        return value

    @field_validator("headers")
    @classmethod
    def _headers_are_sendable(cls, value: dict[str, str]) -> dict[str, str]:
        problem = headers_problem(value, "the checker")
        if problem is not None:
            raise ValueError(problem)
        return value

    @field_validator("notify")
    @classmethod
    def _notify_are_apprise_urls(cls, value: list[str]) -> list[str]:
        for i, url in enumerate(value):
            # The URL itself is a secret: the message names the position, not the value.
            if not _APPRISE_URL.match(url) or len(url) > 2048:
                raise ValueError(f"notify[{i}] is not an apprise URL (scheme://...)")
        return value


@hookimpl
def serverless_scheduler_job_types(registry: JobTypeRegistry) -> None:
    registry.add(HTMLMonitorJob)


@hookimpl
def serverless_scheduler_forget_job(
    owner_id: str, job_id: str, job_type: str, state: StateStore
) -> None:
    """A deleted monitor's last page text, change history and pending notification go."""
    if job_type != HTMLMonitorJob.model_fields["job_type"].default:
        return
    key = f"{owner_id}/{job_id}"
    state.forget(NAMESPACE, key)
    state.forget(NAMESPACE, _pending_key(key))


@hookimpl
def serverless_scheduler_change_history(
    owner_id: str, job_id: str, job_type: str, state: StateStore, limit: int
) -> list[dict[str, Any]] | None:
    """A monitor's newest changes (up to `HISTORY_KEEP` are kept), newest first.

    Only what a reader needs leaves the store: when, the counts, the summary the run
    showed and the diff. A fire that crashed after appending its entry and was retried
    appends it again; the repeat is left out.
    """
    if job_type != HTMLMonitorJob.model_fields["job_type"].default:
        return None
    changes: list[dict[str, Any]] = []
    seen: set[str] = set()
    for entry in state.history(NAMESPACE, f"{owner_id}/{job_id}", limit=max(0, limit)):
        fire_id = entry.get("fire_id")
        if fire_id:
            if fire_id in seen:
                continue
            seen.add(fire_id)
        added, removed = int(entry.get("added", 0)), int(entry.get("removed", 0))
        changes.append(
            {
                "at": entry.get("at"),
                "fire_id": fire_id,
                "summary": LineDiff("", added, removed).summary,
                "added": added,
                "removed": removed,
                "diff": entry.get("diff", ""),
            }
        )
    return changes


# -- the consumer ---------------------------------------------------------------------------
def _config_hash(job: HTMLMonitorJob) -> str:
    """Hash of what shapes the normalised content; a new one starts a new baseline."""
    parts = [str(job.url), job.css_selector or "", job.xpath or "", job.mode]
    return content_hash("\x1f".join([*parts, *job.ignore_patterns]).encode("utf-8"))


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _outcome_dict(outcome: RunOutcome) -> dict[str, Any]:
    return outcome.model_dump()


def _notification(job: HTMLMonitorJob, summary: str, diff: str) -> dict[str, str]:
    """Title, text body and HTML body; user content is escaped, never formatted."""
    url = str(job.url)
    title = "Page changed: " + job.name
    body = "\n".join([url, summary, "", diff])
    html = (
        '<p><a href="'
        + html_lib.escape(url, quote=True)
        + '">'
        + html_lib.escape(url)
        + "</a></p><p>"
        + html_lib.escape(summary)
        + "</p><pre>"
        + html_lib.escape(diff)
        + "</pre>"
    )
    return {"title": title, "body": body, "html": html}


def _pending_key(key: str) -> str:
    return key + "#pending"


def _url_key(url: str) -> str:
    """How a pending notification remembers a URL that has it (URLs hold secrets)."""
    return content_hash(url.encode("utf-8"))


def _undelivered(state: StateStore, key: str, fired: JobFired) -> dict[str, Any] | None:
    """The notification an earlier fire left undelivered (its retries ran out), if any.

    One older than `CARRY_MAX_AGE_S`, or from before pending notifications were carried
    (no `created_at`), is dropped with a warning: a target that has refused it for a
    week is not coming back for it, and a stale message would only confuse.
    """
    pending = state.get(NAMESPACE, _pending_key(key))
    if not pending or not pending.get("fire_id") or pending["fire_id"] == fired.fire_id:
        return None
    created = pending.get("created_at")
    age = None
    if isinstance(created, str):
        with contextlib.suppress(ValueError):
            age = (datetime.now(UTC) - datetime.fromisoformat(created)).total_seconds()
    if age is None or age > CARRY_MAX_AGE_S:
        log.warning(
            "job %s: the notification of fire %s was never delivered (%s); dropped",
            key,
            pending["fire_id"],
            pending.get("last_error", "no error recorded"),
        )
        state.put(NAMESPACE, _pending_key(key), {})
        return None
    return pending


def _merged(new: dict[str, Any], earlier: dict[str, Any] | None) -> dict[str, Any]:
    """`new`, carrying the message of a change an earlier fire could not deliver."""
    if earlier is None:
        return new
    # Some addresses may have had the earlier change already (a partial delivery): the
    # message says so rather than claim none had it.
    note = (
        "Earlier change, not delivered to every address until now:"
        if earlier.get("delivered")
        else "Earlier change, not delivered until now:"
    )
    body = new["body"] + "\n\n" + note + "\n" + earlier.get("body", "")
    html = new["html"] + "<hr><p>" + note + "</p>" + earlier.get("html", "")
    return {
        **new,
        "body": body[:PENDING_BODY_CHARS],
        "html": html[:PENDING_BODY_CHARS],
        "failures": int(earlier.get("failures", 0)),
    }


def _send_pending(
    job: HTMLMonitorJob,
    fired: JobFired,
    context: RunContext,
    state: StateStore,
    key: str,
    pending: dict[str, Any],
    *,
    fatal: bool = True,
) -> str | None:
    """Send a pending notification; clear it only once every URL has it.

    A URL that took it in an earlier attempt is not sent it again: the pending record
    keeps the hashes of those URLs (`delivered`; hashes, as the URLs hold secrets). A
    failed send raises (the runtime retries this fire) when `fatal`; otherwise (an
    earlier fire's notification this one carries) it stays pending for the next fire
    and the error is returned: a target that stays down does not fail every check.
    """
    if context.notifier is None or not job.notify:
        state.put(NAMESPACE, _pending_key(key), {})
        return None
    delivered = set(pending.get("delivered", []))
    positions = [i for i, url in enumerate(job.notify) if _url_key(url) not in delivered]
    urls = [job.notify[i] for i in positions]
    try:
        if urls:
            context.notifier.notify(
                urls,
                title=pending["title"],
                body=pending["body"],
                html=pending["html"],
                positions=positions,
            )
    except Exception as exc:
        delivered.update(_url_key(url) for url in getattr(exc, "delivered", ()))
        pending["delivered"] = sorted(delivered)
        pending["failures"] = int(pending.get("failures", 0)) + 1
        pending["last_error"] = f"{type(exc).__name__}: {exc}"[:500]
        state.put(NAMESPACE, _pending_key(key), pending)
        if fatal:
            raise
        return str(pending["last_error"])
    state.put(NAMESPACE, _pending_key(key), {"notified_fire_id": fired.fire_id})
    return None


def check(job: HTMLMonitorJob, fired: JobFired, context: RunContext) -> RunOutcome:
    """One check of one job (the body of the hook; see the module docstring)."""
    state = context.state
    if state is None:
        raise RuntimeError("the html_checker consumer needs a StateStore in its RunContext")
    key = f"{job.owner_id}/{job.job_id}"
    snapshot = state.get(NAMESPACE, key)
    config = _config_hash(job)
    if snapshot is not None and snapshot.get("config") != config:
        snapshot = None  # selector, mode or patterns changed: start a new baseline

    if snapshot is not None and snapshot.get("last_fire_id") == fired.fire_id:
        # A duplicate delivery or a retry of a fire that already ran: finish the
        # notification still pending (its own, or an earlier fire's it had to send too),
        # and report the same outcome.
        unsent = state.get(NAMESPACE, _pending_key(key))
        if unsent and unsent.get("fire_id"):
            own = unsent["fire_id"] == fired.fire_id
            _send_pending(job, fired, context, state, key, unsent, fatal=own)
        return RunOutcome.model_validate(snapshot["last_outcome"])

    # A notification whose fire ran out of retries is not dropped: this fire sends it,
    # folded into its own when the page changed again (and then retried with it), or
    # else on its own, which leaves it for the next fire when the target still refuses.
    earlier = _undelivered(state, key, fired)
    outcome, carried = _check_page(job, fired, context, state, key, snapshot, config, earlier)
    if earlier is not None and not carried:
        error = _send_pending(job, fired, context, state, key, earlier, fatal=False)
        if error is not None:
            note = f"; an earlier change's notification is still undelivered ({error})"
            outcome = outcome.model_copy(update={"summary": (outcome.summary + note)[:500]})
    return outcome


def _check_page(
    job: HTMLMonitorJob,
    fired: JobFired,
    context: RunContext,
    state: StateStore,
    key: str,
    snapshot: dict[str, Any] | None,
    config: str,
    earlier: dict[str, Any] | None,
) -> tuple[RunOutcome, bool]:
    """Fetch, compare and record; True when an `earlier` notification was folded into
    this fire's one (and sent with it)."""
    # The fetch path (requests) loads on first use, so the items API, which imports
    # this module only for the job class, does not pay for it at cold start.
    from serverless_scheduler_common.http import OutboundHTTPError

    from .fetcher import fetch_page, http_for

    http = http_for(context.settings)
    validators = snapshot.get("validators") if snapshot else None
    try:
        response = fetch_page(http, str(job.url), headers=job.headers, conditional=validators)
    except OutboundHTTPError as exc:
        return RunOutcome(status="error", summary=f"error: {exc}"), False
    if response.not_modified and snapshot is not None:
        return RunOutcome(status="ok", summary="unchanged"), False
    if response.status >= 400 or response.not_modified:
        return RunOutcome(status="error", summary=f"error: HTTP {response.status}"), False

    if not response.content.strip():
        # Servers answer 200 with an empty body while they restart or under load: an
        # error run keeps the baseline, instead of "everything removed" now and
        # "everything added" at the next check.
        return RunOutcome(status="error", summary="error: the page came back empty"), False
    raw_hash = content_hash(response.content)
    if snapshot is not None and snapshot.get("raw_hash") == raw_hash:
        return RunOutcome(status="ok", summary="unchanged"), False

    from .normalise import SelectorError, normalise  # the parse path only

    try:
        normalised = normalise(
            response.text(),
            css_selector=job.css_selector,
            xpath=job.xpath,
            mode=job.mode,
            ignore=[_pattern(p) for p in job.ignore_patterns],
            content_type=response.content_type,
        )
    except SelectorError as exc:
        return RunOutcome(status="error", summary=f"error: {exc}"), False
    if (
        not normalised.lines
        and not job.css_selector
        and not job.xpath
        and snapshot is not None
        and snapshot.get("lines")
    ):
        # A whole page that lost all its text at once (a skeleton served while the site
        # restarts, say) is treated like an empty body: an error, the baseline kept.
        return RunOutcome(status="error", summary="error: the page came back without text"), False

    now = _now()
    base: dict[str, Any] = {
        "config": config,
        "url": str(job.url),
        "raw_hash": raw_hash,
        "text_hash": normalised.content_hash,
        "lines": normalised.lines,
        "validators": response.validators(),
        "checked_at": now,
        "last_fire_id": fired.fire_id,
        "normaliser": NORMALISER_VERSION,
    }
    if snapshot is None:
        outcome = RunOutcome(status="ok", summary="baseline recorded")
        state.put(
            NAMESPACE, key, {**base, "changed_at": now, "last_outcome": _outcome_dict(outcome)}
        )
        return outcome, False
    if snapshot.get("normaliser") == NORMALISER_VERSION:
        same = snapshot.get("text_hash") == normalised.content_hash
    else:  # lines of an older normaliser: an upgrade alone is not a page change
        same = same_text(snapshot.get("lines", []), normalised.lines)
        if not same:
            # Lines the older normaliser made differently (a JSON or text body it read
            # as HTML, say) cannot be compared with these: a new baseline, silently,
            # rather than a whole-page "change" that only the update made.
            outcome = RunOutcome(
                status="ok", summary="baseline recorded (the checker's comparison was updated)"
            )
            state.put(
                NAMESPACE, key, {**base, "changed_at": now, "last_outcome": _outcome_dict(outcome)}
            )
            return outcome, False
    if same:
        # Bytes changed only where nothing is compared (ignored lines, markup, scripts):
        # remember the new raw hash so the next identical body skips the parse.
        outcome = RunOutcome(status="ok", summary="unchanged")
        state.put(
            NAMESPACE,
            key,
            {**snapshot, **base, "last_outcome": _outcome_dict(outcome)},
        )
        return outcome, False

    diff = line_diff(
        snapshot.get("lines", []),
        normalised.lines,
        key=markup_key if job.mode == "html" else None,
    )
    outcome = RunOutcome(status="changed", summary=diff.summary, detail=diff.text)
    state.append_history(
        NAMESPACE,
        key,
        {
            "at": now,
            "fire_id": fired.fire_id,
            "hash": normalised.content_hash,
            "added": diff.added,
            "removed": diff.removed,
            "diff": diff.text,
        },
        keep=HISTORY_KEEP,
    )
    triggered = not job.trigger_text or job.trigger_text.casefold() in (
        "\n".join(normalised.lines).casefold()
    )
    pending: dict[str, Any] | None = None
    if triggered and job.notify and context.notifier is not None:
        message = _notification(job, diff.summary, diff.text)
        pending = _merged(
            {
                "fire_id": fired.fire_id,
                "hash": normalised.content_hash,
                "created_at": _now(),
                **message,
            },
            earlier,
        )
        # Pending first, snapshot second: a crash in between re-detects the change on
        # retry (same fire, same pending); the reverse order could lose the notification.
        state.put(NAMESPACE, _pending_key(key), pending)
    elif not triggered:
        log.info("job %s changed without its trigger text; not notifying", job.job_id)
    state.put(NAMESPACE, key, {**base, "changed_at": now, "last_outcome": _outcome_dict(outcome)})
    if pending is not None:
        _send_pending(job, fired, context, state, key, pending)
    return outcome, pending is not None


@hookimpl
def serverless_scheduler_handle_job(
    job: ScheduledJob, fired: JobFired, context: RunContext
) -> RunOutcome | None:
    """Check the page of an `html_monitor_job`; other job types are not ours."""
    if not isinstance(job, HTMLMonitorJob):
        return None
    return check(job, fired, context)
