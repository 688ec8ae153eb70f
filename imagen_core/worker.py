"""``imagen worker``: take jobs from the queue and run them through the pipeline.

The worker contract is the generate contract: a job is a Request, run by
``Session.generate`` (sinks included, preview never). Leases with heartbeats
mean a worker that dies loses nothing: its jobs are claimed again when their
leases run out. An image is named by its job id, in a folder of its submit hour
(``imagen_core.jobfiles``), and a re-run first removes what an earlier attempt
of the same job left, by name, so one job never has two images.

A job canceled while it runs, or taken over by another worker after this one
lost its lease, has its backend call stopped (``imagen_core.cancel``: the
backend sees what it sees on Ctrl-C and cancels its remote work). So does every
job in flight when the worker is told to stop a second time.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import os
import socket
import sys
import threading
import time
import uuid
from typing import TYPE_CHECKING, Any

import attrs

from imagen_core.cancel import CancelScope
from imagen_core.errors import ImagenError, describe, is_transient, is_unavailable
from imagen_core.jobfiles import job_output, remove_leftovers
from imagen_core.queue import takes_preference

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from imagen_core.models import Progress
    from imagen_core.pipeline import Session
    from imagen_core.queue import Job, Queue

# A backend whose server cannot be reached is not claimed for; it is tried again
# after a pause that doubles from the first to the last. ``once`` waits for it
# (its jobs are still queued) until the next pause would be the last: after
# 2 + 4 + ... + 32 = 62 s it gives up on that backend and exits 1 when done.
DOWN_FIRST_S = 2.0
DOWN_MAX_S = 60.0
# The default concurrency follows the backends' max_in_flight, up to this.
MAX_DEFAULT_CONCURRENCY = 8
# ``once`` gives up (exit 1) after this many failed claims in a row.
ONCE_CLAIM_TRIES = 3
# Model affinity: a worker prefers jobs of the backend it took last, passing
# over an older job of another backend only for jobs submitted less than this
# after it. A minute: a few times what a model switch costs a real GPU server
# (10-30 s), so a switch buys at least that much work on the model it loads,
# while a job of another model waits about a minute more than oldest-first at
# most (when the fleet keeps up). 0 turns it off: oldest first.
DEFAULT_AFFINITY_S = 60.0
# What a job thread that found no job waits for before it looks again.
CHANGE = "another thread to claim or end a job"  # an end may free its backend
QUEUE_ANSWERS = "the queue to answer again"
BACKEND_BACK = "a backend to come back"
NEW_JOB = "a new job in the queue"
# How long a thread waits for CHANGE at most: what the queue holds may change
# meanwhile (a job for a backend that is not busy).
CHANGE_WAIT_S = 0.2


@attrs.frozen
class BackendPause:
    """A backend the worker claims nothing for until ``until`` (``time.monotonic``;
    ``math.inf``: ``once`` gave up on it)."""

    until: float
    length: float  # this pause in seconds: the next check that fails doubles it
    unreachable: bool  # its server is down (else a budget's ``on_exceed: wait``)
    at: float = 0.0  # when this pause began
    since: float = 0.0  # unreachable: when its first check failed


@attrs.frozen
class WorkerOptions:
    backends: tuple[str, ...] | None = None  # None: any backend
    concurrency: int | None = None  # None: the backends' max_in_flight, summed
    once: bool = False  # exit when the queue has nothing left for this worker
    max_jobs: int | None = None
    lease_s: float = 60.0
    affinity_s: float = DEFAULT_AFFINITY_S  # 0: claim oldest first
    idle_wait_s: float = 5.0
    json_logs: bool = False
    # After the second signal: how long the backends get to cancel remotely.
    abort_grace_s: float = 15.0


def worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


class Worker:
    def __init__(
        self,
        session: Session,
        queue: Queue,
        options: WorkerOptions,
        *,
        log: Callable[[str], None] | None = None,
    ) -> None:
        self.session = session
        self.queue = queue
        self.options = options
        self.id = worker_id()
        self.log_line = log or self._print
        # Re-entrant: the signal handler runs in the main thread, which may be
        # holding either lock when the signal comes.
        self._print_lock = threading.RLock()
        self.stopping = threading.Event()
        self.aborting = False
        self.abandoned = False  # job threads still ran when the grace ran out
        self.done = 0
        self._inflight: dict[str, Job] = {}
        self._scopes: dict[str, CancelScope] = {}
        self._lost: set[str] = set()
        self._per_backend: dict[str, int] = {}
        # The backend of the job claimed last: its server will have that model
        # loaded once the jobs in flight are done (they run in claim order).
        self._last: str | None = None
        self.affinity = options.affinity_s > 0 and takes_preference(queue)
        # Backends claimed nothing for a while: their server is down, or a
        # budget waits for its reset.
        self._down: dict[str, BackendPause] = {}
        self._claimed_at: dict[str, float] = {}  # job id: when it was claimed
        self._lock = threading.RLock()
        self._changed = threading.Condition(self._lock)
        self._changes = 0  # jobs claimed or ended so far (see CHANGE)
        self._on_queue = False  # a thread is in queue.wait: the others wait for CHANGE
        # One thread claims at a time: the per-backend counts it decides on must
        # not change between its look and its claim.
        self._claiming = threading.Lock()
        self._taken = 0
        self._blips = 0  # claims failed in a row
        self._closing = threading.Event()  # claim no more: once is done, or gave up
        self._code = 0
        self._crash: BaseException | None = None
        self._max_in_flight: dict[str, int] = {}
        self.concurrency = options.concurrency or self.default_concurrency()
        # On a terminal (and with the default log), a status line shows the
        # steps of the job that last made progress; job lines print above it.
        self.tty = log is None and not options.json_logs and sys.stderr.isatty()
        self._status = ""

    def _print(self, line: str) -> None:
        with self._print_lock:
            if self.tty and self._status:
                sys.stderr.write("\r\x1b[K")
            sys.stderr.write(line + "\n")
            if self.tty and self._status:
                sys.stderr.write(self._status)
            sys.stderr.flush()

    def _progress(self, job: Job) -> Progress:
        def show(done: int, total: int, message: str = "") -> None:
            status = f"job {job.id[:8]} {job.backend} {done}/{total}" + (
                f" {message}" if message else ""
            )
            with self._print_lock:
                self._status = status[:200]
                sys.stderr.write("\r\x1b[K" + self._status)
                sys.stderr.flush()

        return show

    def _clear_status(self) -> None:
        if not self.tty:
            return
        with self._print_lock:
            if self._status:
                sys.stderr.write("\r\x1b[K")
                sys.stderr.flush()
                self._status = ""

    # ------------------------------------------------------------ capacity
    def max_in_flight(self, backend: str) -> int:
        """The block's ``max_in_flight``, else what the backend says (ComfyUI: 2,
        so its own queue holds the next prompt while one renders), else 1.
        Asked before every claim: remembered once the backend could be built."""
        known = self._max_in_flight.get(backend)
        if known is not None:
            return known
        try:
            instance, built = self.session.backend(backend)
        except ImagenError:
            return 1
        value = instance.max_in_flight or getattr(built, "max_in_flight", None) or 1
        self._max_in_flight[backend] = max(1, int(value))
        return self._max_in_flight[backend]

    def served(self) -> list[str]:
        """The backends this worker takes jobs for: ``--backends``, else the
        configured ones and the default."""
        if self.options.backends is not None:
            return list(self.options.backends)
        config = self.session.config
        return list(dict.fromkeys([*config.backends, config.default_backend]))

    def default_concurrency(self) -> int:
        """Enough jobs at once to keep every served backend as busy as its
        ``max_in_flight`` allows (ComfyUI: 2, so its own queue holds the next
        prompt while one renders)."""
        total = sum(self.max_in_flight(name) for name in self.served())
        return max(1, min(MAX_DEFAULT_CONCURRENCY, total))

    def _eligible(self, now: float) -> list[str] | None:
        with self._lock:
            busy = {b for b, n in self._per_backend.items() if n >= self.max_in_flight(b)}
            busy |= {b for b, pause in self._down.items() if pause.until > now}
        if self.options.backends is not None:
            return [b for b in self.options.backends if b not in busy]
        if not busy:
            return None  # any backend, including ones unknown here (they fail clearly)
        known = set(self.session.config.backends) | set(self.session.registry.backends)
        return sorted(known - busy)

    def _mark_down(self, job: Job, error: str) -> float | None:
        """Stop claiming for ``job``'s backend for a while; say so the first time.
        Returns the time until its next check; None when ``once`` gave up on it
        instead (its next pause would be the longest): it is never claimed for
        again, its jobs stay queued, and ``run`` returns 1.

        A job claimed before its backend was marked down (in flight beside the
        one that found it down) is no further check: the pause stays as it is,
        so the backoff doubles once per check however many jobs were in flight."""
        now = time.monotonic()
        with self._lock:
            before = self._down.get(job.backend)
            again = before if before is not None and before.unreachable else None
            claimed = self._claimed_at.get(job.id, now)
            if again is not None and claimed < again.at:
                return max(0.0, again.until - now) if again.until < math.inf else None
            if again is None:  # the first check that failed (a budget's wait is none)
                pause, since = DOWN_FIRST_S, now
            else:
                pause, since = min(DOWN_MAX_S, again.length * 2), again.since
            give_up = self.options.once and pause >= DOWN_MAX_S
            until = math.inf if give_up else now + pause
            self._down[job.backend] = BackendPause(
                until, pause, unreachable=True, at=now, since=since
            )
            if give_up:
                self._code = 1
        if again is None:
            self.log_line(
                f"imagen: worker: backend {job.backend!r} is unreachable ({error}); not taking "
                "its jobs until it answers again (checking with backoff)"
            )
        if give_up:
            self.log_line(
                f"imagen: worker: backend {job.backend!r} is still unreachable after "
                f"{now - since:.0f} s; --once gives up on it and will exit 1 (its jobs stay "
                "queued: run the worker again once it answers)"
            )
            return None
        return pause

    def _mark_up(self, backend: str) -> None:
        with self._lock:
            before = self._down.pop(backend, None)
        if before is not None and before.unreachable:  # not after a budget's wait
            self.log_line(f"imagen: worker: backend {backend!r} answers again")

    # ------------------------------------------------------------ running
    def banner(self) -> str:
        """The line the worker starts with: what it serves, from where, how wide."""
        instance = self.session.config.queue(self.session.registry)
        where = getattr(self.queue, "path", None)
        queue = f"{instance.type} queue" + (f" {where}" if where else "")
        served = ", ".join(self.served()) if self.options.backends else "any backend"
        chosen = "" if self.options.concurrency else " (the backends' max_in_flight)"
        affinity = ""
        if self.options.backends is None or len(self.options.backends) > 1:
            if self.affinity:
                affinity = f"model affinity {self.options.affinity_s:g} s; "
            elif self.options.affinity_s > 0:
                affinity = f"model affinity off (the {instance.type} queue claims oldest first); "
        return (
            f"imagen: worker {self.id} on the {queue}; backends: {served}; "
            f"{affinity}concurrency {self.concurrency}{chosen}"
        )

    def run(self) -> int:
        """Work until stopped, ``once`` found nothing, or ``max_jobs`` were taken.
        Returns the exit code: 1 when ``once`` could not reach the queue, or
        gave up on a backend whose server stayed down (see ``DOWN_MAX_S``).

        Each of ``concurrency`` threads claims its own jobs and runs each from
        claim to completion: no job is handed from one thread to another. A
        hand-off wakes a sleeping thread, on a virtual machine often on another
        CPU, and that cost a small job about a sixth of its time. This thread
        only waits for them (after ``abort``, for the grace period)."""
        beat = threading.Thread(target=self._heartbeats, daemon=True, name="heartbeat")
        beat.start()
        # Daemons: after ``abort`` the worker exits without the calls that did
        # not stop within the grace period.
        slots = [
            threading.Thread(target=self._slot, daemon=True, name=f"job-{n}")
            for n in range(self.concurrency)
        ]
        try:
            for slot in slots:
                slot.start()
            self._drain(slots)
        finally:
            self.stopping.set()
        if self._crash is not None:
            raise self._crash
        return self._code

    def _slot(self) -> None:
        """One thread's share of ``run``: claim a job, run it, again."""
        try:
            while not (self.stopping.is_set() or self._closing.is_set()):
                job, wait_for, seen = self._next_job()
                if job is not None:
                    self._run_job(job)
                elif wait_for is not None:
                    self._wait(wait_for, seen)
        except BaseException as exc:  # a bug: stop the worker and report it
            with self._lock:
                self._crash = self._crash or exc
            self._close()

    def _next_job(self) -> tuple[Job | None, str | None, int]:
        """Claim this thread's next job. Returns it, else what to wait for before
        looking again (None: stop), and the count of changes it saw (waiting for
        CHANGE waits for that count to move)."""
        opts = self.options
        with self._claiming:
            with self._lock:
                seen = self._changes
            if opts.max_jobs is not None and self._taken >= opts.max_jobs:
                self._close()
            if self._closing.is_set():
                return None, None, seen
            if self._held_for_affinity():
                return None, CHANGE, seen
            now = time.monotonic()  # one instant: a backend excluded is waited for
            eligible = self._eligible(now)
            try:
                job = self._claim(eligible) if eligible is None or eligible else None
            except ImagenError as exc:  # the queue is briefly unreachable
                self._blips += 1
                if opts.once and self._blips >= ONCE_CLAIM_TRIES:
                    self.log_line(f"imagen: worker: cannot claim: {exc}; --once gives up")
                    self._code = 1
                    self._close()
                    return None, None, seen
                self.log_line(f"imagen: worker: cannot claim: {exc} (retrying)")
                return None, QUEUE_ANSWERS, seen
            self._blips = 0
            if job is None:
                with self._lock:
                    busy = bool(self._inflight)
                if busy or self._on_queue:
                    return None, CHANGE, seen
                down = self._waiting_for_down(now)
                if opts.once and not down:  # nothing left, nothing in flight: done
                    self._close()
                    return None, None, seen
                self._on_queue = True
                return None, BACKEND_BACK if down else NEW_JOB, seen
            self._taken += 1
            self._last = job.backend
            with self._lock:
                self._inflight[job.id] = job
                self._claimed_at[job.id] = now
                self._scopes[job.id] = CancelScope()
                self._per_backend[job.backend] = self._per_backend.get(job.backend, 0) + 1
        self._change()  # the queue may hold more: a thread waiting for CHANGE looks
        return job, None, seen

    def _change(self) -> None:
        with self._changed:
            self._changes += 1
            self._changed.notify_all()

    def _close(self) -> None:
        """Claim no more (``max_jobs`` taken, ``once`` done or given up): each
        thread stops once its job has ended."""
        self._closing.set()
        self._change()

    def _wait(self, wait_for: str, seen: int) -> None:
        """Wait as ``_next_job`` said, then look again."""
        opts = self.options
        if wait_for == CHANGE:
            with self._changed:
                self._changed.wait_for(
                    lambda: self._changes != seen or self.stopping.is_set(),
                    timeout=CHANGE_WAIT_S,
                )
        elif wait_for == QUEUE_ANSWERS:
            self.stopping.wait(min(5.0, opts.idle_wait_s) * self._blips)
        else:
            # A new job (of a backend that answers) wakes the thread as before;
            # a down backend's next check bounds the wait.
            timeout = opts.idle_wait_s
            if wait_for == BACKEND_BACK:
                timeout = min(timeout, self._next_check())
            try:
                self.queue.wait(timeout)
            finally:
                with self._claiming:
                    self._on_queue = False

    def _claim(self, eligible: list[str] | None) -> Job | None:
        """Claim a job of ``eligible`` (None: any), with model affinity: prefer
        the backend claimed last (see ``DEFAULT_AFFINITY_S``)."""
        one = eligible is not None and len(eligible) == 1  # nothing to choose between
        if not self.affinity or self._last is None or one:
            return self.queue.claim(self.id, backends=eligible, lease_s=self.options.lease_s)
        return self.queue.claim(
            self.id,
            backends=eligible,
            lease_s=self.options.lease_s,
            prefer=self._last,
            pass_over_s=self.options.affinity_s,
        )

    def _held_for_affinity(self) -> bool:
        """With affinity, claim nothing while the backend claimed last has all
        the jobs in flight it may: a job of another backend claimed now would
        queue a model switch on the server behind them. Once one of them ends,
        the claim prefers that backend again (or takes what has waited too long)."""
        last = self._last
        if not self.affinity or last is None:
            return False
        with self._lock:
            full = self._per_backend.get(last, 0) >= self.max_in_flight(last)
            pause = self._down.get(last)
            down = pause is not None and pause.until > time.monotonic()
        return full and not down

    def _waiting_for_down(self, now: float) -> bool:
        """Whether a backend was left out of the claim at ``now`` only until its
        next check: its server was down when this worker last ran one of its
        jobs. ``once`` does not exit then (its jobs are there, waiting for the
        check), and an idle worker waits for that check rather than for a new job.

        This worker's own state answers, without asking the queue: a backend is
        marked down only by a job of it that this worker gave back to the queue
        (or whose lease will run out). If another worker took that job meanwhile,
        or it was canceled, the wait costs one pause: the check is a claim, which
        then finds nothing. A budget's wait is not waited for (``once`` exits), nor
        is a backend that ``once`` gave up on."""
        with self._lock:
            return any(
                pause.unreachable and now < pause.until < math.inf for pause in self._down.values()
            )

    def _next_check(self) -> float:
        now = time.monotonic()
        with self._lock:
            untils = [p.until - now for p in self._down.values() if p.until < math.inf]
        return max(0.01, min(untils, default=DOWN_FIRST_S))

    def _drain(self, slots: list[threading.Thread]) -> None:
        """Wait for the job threads; after ``abort`` only for the grace period."""
        deadline: float | None = None
        for slot in slots:
            while slot.is_alive():
                slot.join(timeout=0.2)
                if self.aborting and slot.is_alive():
                    deadline = deadline or time.monotonic() + self.options.abort_grace_s
                    if time.monotonic() > deadline:
                        with self._lock:
                            calls = len(self._inflight)
                        self.log_line(
                            f"imagen: worker: {calls} backend call(s) did not stop within "
                            f"{self.options.abort_grace_s:g} s; exiting anyway (their jobs are"
                            " queued)"
                        )
                        self.abandoned = True
                        return

    def abort(self) -> None:
        """The second Ctrl-C: give every job in flight back to the queue, then
        stop their backend calls (which cancel their remote work)."""
        self.aborting = True
        self.stopping.set()
        with self._lock:
            jobs = [(job, self._scopes[job.id]) for job in self._inflight.values()]
        for job, scope in jobs:
            try:
                self.queue.release(job.id, self.id)
            except ImagenError:  # the lease runs out and the job is claimed again
                pass
            self._log(job, "released", None, "worker stopping; its backend call is canceled")
            scope.cancel()

    def _heartbeats(self) -> None:
        interval = max(0.05, self.options.lease_s / 3)
        while not self.stopping.wait(interval):
            with self._lock:
                jobs = list(self._inflight)
            for job_id in jobs:
                try:
                    owned = self.queue.heartbeat(job_id, self.id, lease_s=self.options.lease_s)
                except ImagenError as exc:  # a database blip: try again next beat
                    self.log_line(f"imagen: worker: heartbeat failed: {exc}")
                    continue
                if not owned:
                    with self._lock:
                        self._lost.add(job_id)
                        scope = self._scopes.get(job_id)
                    if scope is not None:
                        scope.cancel()  # nobody wants its image: free the backend

    def _output(self, job: Job) -> Path:
        """Where ``job``'s image goes (no suffix: the image's type adds it), once
        what an earlier attempt of it left there is gone."""
        output_dir = self.session.config.output.dir
        remove_leftovers(output_dir, job.id, job.created_at)
        return job_output(output_dir, job.id, job.created_at)

    def _run_job(self, job: Job) -> None:
        started = time.monotonic()
        try:
            self.session.config.backend(job.backend, self.session.registry)
            record = self.session.generate(
                attrs.evolve(job.request, backend=job.backend),
                output=self._output(job),
                preview=False,
                cancel=self._scopes[job.id],
                progress=self._progress(job) if self.tty else None,
            )
        except KeyboardInterrupt:  # Canceled: the backend has stopped its remote work
            if not self.aborting:  # abort() already logged the job as released
                self._log(job, "canceled", time.monotonic() - started, "canceled or lease lost")
            self._finish(job)
            return
        except Exception as exc:  # a job's failure must never stop the worker
            self._failed(job, exc, time.monotonic() - started)
            self._finish(job)
            return
        self._mark_up(job.backend)
        assert record.path is not None and record.result is not None
        lost = job.id in self._lost
        result = record.result
        metadata = {
            "seed": result.seed,
            "model": result.model,
            "latency_s": result.latency_s,
            "cost_usd": result.cost_usd,
            "sidecar": str(record.sidecar) if record.sidecar else None,
        }
        if lost or not self.queue.complete(
            job.id, self.id, result_path=str(record.path), metadata=metadata
        ):
            # Canceled, or another worker owns it now: leave no image of ours behind.
            for path in (record.path, record.sidecar):
                if path is not None:
                    path.unlink(missing_ok=True)
            self._log(job, "lost", time.monotonic() - started, "lease lost or job canceled")
        else:
            self.done += 1
            self._log(job, "done", time.monotonic() - started, str(record.path))
        self._finish(job)

    def _failed(self, job: Job, exc: Exception, took: float) -> None:
        """Retry what may pass (a 5xx, a timeout), fail the rest at once (a 4xx,
        a missing token, an image made but not written: never pay twice), and
        give back, without counting the attempt, a job whose server is down."""
        error = describe(exc)
        try:
            resets = _budget_resets(exc)
            if resets is not None:
                # on_exceed: wait -- the job keeps its place until the period resets.
                self._hold(job.backend, resets)
                self.queue.release(job.id, self.id)
                self._log(job, "waiting", took, f"{error}; back in the queue until then")
                return
            if is_unavailable(exc):
                pause = self._mark_down(job, error)
                self.queue.release(job.id, self.id)
                then = f"next check in {pause:.3g} s" if pause is not None else "no more checks"
                self._log(job, "waiting", took, f"{error}; back in the queue, {then}")
                return
            retry = is_transient(exc) and job.attempts < job.max_attempts
            self.queue.fail(job.id, self.id, error=error, retry=retry)
        except ImagenError:  # the lease runs out and the job is tried again
            retry = True
        status = f"retrying ({job.attempts}/{job.max_attempts})" if retry else "failed"
        self._log(job, status, took, error)

    def _hold(self, backend: str, until: dt.datetime) -> None:
        """Claim nothing for ``backend`` until ``until`` (a budget's reset)."""
        pause = max(1.0, (until - dt.datetime.now(dt.timezone.utc)).total_seconds())
        with self._lock:
            now = time.monotonic()
            self._down[backend] = BackendPause(now + pause, pause, unreachable=False, at=now)

    def _finish(self, job: Job) -> None:
        self._clear_status()
        with self._lock:
            self._inflight.pop(job.id, None)
            self._claimed_at.pop(job.id, None)
            self._scopes.pop(job.id, None)
            self._lost.discard(job.id)
            self._per_backend[job.backend] -= 1
        self._change()

    def _log(self, job: Job, status: str, latency: float | None, detail: str | None) -> None:
        if self.options.json_logs:
            line = json.dumps(
                {
                    "job": job.id,
                    "backend": job.backend,
                    "status": status,
                    "attempt": job.attempts,
                    "latency_s": round(latency, 3) if latency is not None else None,
                    "detail": detail,
                    "worker": self.id,
                }
            )
        else:
            took = f" {latency:.2f}s" if latency is not None else ""
            line = f"job {job.id[:8]} {job.backend} {status}{took}" + (
                f" {detail}" if detail else ""
            )
        self.log_line(line)


