"""`EventBridgeScheduleBackend`: one EventBridge Scheduler schedule per job.

* One schedule group per deployment; the schedule name is derived deterministically
  from owner and job id, readable when it fits `[0-9a-zA-Z-_.]{1,64}`, else hashed.
* The Description carries `{"owner_id", "job_id", "version"}` so sync is ordered and
  the reconciler maps schedules back to jobs.
* Target: the distribution SNS topic; `Input` is the `JobFired` template (job snapshot,
  `job_type` at the top level for the SNS body filter, `scheduled_time` filled in by
  EventBridge from `<aws.scheduler.scheduled-time>`), a retry policy whose
  MaximumEventAgeInSeconds is the job's catch-up window, and an SQS dead-letter queue.
* `FlexibleTimeWindow` is OFF unless the job sets `jitter_s`; `start_at`/`end_at` map to
  StartDate/EndDate; one-off `at` schedules delete themselves after firing.
* UpdateSchedule resets omitted fields, so every write sends the whole definition.
* Throttling and 5xx errors are retried with capped exponential backoff and full jitter;
  other errors surface to the caller (one record fails, not the batch).
"""

from __future__ import annotations

import hashlib
import json
import logging
import random
import re
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar, TypeVar

from serverless_scheduler_common.job import ScheduledJob
from serverless_scheduler_common.ports import ScheduleState
from serverless_scheduler_common.schedule import AtSchedule

log = logging.getLogger(__name__)

T = TypeVar("T")

#: What EventBridge substitutes with the fire's scheduled time.
SCHEDULED_TIME_PLACEHOLDER = "<aws.scheduler.scheduled-time>"
_NAME_OK = re.compile(r"^[0-9A-Za-z_.-]{1,64}$")
_RETRYABLE_CODES = frozenset(
    {
        "ThrottlingException",
        "Throttling",
        "TooManyRequestsException",
        "ServiceQuotaExceededException",
        "RequestLimitExceeded",
        "InternalServerException",
        "InternalFailure",
        "ServiceUnavailable",
        "ServiceUnavailableException",
    }
)
#: EventBridge rejects a recurring StartDate more than 5 minutes in the past.
_START_DATE_SLACK = timedelta(minutes=4)


def schedule_name(owner_id: str, job_id: str) -> str:
    """Deterministic schedule name for a job, within EventBridge's 64-char charset.

    `<owner>.<job_id>` when that fits; otherwise a readable prefix plus a hash of both.
    """
    plain = f"{owner_id}.{job_id}"
    if _NAME_OK.match(plain) and owner_id and "." not in owner_id:
        return plain
    digest = hashlib.sha256(f"{owner_id}\x00{job_id}".encode()).hexdigest()[:24]
    prefix = re.sub(r"[^0-9A-Za-z_-]", "-", job_id)[:38]
    return f"{prefix}.h{digest}"


