"""``imagen worker``: take jobs from the queue and run them through the pipeline.

The worker contract is the generate contract: a job is a Request, run by
``Session.generate`` (sinks included, preview never). Leases with heartbeats
mean a worker that dies loses nothing: its jobs are claimed again when their
leases run out. An image is named by its job id, and a re-run first removes
what an earlier attempt of the same job left, so one job never has two images.

A job canceled while it runs, or taken over by another worker after this one
lost its lease, has its backend call stopped (``imagen_core.cancel``: the
backend sees what it sees on Ctrl-C and cancels its remote work). So does every
job in flight when the worker is told to stop a second time.
"""

from __future__ import annotations

import json
import os
import socket
import sys
import threading
import time
import uuid
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from typing import TYPE_CHECKING, Any

import attrs

from imagen_core.cancel import CancelScope
from imagen_core.errors import ImagenError, describe

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from imagen_core.pipeline import Session
    from imagen_core.queue import Job, Queue

JOBS_FOLDER = "jobs"


@attrs.frozen
class WorkerOptions:
    backends: tuple[str, ...] | None = None  # None: any backend
    concurrency: int = 1
    once: bool = False  # exit when the queue has nothing left for this worker
    max_jobs: int | None = None
    lease_s: float = 60.0
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
        self.log_line = log or (lambda line: print(line, file=sys.stderr, flush=True))
        self.stopping = threading.Event()
        self.aborting = False
        self.abandoned = False  # job threads still ran when the grace ran out
        self.done = 0
        self._inflight: dict[str, Job] = {}
        self._scopes: dict[str, CancelScope] = {}
        self._lost: set[str] = set()
        self._per_backend: dict[str, int] = {}
        self._lock = threading.Lock()

    # ------------------------------------------------------------ capacity
    def max_in_flight(self, backend: str) -> int:
        """The block's ``max_in_flight``, else what the backend says (ComfyUI: 2,
        so its own queue holds the next prompt while one renders), else 1."""
        try:
            instance, built = self.session.backend(backend)
        except ImagenError:
            return 1
        value = instance.max_in_flight or getattr(built, "max_in_flight", None) or 1
        return max(1, int(value))

    def _eligible(self) -> list[str] | None:
        with self._lock:
            busy = {b for b, n in self._per_backend.items() if n >= self.max_in_flight(b)}
        if self.options.backends is not None:
            return [b for b in self.options.backends if b not in busy]
        if not busy:
            return None  # any backend, including ones unknown here (they fail clearly)
        known = set(self.session.config.backends) | set(self.session.registry.backends)
        return sorted(known - busy)

    # ------------------------------------------------------------ running
    def run(self) -> int:
        """Work until stopped, ``once`` found nothing, or ``max_jobs`` were taken."""
        opts = self.options
        taken = 0
        beat = threading.Thread(target=self._heartbeats, daemon=True, name="heartbeat")
        beat.start()
        futures: set[Future[None]] = set()
        pool = ThreadPoolExecutor(max_workers=opts.concurrency, thread_name_prefix="job")
        try:
            while not self.stopping.is_set():
                if opts.max_jobs is not None and taken >= opts.max_jobs:
                    break
                if len(futures) >= opts.concurrency:
                    _, futures = wait(futures, timeout=1.0, return_when=FIRST_COMPLETED)
                    continue
                eligible = self._eligible()
                try:
                    job = (
                        self.queue.claim(self.id, backends=eligible, lease_s=opts.lease_s)
                        if eligible is None or eligible
                        else None
                    )
                except ImagenError as exc:  # the queue is briefly unreachable
                    self.log_line(f"imagen: worker: cannot claim: {exc} (retrying)")
                    self.stopping.wait(min(5.0, opts.idle_wait_s))
                    continue
                if job is None:
                    if opts.once and not futures:
                        break
                    if futures:
                        _, futures = wait(futures, timeout=0.2, return_when=FIRST_COMPLETED)
                    else:
                        self.queue.wait(opts.idle_wait_s)
                    continue
                taken += 1
                with self._lock:
                    self._inflight[job.id] = job
                    self._scopes[job.id] = CancelScope()
                    self._per_backend[job.backend] = self._per_backend.get(job.backend, 0) + 1
                futures.add(pool.submit(self._run_job, job))
            self._drain(futures)
        finally:
            self.stopping.set()
            pool.shutdown(wait=not self.abandoned, cancel_futures=True)
        return 0

    def _drain(self, futures: set[Future[None]]) -> None:
        """Wait for the jobs in flight; after ``abort`` only for the grace period."""
        deadline: float | None = None
        while futures:
            _, futures = wait(futures, timeout=0.2)
            if self.aborting:
                deadline = deadline or time.monotonic() + self.options.abort_grace_s
                if futures and time.monotonic() > deadline:
                    self.log_line(
                        f"imagen: worker: {len(futures)} backend call(s) did not stop within "
                        f"{self.options.abort_grace_s:g} s; exiting anyway (their jobs are queued)"
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
        folder = self.session.config.output.dir / JOBS_FOLDER
        for leftover in folder.glob(f"{job.id}*"):  # an earlier attempt of this job
            leftover.unlink(missing_ok=True)
        return folder / job.id

    def _run_job(self, job: Job) -> None:
        started = time.monotonic()
        try:
            self.session.config.backend(job.backend, self.session.registry)
            record = self.session.generate(
                attrs.evolve(job.request, backend=job.backend),
                output=self._output(job),
                preview=False,
                cancel=self._scopes[job.id],
            )
        except KeyboardInterrupt:  # Canceled: the backend has stopped its remote work
            if not self.aborting:  # abort() already logged the job as released
                self._log(job, "canceled", time.monotonic() - started, "canceled or lease lost")
            self._finish(job)
            return
        except Exception as exc:  # a job's failure must never stop the worker
            error = describe(exc)
            try:
                self.queue.fail(job.id, self.id, error=error)
            except ImagenError:  # the lease runs out and the job is tried again
                pass
            self._log(job, "failed", time.monotonic() - started, error)
            self._finish(job)
            return
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

    def _finish(self, job: Job) -> None:
        with self._lock:
            self._inflight.pop(job.id, None)
            self._scopes.pop(job.id, None)
            self._lost.discard(job.id)
            self._per_backend[job.backend] -= 1

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


def install_signals(worker: Worker) -> Any:
    """First SIGTERM/SIGINT: stop claiming, finish the jobs in flight, exit 0.
    Second: give the jobs in flight back to the queue, cancel them on their
    backends, exit 0. Third: exit 0 at once."""
    import signal

    def handle(signum: int, _frame: Any) -> None:
        if not worker.stopping.is_set():
            worker.stopping.set()
            worker.log_line("imagen: worker: finishing the jobs in flight (again to stop now)")
        elif not worker.aborting:
            worker.log_line("imagen: worker: canceling the jobs in flight (again to exit now)")
            worker.abort()
        else:
            os._exit(0)  # the jobs are back in the queue already

    previous = (signal.signal(signal.SIGTERM, handle), signal.signal(signal.SIGINT, handle))
    return previous