class Signals:
    """SIGTERM/SIGINT for the worker, installed before anything else so that a
    signal while the worker starts up stops it cleanly (exit 0), not with 143.

    First: stop claiming, finish the jobs in flight, exit 0. Second: give the
    jobs in flight back to the queue, cancel them on their backends, exit 0.
    Third: exit 0 at once."""

    def __init__(self) -> None:
        self.worker: Worker | None = None
        self.early = False  # a signal came before the worker existed

    def install(self) -> None:
        import signal

        signal.signal(signal.SIGTERM, self.handle)
        signal.signal(signal.SIGINT, self.handle)

    def attach(self, worker: Worker) -> None:
        self.worker = worker
        if self.early:
            worker.stopping.set()

    def handle(self, _signum: int, _frame: Any) -> None:
        worker = self.worker
        if worker is None:
            if self.early:
                os._exit(0)
            self.early = True
            sys.stderr.write("imagen: worker: stopping before it started\n")
            return
        in_flight = len(worker._inflight)
        if not worker.stopping.is_set():
            worker.stopping.set()
            worker.log_line(
                f"imagen: worker: finishing the jobs in flight ({in_flight}; again to stop now)"
                if in_flight
                else "imagen: worker: stopping (no job in flight)"
            )
        elif not worker.aborting:
            if in_flight:
                worker.log_line("imagen: worker: canceling the jobs in flight (again to exit now)")
            worker.abort()
        else:
            os._exit(0)  # the jobs are back in the queue already


def install_signals(worker: Worker) -> Signals:
    """``Signals`` installed and attached to ``worker`` (see Signals)."""
    signals = Signals()
    signals.install()
    signals.attach(worker)
    return signals


def _budget_resets(exc: BaseException) -> dt.datetime | None:
    """When a job refused by an ``on_exceed: wait`` budget may run again; None
    for any other failure (a refusing budget fails the job like any usage error)."""
    from imagen_core.budgets import BudgetExceeded

    if isinstance(exc, BudgetExceeded) and exc.wait:
        return exc.status.resets
    return None
