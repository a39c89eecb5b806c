"""The consumer runtime's rules, independent of where fires come from.

One call of `ConsumerRuntime.handle` is one delivery attempt of one fire:

1. a fire already completed is a duplicate and does nothing, and a fire of a deleted
   job is dropped (handled one at a time, both are read again once its in-progress
   marker is taken, with the job's failure count: a success resets a count only when
   there is one);
2. the job snapshot is parsed into the owning plugin's class (a bad one cannot succeed:
   it is dead-lettered at once); `parse_fire` reads a fire's JSON and validates its job
   in the same pass, and the plugin gets a fire whose `job` is that validated object;
3. the overlap policy takes an in-progress marker with an expiry: per job for `skip`
   and `buffer_one`, per fire for `allow_all`; a busy job records a `skipped` run
   (`skip`), or parks the fire in the job's single buffer slot (`buffer_one`);
4. the plugin's `serverless_scheduler_handle_job` hook runs and its outcome is recorded
   as a run; an exception records an `error` run and asks the caller to retry;
5. a fire that fails its last attempt counts towards `pause_after_failures`; reaching it
   pauses the job, records why, and notifies the owner through the plugin's notifier.

Callers (the local dispatcher, the Lambda handler) own the retry schedule and the
dead-letter queue; this module owns the decisions. A caller that handles fires in
batches passes a `FireBatch`: the runs and done marks of its deliveries are collected
there and written by the caller in one transaction (runs before, or with, done marks).
"""

from __future__ import annotations

import functools
import itertools
import logging
import os
import random
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Annotated, Any, Literal, Union

import pluggy
from pydantic import Field, TypeAdapter, ValidationError, create_model

from ..context import RunContext
from ..events import JobFired, JobRemoved, build_unchecked
from ..job import ScheduledJob
from ..plugins import consumer_for
from ..ports import JobControl, Notifier, RunRepository, StateStore
from ..registry import JobTypeRegistry
from ..runs import Run, RunOutcome, cap_detail
from ..settings import Settings
from .ports import FireLedger

log = logging.getLogger(__name__)

#: What the caller should do with the delivery.
Disposition = Literal["done", "retry", "defer", "dead"]

MAX_SUMMARY_CHARS = 500

_OK = RunOutcome(status="ok")  # what a consumer returning None means (never mutated)


@dataclass(slots=True)
class HandleResult:
    """The outcome of one delivery attempt (not frozen: one is built per fire, and a
    frozen dataclass's constructor costs three times as much; nothing changes it).

    `done`: nothing more to do (ran, skipped or duplicate). `retry`: failed, try again
    with backoff (or dead-letter past the cap). `defer`: buffered behind a running fire;
    try again soon without counting an attempt. `dead`: can never succeed.
    """

    disposition: Disposition
    run: Run | None = None
    error: str = ""


@dataclass
class FireBatch:
    """Writes of several deliveries, committed together by the caller.

    `known_done` is what the caller already knows about completion (fire_ids among the
    batch that were done when it was read, e.g. `SqliteFireLedger.done_among`); with it
    set, `is_done` asks no store. `runs` and `done` are what the deliveries produced:
    the caller must store the runs no later than it marks `done`.
    """

    known_done: set[str] | None = None
    runs: list[tuple[str, Run]] = field(default_factory=list)
    done: list[str] = field(default_factory=list)
    _done_now: set[str] = field(default_factory=set, repr=False)

    def mark_done(self, fire_id: str) -> None:
        self.done.append(fire_id)
        self._done_now.add(fire_id)


_CROCKFORD = "0123456789abcdefghjkmnpqrstvwxyz"
_PAIRS = [hi + lo for hi in _CROCKFORD for lo in _CROCKFORD]  # 10 bits -> 2 characters
_prefix: tuple[int, str] = (-1, "")
_high: tuple[int, str] = (-1, "")
_tag = ""
_counter = itertools.count()


def _new_process_tag() -> None:
    """A fresh random tag and counter for this process (also in a forked child, which
    would otherwise repeat its parent's ids)."""
    global _tag, _counter, _prefix, _high
    bits = random.SystemRandom().getrandbits(80)
    _tag = "".join(_PAIRS[(bits >> shift) & 1023] for shift in (30, 20, 10, 0))
    _counter = itertools.count(bits >> 40)
    _prefix, _high = (-1, ""), (-1, "")