def is_retryable(exc: BaseException) -> bool:
    """Throttling and server-side (5xx) errors: worth another try."""
    response = getattr(exc, "response", None)
    if not isinstance(response, dict):
        return False
    code = str(response.get("Error", {}).get("Code", ""))
    status = int(response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
    return code in _RETRYABLE_CODES or status >= 500 or status == 429


def _error_code(exc: BaseException) -> str:
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        return str(response.get("Error", {}).get("Code", ""))
    return ""


def fired_template(job: ScheduledJob) -> str:
    """The target `Input`: a `JobFired` with the scheduled time left to EventBridge."""
    snap = job.snapshot()
    body = {
        "job_type": job.job_type,
        "job_id": job.job_id,
        "owner_id": job.owner_id,
        "scheduled_time": SCHEDULED_TIME_PLACEHOLDER,
        "job": snap,
    }
    return json.dumps(body, separators=(",", ":"), sort_keys=True)


class EventBridgeScheduleBackend:
    """`ScheduleBackend` on EventBridge Scheduler.

    Args:
        client: a boto3 `scheduler` client.
        group_name: the deployment's schedule group.
        topic_arn: the distribution SNS topic (the schedules' target).
        role_arn: the role EventBridge Scheduler assumes to publish to the topic.
        dlq_arn: SQS queue for fires the target never accepted.
        max_retry_attempts: EventBridge's own delivery retries per fire.
        max_attempts: tries per API call (throttling/5xx) before the error surfaces.
        backoff_base_s / backoff_max_s: exponential backoff with full jitter.
        sleep: injectable (tests), defaults to `time.sleep`.
        clock: injectable "now" used for StartDate and past `at` decisions.
    """

    aws_service: ClassVar[str] = "scheduler"

    def __init__(
        self,
        client: Any,
        *,
        group_name: str,
        topic_arn: str,
        role_arn: str,
        dlq_arn: str | None,
        max_retry_attempts: int = 10,
        max_attempts: int = 8,
        backoff_base_s: float = 0.1,
        backoff_max_s: float = 5.0,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        rng: random.Random | None = None,
    ) -> None:
        self._client = client
        self.group_name = group_name
        self.topic_arn = topic_arn
        self.role_arn = role_arn
        self.dlq_arn = dlq_arn
        self.max_retry_attempts = max_retry_attempts
        self._max_attempts = max_attempts
        self._base = backoff_base_s
        self._cap = backoff_max_s
        self._sleep = sleep
        self._clock = clock
        self._rng = rng or random.Random()
        self.retries = 0

    # -- retries ----------------------------------------------------------------------------
    def _retry(self, call: Callable[[], T]) -> T:
        attempt = 1
        while True:
            try:
                return call()
            except Exception as exc:
                if not is_retryable(exc) or attempt >= self._max_attempts:
                    raise
                delay = self._rng.uniform(0, min(self._cap, self._base * 2 ** (attempt - 1)))
                log.info("scheduler call throttled (%s); retry %d in %.2fs", exc, attempt, delay)
                self.retries += 1
                self._sleep(delay)
                attempt += 1

    # -- rendering --------------------------------------------------------------------------
    def definition_for(self, job: ScheduledJob) -> dict[str, Any]:
        """The full CreateSchedule/UpdateSchedule request for `job` (minus name/group)."""
        schedule = job.schedule
        expression = schedule.eventbridge()
        period = schedule.period_s
        window = job.policy.effective_catchup_window_s(period)
        retry = {
            "MaximumEventAgeInSeconds": max(60, min(86_400, window)),
            "MaximumRetryAttempts": self.max_retry_attempts,
        }
        target: dict[str, Any] = {
            "Arn": self.topic_arn,
            "RoleArn": self.role_arn,
            "Input": fired_template(job),
            "RetryPolicy": retry,
        }
        if self.dlq_arn:
            target["DeadLetterConfig"] = {"Arn": self.dlq_arn}
        request: dict[str, Any] = {
            "Description": json.dumps(
                {"owner_id": job.owner_id, "job_id": job.job_id, "version": job.version},
                separators=(",", ":"),
            ),
            "ScheduleExpression": expression.expression,
            "ScheduleExpressionTimezone": expression.timezone,
            "State": "ENABLED" if job.enabled else "DISABLED",
            "Target": target,
        }
        if isinstance(schedule, AtSchedule):
            request["FlexibleTimeWindow"] = {"Mode": "OFF"}
            request["ActionAfterCompletion"] = "DELETE"
        else:
            minutes = schedule.flexible_window_minutes()
            request["FlexibleTimeWindow"] = (
                {"Mode": "FLEXIBLE", "MaximumWindowInMinutes": minutes}
                if minutes
                else {"Mode": "OFF"}
            )
            request["ActionAfterCompletion"] = "NONE"
            if schedule.start_at and schedule.start_at > self._clock() - _START_DATE_SLACK:
                request["StartDate"] = schedule.start_at.astimezone(UTC)
            if schedule.end_at:
                request["EndDate"] = schedule.end_at.astimezone(UTC)
        return request

    def is_past_at(self, job: ScheduledJob) -> bool:
        """A one-off job whose time has passed: EventBridge has deleted (or never needs) it."""
        return isinstance(job.schedule, AtSchedule) and job.schedule.at <= self._clock()

    def matches(self, job: ScheduledJob, state: ScheduleState) -> bool:
        """Whether the live schedule is exactly what `upsert(job)` would write."""
        return definitions_match(self.definition_for(job), state.definition)

    @staticmethod
    def job_type_of(state: ScheduleState) -> str | None:
        """The job type the schedule fires (its target's `Input`, a `JobFired` template),
        None when it names none (for the reconciler's removal notices)."""
        target = state.definition.get("Target")
        try:
            job_type = json.loads(target["Input"])["job_type"]  # type: ignore[index]
        except (TypeError, KeyError, ValueError):
            return None
        return job_type if isinstance(job_type, str) and job_type else None

    # -- ScheduleBackend --------------------------------------------------------------------
    def upsert(self, job: ScheduledJob) -> None:
        name = schedule_name(job.owner_id, job.job_id)
        if self.is_past_at(job):
            # Fired already (and deleted by ActionAfterCompletion) or too late to fire.
            log.info(
                "at-schedule of %s/%s is in the past; nothing to keep", job.owner_id, job.job_id
            )
            self.delete(job.owner_id, job.job_id)
            return
        request = self.definition_for(job)
        request.update(Name=name, GroupName=self.group_name)
        try:
            self._retry(lambda: self._client.update_schedule(**request))
        except Exception as exc:
            if _error_code(exc) != "ResourceNotFoundException":
                raise
            try:
                self._retry(lambda: self._client.create_schedule(**request))
            except Exception as exc2:  # created concurrently: replace it
                if _error_code(exc2) != "ConflictException":
                    raise
                self._retry(lambda: self._client.update_schedule(**request))

    def delete(self, owner_id: str, job_id: str) -> None:
        self.delete_by_name(schedule_name(owner_id, job_id))

    def delete_by_name(self, name: str) -> None:
        """Delete one schedule of the group; a missing one is success."""
        try:
            self._retry(lambda: self._client.delete_schedule(Name=name, GroupName=self.group_name))
        except Exception as exc:
            if _error_code(exc) != "ResourceNotFoundException":
                raise

    def get(self, owner_id: str, job_id: str) -> ScheduleState | None:
        return self._get_by_name(schedule_name(owner_id, job_id))

    def _get_by_name(self, name: str) -> ScheduleState | None:
        try:
            got = self._retry(
                lambda: self._client.get_schedule(Name=name, GroupName=self.group_name)
            )
        except Exception as exc:
            if _error_code(exc) == "ResourceNotFoundException":
                return None
            raise
        return _state_from(got)

    def list_names(self) -> list[str]:
        """Names of every schedule in the group."""
        names: list[str] = []
        token: str | None = None
        while True:
            kwargs: dict[str, Any] = {"GroupName": self.group_name, "MaxResults": 100}
            if token:
                kwargs["NextToken"] = token
            page = self._retry(lambda kw=kwargs: self._client.list_schedules(**kw))  # type: ignore[misc]
            names.extend(s["Name"] for s in page.get("Schedules", []))
            token = page.get("NextToken")
            if not token:
                return names

    def list(self) -> Iterable[ScheduleState]:
        """Every schedule of the group that this system created (others are orphans)."""
        for name in self.list_names():
            state = self._get_by_name(name)
            if state is not None:
                yield state


def _state_from(got: dict[str, Any]) -> ScheduleState | None:
    """A `ScheduleState` from GetSchedule; None-like ids when the Description is foreign."""
    try:
        meta = json.loads(got.get("Description") or "")
        owner_id, job_id, version = meta["owner_id"], meta["job_id"], int(meta["version"])
    except (ValueError, KeyError, TypeError):
        owner_id, job_id, version = "", "", -1
    definition = {
        key: got[key]
        for key in (
            "Description",
            "ScheduleExpression",
            "ScheduleExpressionTimezone",
            "State",
            "Target",
            "FlexibleTimeWindow",
            "ActionAfterCompletion",
            "StartDate",
            "EndDate",
        )
        if got.get(key) is not None
    }
    definition["Name"] = got.get("Name", "")
    return ScheduleState(
        owner_id=owner_id,
        job_id=job_id,
        version=version,
        enabled=got.get("State", "ENABLED") == "ENABLED",
        definition=definition,
    )


def definitions_match(desired: dict[str, Any], actual: dict[str, Any]) -> bool:
    """Whether a live schedule matches the rendered request (ignoring AWS-side extras)."""
    for key, want in desired.items():
        if key in ("Name", "GroupName", "StartDate"):
            continue
        have = actual.get(key)
        if key == "EndDate":
            if not isinstance(have, datetime) or have.astimezone(UTC) != want.astimezone(UTC):
                return False
        elif key == "Target":
            if not isinstance(have, dict):
                return False
            for tkey, tval in want.items():
                if tkey == "Input":
                    try:
                        if json.loads(have.get("Input") or "null") != json.loads(tval):
                            return False
                    except ValueError:
                        return False
                elif have.get(tkey) != tval:
                    return False
        elif key == "ActionAfterCompletion":
            if (have or "NONE") != want:
                return False
        elif have != want:
            return False
    return True
