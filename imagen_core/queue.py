"""The job queue contract: what ``imagen submit``, ``imagen jobs`` and ``imagen worker``
need from a queue type (the built-in ``sqlite`` one, or a plugin's, e.g. postgres).

A job is a Request plus the backend instance that should run it. Workers *claim*
a job with a lease and keep it alive with heartbeats; a job whose lease ran out
(its worker died) can be claimed again, so no job is lost, and since a claim
moves the lease, no job runs twice at the same time.

Statuses: queued -> running -> done | failed | canceled. ``fail`` re-queues a
job until it has been attempted ``max_attempts`` times.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any, Protocol

import attrs

from imagen_core.errors import UsageError
from imagen_core.models import Request

if TYPE_CHECKING:
    from collections.abc import Sequence

STATUSES = ("queued", "running", "done", "failed", "canceled")
FINAL = ("done", "failed", "canceled")


@attrs.frozen
class Job:
    id: str
    request: Request
    backend: str
    status: str
    attempts: int
    max_attempts: int
    created_at: dt.datetime  # UTC
    updated_at: dt.datetime  # UTC
    worker: str | None = None
    lease_until: dt.datetime | None = None
    result_path: str | None = None
    error: str | None = None
    metadata: dict[str, Any] = attrs.field(factory=dict)

    def as_dict(self) -> dict[str, Any]:
        data = attrs.asdict(self)
        for key in ("created_at", "updated_at", "lease_until"):
            if data[key] is not None:
                data[key] = data[key].isoformat(timespec="seconds")
        return data


class Queue(Protocol):
    """What a queue type's factory returns. Every method is safe to call from
    several processes (and machines, for a networked queue) at once."""

    def init(self) -> None:
        """Create or migrate the storage; idempotent (``imagen queue init``)."""

    def submit(self, request: Request, *, backend: str, max_attempts: int = 3) -> Job:
        """Add a queued job and return it (its id is new)."""

    def claim(self, worker: str, *, backends: Sequence[str] | None, lease_s: float) -> Job | None:
        """Take the oldest job that is queued, or running with an expired lease,
        whose backend is in ``backends`` (None = any); it becomes running, owned
        by ``worker`` until now + ``lease_s``, with ``attempts`` + 1. None when
        there is nothing to do."""

    def heartbeat(self, job_id: str, worker: str, *, lease_s: float) -> bool:
        """Extend the lease. False when ``worker`` no longer owns the job
        (the lease expired and another worker took it, or it was canceled)."""

    def complete(
        self, job_id: str, worker: str, *, result_path: str, metadata: dict[str, Any]
    ) -> bool:
        """Mark done; False (and no change) when ``worker`` does not own the job."""

    def fail(self, job_id: str, worker: str, *, error: str, retry: bool = True) -> bool:
        """Record the error; the job is queued again while attempts remain (and
        ``retry``: the failure may pass), else failed. False (and no change)
        when ``worker`` does not own the job."""

    def release(self, job_id: str, worker: str) -> bool:
        """Give a running job back to the queue (a worker shutting down) without
        counting the attempt. False when ``worker`` does not own the job."""

    def cancel(self, job_id: str) -> Job | None:
        """Cancel a queued or running job (a running one's worker sees its next
        heartbeat fail). Returns the job, None when there is no such id."""

    def get(self, job_id: str) -> Job | None: ...

    def match(self, prefix: str, *, limit: int) -> list[str]:
        """The ids starting with ``prefix`` (at most ``limit``, newest first), for
        short ids like git's: ``imagen jobs show 955ed53b``."""

    def list(self, *, status: str | None = None, limit: int = 100) -> list[Job]:
        """Newest first."""

    def wait(self, timeout_s: float) -> None:
        """Block until a job may have been submitted, or ``timeout_s`` passed.
        A queue that is told of new jobs (PostgreSQL's NOTIFY) returns at once;
        others may just sleep."""

    def close(self) -> None: ...


class AmbiguousJobId(UsageError):
    """A short job id that more than one job's id starts with."""

    def __init__(self, prefix: str, ids: list[str]) -> None:
        self.prefix, self.ids = prefix, ids
        shown = ", ".join(ids[:MATCHES_SHOWN]) + (", ..." if len(ids) > MATCHES_SHOWN else "")
        super().__init__(f"job id {prefix!r} is ambiguous; it starts {shown}: give more of it")


MATCHES_SHOWN = 10


def find_job(queue: Queue, job_id: str) -> Job | None:
    """The job whose id is ``job_id`` or, failing that, the one job whose id
    starts with it (any unique prefix, as git takes). None when no id matches;
    AmbiguousJobId when several do. A queue type without ``match`` takes full
    ids only."""
    job = queue.get(job_id)
    text = job_id.strip().lower()
    match = getattr(queue, "match", None)
    if job is not None or not text or match is None:
        return job
    ids = list(match(text, limit=MATCHES_SHOWN + 1))
    if len(ids) > 1:
        raise AmbiguousJobId(job_id, ids)
    return queue.get(ids[0]) if ids else None