_new_process_tag()
os.register_at_fork(after_in_child=_new_process_tag)


def run_id() -> str:
    """A new run id, the shape of `ids.new_id`: 48-bit milliseconds and 80 more bits in
    26 lower-case Crockford base32 characters, so ids sort by creation time.

    Runs are created once per fire, so this is on the hot path. The 80 bits are a random
    40-bit tag drawn once per process and a 40-bit counter (starting at a random value),
    so ids are unique without a random draw per id (they must be unique, not secret);
    the time part is reused within a millisecond and the counter's upper half while it
    lasts (about a million ids), leaving two table lookups per id.
    """
    global _prefix, _high
    millis = time.time_ns() // 1_000_000
    count = next(_counter) & 0xFF_FFFF_FFFF
    cached_ms, prefix = _prefix
    if cached_ms != millis:
        prefix = "".join(_PAIRS[(millis >> shift) & 1023] for shift in range(40, -10, -10))
        prefix += _tag
        _prefix = (millis, prefix)
    upper, high = _high
    if upper != count >> 20:
        upper = count >> 20
        high = _PAIRS[upper >> 10] + _PAIRS[upper & 1023]
        _high = (upper, high)
    return prefix + high + _PAIRS[(count >> 10) & 1023] + _PAIRS[count & 1023]


#: A `Run` from values that are already valid, every field given (a C-level partial:
#: one Python frame less per fire).
_fast_run: Callable[[dict[str, Any]], Run] = functools.partial(build_unchecked, Run)


def _direct(caller: Any) -> Any:
    """The hook caller, or its one implementation called directly when that is the same.

    `serverless_scheduler_handle_job` is a first-result hook; with exactly one plain
    implementation (no wrappers) pluggy calls it with the arguments it names and
    returns its result, exceptions unchanged: calling it directly skips pluggy's
    per-call machinery, which costs about as much as a no-op consumer's whole run.
    """
    try:
        impls = caller.get_hookimpls()
    except AttributeError:
        return caller
    if len(impls) != 1:
        return caller
    impl = impls[0]
    if getattr(impl, "hookwrapper", False) or getattr(impl, "wrapper", False):
        return caller
    function, argnames = impl.function, tuple(impl.argnames)
    if sorted(argnames) == ["context", "fired", "job"]:
        return function  # takes the runtime's keyword arguments as they are

    def call(**kwargs: Any) -> Any:
        return function(*[kwargs[name] for name in argnames])

    return call


class _FireParser:
    """Fire models whose `job` is the owning plugin's class, one per job type.

    `JobFired` keeps the snapshot as a dict (it is the wire format, read by publishers
    and other services); validating that dict into the plugin's class afterwards builds
    the job twice. A typed fire reads the JSON once: reading a fire and its job costs
    about 40 % less.
    """

    def __init__(self, registry: JobTypeRegistry) -> None:
        self.registry = registry
        self._models: dict[str, type[JobFired]] = {}
        self._validate_json: Callable[[str | bytes], Any] | None = None

    def model(self, job_type: str) -> type[JobFired]:
        """`JobFired` with `job` typed as the class registered for `job_type`."""
        model = self._models.get(job_type)
        if model is None:
            cls = self.registry.get(job_type)
            pinned: Any = Literal[job_type]  # a type built at run time
            model = create_model(
                f"{cls.__name__}Fired",
                __base__=JobFired,
                job_type=(pinned, ...),
                job=(cls, Field(description="The job, validated with the fire.")),
            )
            self._models[job_type] = model
        return model

    def parse(self, payload: str | bytes) -> JobFired:
        """The fire in `payload`, its job validated (a plain `JobFired` when that fails:
        `handle` then reports the invalid snapshot). Raises ValidationError when the
        payload is not a fire at all."""
        validate_json = self._validate_json
        if validate_json is None:
            models = tuple(self.model(job_type) for job_type in self.registry.known())
            if not models:
                adapter: TypeAdapter[Any] = TypeAdapter(JobFired)
            elif len(models) == 1:
                adapter = TypeAdapter(models[0])
            else:
                union: Any = Annotated[Union[models], Field(discriminator="job_type")]  # noqa: UP007
                adapter = TypeAdapter(union)
            # The core validator itself: the adapter's method wraps it in Python.
            validate_json = self._validate_json = adapter.validator.validate_json
        try:
            fired: JobFired = validate_json(payload)
        except ValidationError:
            return JobFired.model_validate_json(payload)
        return fired


def forget_removed(pm: pluggy.PluginManager, state: StateStore, removed: JobRemoved) -> None:
    """Every plugin forgets what it keeps in `state` for the deleted job (the owner of
    its type acts, the others return)."""
    pm.hook.serverless_scheduler_forget_job(
        owner_id=removed.owner_id,
        job_id=removed.job_id,
        job_type=removed.job_type,
        state=state,
    )


def job_key(owner_id: str, job_id: str) -> str:
    return f"{owner_id}/{job_id}"


#: The runtime's default clock (a C-level call, twice per fire).
_utcnow: Callable[[], datetime] = functools.partial(datetime.now, UTC)


@dataclass
class ConsumerRuntime:
    """Runs fires through the plugin hook with idempotency, overlap and run history.

    `pm` and `registry` come from `get_plugin_manager()` / `build_registry()`;
    `runs`, `ledger` and `job_control` are the deployment's adapters (SQLite locally,
    DynamoDB on AWS). `state` and `notifier` are handed to plugins in `RunContext`.
    """

    settings: Settings
    pm: pluggy.PluginManager
    registry: JobTypeRegistry
    runs: RunRepository
    ledger: FireLedger
    job_control: JobControl | None = None
    state: StateStore | None = None
    notifier: Notifier | None = None
    clock: Callable[[], datetime] = _utcnow
    _handlers: dict[str, tuple[Any, logging.Logger]] = field(default_factory=dict, repr=False)
    _fires: _FireParser = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._fires = _FireParser(self.registry)

    # -- public ------------------------------------------------------------------------
    def handle(
        self, fired: JobFired, *, attempt: int = 1, batch: FireBatch | None = None
    ) -> HandleResult:
        """Process one delivery attempt of `fired` (attempts count from 1).

        With `batch`, the run and the done mark are added to it instead of written.
        """
        fire_id = fired.fire_id
        jkey = job_key(fired.owner_id, fired.job_id)
        ledger = self.ledger
        if batch is None:
            seen = ledger.lookup(fire_id, jkey)  # one request on a remote store
            done, removed = seen.done, seen.removed
        else:
            done, removed = self._is_done(fire_id, batch), ledger.is_removed(jkey)
        if done:
            log.info("fire %s already completed; duplicate delivery ignored", fire_id)
            return HandleResult("done")
        if removed:
            log.info("fire %s of deleted job %s dropped", fire_id, jkey)
            return HandleResult("done")
        try:
            job, fired = self._parse(fired)
        except (ValidationError, ValueError, TypeError) as exc:
            message = f"invalid job snapshot for {fired.job_type!r}: {_describe(exc)}"
            log.error("fire %s: %s", fire_id, message)
            run = self._record(
                fired, self.clock(), RunOutcome(status="error", summary=message), batch
            )
            return HandleResult("dead", run, message)

        overlap = job.policy.overlap
        lock = f"fire:{fire_id}" if overlap == "allow_all" else jkey
        if not ledger.acquire(lock, fire_id, ttl_s=self.settings.run_lock_ttl_s):
            return self._busy(fired, jkey, overlap, batch)
        try:
            if overlap == "buffer_one":
                ledger.release_buffer(jkey, fire_id)
            failures = None  # unknown: a success resets the count (batches: cached)
            if batch is None:
                # Read again under the marker: the fire may have finished, or its job
                # been deleted, while we waited; the failure count read here is what
                # a success has to reset (no write when there is none).
                seen = ledger.lookup(fire_id, jkey, failures=True)
                if seen.done or seen.removed:
                    return HandleResult("done")
                failures = seen.failures
            return self._run(job, fired, jkey, attempt, batch, failures)
        finally:
            ledger.release(lock, fire_id)

    def forget(self, removed: JobRemoved) -> None:
        """A job was deleted: its run history and failure count go, every plugin
        forgets what it keeps for it in the state store (`serverless_scheduler_forget_job`),
        and the ledger remembers the job is gone: its fires that still arrive (queued,
        retried, redriven from a dead-letter queue) are dropped without running. Done
        marks go where the ledger can find them (locally); on AWS they expire."""
        # The ledger first: from then on the job's fires are dropped, so nothing it
        # forgets below comes back (a fire running meanwhile is caught after its call).
        self.ledger.forget_job(removed.owner_id, removed.job_id)
        runs = self.runs.forget_job(removed.owner_id, removed.job_id)
        if self.state is not None:
            forget_removed(self.pm, self.state, removed)
        log.info(
            "job %s/%s deleted: %d runs and its plugin state forgotten",
            removed.owner_id,
            removed.job_id,
            runs,
        )

    def parse_fire(self, payload: str | bytes) -> JobFired:
        """A fire from its JSON with its job validated in the same pass (`fired.job` is
        the plugin's class); raises ValidationError when `payload` is not a fire."""
        return self._fires.parse(payload)

    def consumer(self, job_type: str) -> Any:
        """The hook caller restricted to the plugin that owns `job_type` (cached)."""
        return self._handler(job_type)[0]

    def _handler(self, job_type: str) -> tuple[Any, logging.Logger]:
        """The consumer of `job_type` and its plugin's logger, looked up once."""
        handler = self._handlers.get(job_type)
        if handler is None:
            consumer = _direct(consumer_for(self.pm, self.registry, job_type))
            logger = logging.getLogger(f"plugin.{self.registry.owner_of(job_type)}")
            handler = self._handlers[job_type] = (consumer, logger)
        return handler

    # -- steps -------------------------------------------------------------------------
    def _is_done(self, fire_id: str, batch: FireBatch) -> bool:
        """Done in this batch, or before it (`known_done`, else the ledger)."""
        if fire_id in batch._done_now:
            return True
        if batch.known_done is None:
            return self.ledger.is_done(fire_id)
        return fire_id in batch.known_done

    def _mark_done(self, fire_id: str, batch: FireBatch | None) -> None:
        if batch is None:
            self.ledger.mark_done(fire_id)
        else:
            batch.mark_done(fire_id)

    def _parse(self, fired: JobFired) -> tuple[ScheduledJob, JobFired]:
        """The fire's job in its plugin's class, and the fire carrying it as `job`."""
        snapshot: Any = fired.job
        job_type = fired.job_type
        model = self.registry.get(job_type)  # an unknown type raises a ValidationError
        if type(snapshot) is model:
            return snapshot, fired  # validated with the fire (`parse_fire`)
        if isinstance(snapshot, ScheduledJob):
            snapshot = snapshot.model_dump(mode="json")
        # Validate the snapshot as it is (pydantic copies what it keeps).
        declared = snapshot.get("job_type", job_type)
        if declared != job_type:
            raise ValueError(f"job_type {declared!r} of the snapshot differs from the fire's")
        if "job_type" not in snapshot:
            snapshot = {**snapshot, "job_type": job_type}
        job = model.model_validate(snapshot)
        return job, build_unchecked(self._fires.model(job_type), {**fired.__dict__, "job": job})

    def _busy(
        self, fired: JobFired, jkey: str, overlap: str, batch: FireBatch | None
    ) -> HandleResult:
        if overlap == "allow_all":
            # The same fire is being handled by another worker: look again later.
            return HandleResult("defer")
        ttl = self.settings.run_lock_ttl_s
        if overlap == "buffer_one" and self.ledger.claim_buffer(jkey, fired.fire_id, ttl_s=ttl):
            log.info("fire %s buffered behind the running fire of %s", fired.fire_id, jkey)
            return HandleResult("defer")
        summary = "skipped: the previous run of this job is still in progress"
        if overlap == "buffer_one":
            summary = "skipped: the previous run is in progress and one fire is already queued"
        run = self._record(
            fired, self.clock(), RunOutcome(status="skipped", summary=summary), batch
        )
        self._mark_done(fired.fire_id, batch)
        return HandleResult("done", run)

    def _run(
        self,
        job: ScheduledJob,
        fired: JobFired,
        jkey: str,
        attempt: int,
        batch: FireBatch | None,
        failures: int | None = None,
    ) -> HandleResult:
        started = self.clock()
        job_type = job.job_type
        consumer, logger = self._handlers.get(job_type) or self._handler(job_type)
        context = RunContext(
            settings=self.settings,
            state=self.state,
            notifier=self.notifier,
            attempt=attempt,
            logger=logger,
        )
        try:
            outcome = consumer(job=job, fired=fired, context=context)
            if outcome is None:
                outcome = _OK
            elif not isinstance(outcome, RunOutcome):
                outcome = RunOutcome.model_validate(outcome)
        except Exception as exc:
            if self.state is not None and self._removed_meanwhile(self.state, job, jkey):
                return HandleResult("done")
            message = _first_line(exc) or type(exc).__name__
            summary = f"attempt {attempt} failed: {type(exc).__name__}: {message}"
            detail = "".join(traceback.format_exception(exc))
            log.warning("fire %s of %s failed (attempt %d): %s", fired.fire_id, jkey, attempt, exc)
            last = attempt >= self.settings.max_attempts
            if last:
                summary += self._count_failure(job, jkey)
            run = self._record(
                fired, started, RunOutcome(status="error", summary=summary, detail=detail), batch
            )
            return HandleResult("retry", run, summary)
        if self.state is not None and self._removed_meanwhile(self.state, job, jkey):
            return HandleResult("done")
        if outcome.status != "error" and failures != 0:
            self.ledger.reset_failures(jkey)
        # Record before marking done: a crash in between re-runs the fire (at least
        # once) rather than leave a completed fire without its run.
        run = self._record(fired, started, outcome, batch)
        self._mark_done(fired.fire_id, batch)
        return HandleResult("done", run)

    def _removed_meanwhile(self, state: StateStore, job: ScheduledJob, jkey: str) -> bool:
        """The job was deleted while its fire ran (checked for plugins with state): what
        the run stored goes again, and no run is recorded."""
        if not self.ledger.is_removed(jkey):
            return False
        log.info("job %s was deleted while its fire ran; its run is dropped", jkey)
        removed = JobRemoved(
            job_type=job.job_type, job_id=job.job_id, owner_id=job.owner_id, version=job.version
        )
        forget_removed(self.pm, state, removed)
        return True

    def _count_failure(self, job: ScheduledJob, jkey: str) -> str:
        """Count a failed fire; pause the job at its threshold. Returns a summary suffix."""
        failures = self.ledger.add_failure(jkey)
        limit = job.policy.pause_after_failures
        if limit is None or failures < limit or self.job_control is None:
            return ""
        reason = f"paused after {failures} consecutive failed fires"
        try:
            paused = self.job_control.pause(job.owner_id, job.job_id, reason)
        except Exception:
            log.exception("could not pause job %s", jkey)
            return ""
        if not paused:
            return ""
        log.warning("job %s %s", jkey, reason)
        self.ledger.reset_failures(jkey)
        self._notify_paused(job, reason)
        return f"; job {reason}"

    def _notify_paused(self, job: ScheduledJob, reason: str) -> None:
        urls = getattr(job, "notify", None)
        if self.notifier is None or not urls:
            return
        try:
            self.notifier.notify(
                list(urls),
                title=f"Job paused: {job.name}",
                body=f"The job {job.name!r} ({job.job_id}) was {reason} and is now disabled.",
            )
        except Exception:
            log.exception("could not notify the owner of job %s", job.job_id)

    def _record(
        self,
        fired: JobFired,
        started: datetime,
        outcome: RunOutcome,
        batch: FireBatch | None = None,
    ) -> Run:
        # Every value comes from validated models (the fire, the outcome, the clock):
        # build the run without validating it again.
        run = _fast_run(
            {
                "run_id": run_id(),
                "job_id": fired.job_id,
                "fire_id": fired.fire_id,
                "scheduled_time": fired.scheduled_time,
                "started_at": started,
                "finished_at": self.clock(),
                "status": outcome.status,
                "summary": outcome.summary[:MAX_SUMMARY_CHARS],
                "detail": cap_detail(outcome.detail),
            }
        )
        if batch is not None:
            batch.runs.append((fired.owner_id, run))
            return run
        try:
            self.runs.record(fired.owner_id, run)
        except Exception:
            log.exception("could not record run %s of fire %s", run.run_id, fired.fire_id)
        return run


def _describe(exc: Exception) -> str:
    """A one-line error naming the offending fields."""
    if isinstance(exc, ValidationError):
        parts = [
            f"{'.'.join(str(p) for p in err['loc']) or '(job)'}: {err['msg']}"
            for err in exc.errors()[:3]
        ]
        return "; ".join(parts)
    return _first_line(exc)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else ""
