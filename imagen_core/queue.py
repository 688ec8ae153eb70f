"""The job queue contract: what ``imagen submit``, ``imagen jobs`` and ``imagen worker``
need from a queue type (the built-in ``sqlite`` one, or a plugin's, e.g. postgres).

A job is a Request plus the backend instance that should run it. Workers *claim*
a job with a lease and keep it alive with heartbeats; a job whose lease ran out
(its worker died) can be claimed again, so no job is lost, and since a claim
moves the lease, no job runs twice at the same time.

Statuses: queued -> running -> done | failed | canceled. ``fail`` re-queues a
job until it has been attempted ``max_attempts`` times.

Input images travel with the job: ``submit`` stores each one beside the jobs,
once per sha256 (the job holds only ``InputRef``s: hash, role, source), and
``claim`` gives the worker the Request with its images again. A stored image is
deleted once no queued or running job refers to it any more.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import TYPE_CHECKING, Any, Protocol

import attrs

from imagen_core.errors import InvalidRequest, UsageError
from imagen_core.models import INPUT_ROLES, ImageInput, Request
from imagen_core.values import value_eq, value_hash, value_repr

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

STATUSES = ("queued", "running", "done", "failed", "canceled")
FINAL = ("done", "failed", "canceled")
LIVE = ("queued", "running")
_SHA256 = r"[0-9a-f]{64}"  # compiled (by re's cache) by the first job with an input image


def _sha256(_instance: object, _attribute: attrs.Attribute[str], value: object) -> None:
    if not isinstance(value, str) or not re.fullmatch(_SHA256, value):
        raise InvalidRequest(f"an input's sha256 is 64 lower-case hex digits, got {value!r:.80}")


def _ref_role(_instance: object, _attribute: attrs.Attribute[str], value: object) -> None:
    if value not in INPUT_ROLES:
        raise InvalidRequest(f"an input's role is one of {', '.join(INPUT_ROLES)}, got {value!r}")


def _ref_source(_instance: object, _attribute: attrs.Attribute[str | None], value: object) -> None:
    if value is not None and not isinstance(value, str):
        raise InvalidRequest(f"an input's source is a path or null, got {value!r:.80}")


@attrs.frozen(repr=False, eq=False)
class InputRef:
    """An input image as a job row holds it: the hash of its stored bytes, its
    role, and the path it came from (for the sidecar)."""

    __repr__ = value_repr
    __eq__ = value_eq
    __hash__ = value_hash

    sha256: str = attrs.field(validator=_sha256)
    role: str = attrs.field(default="image", validator=_ref_role)
    source: str | None = attrs.field(default=None, validator=_ref_source)

    @classmethod
    def of(cls, item: ImageInput) -> InputRef:
        return cls(item.sha256, item.role, item.source)

    @classmethod
    def parse(cls, data: object) -> InputRef:
        """From a job row's JSON; InvalidRequest when it is not an input."""
        if not isinstance(data, dict) or not {"sha256"} <= set(data) <= {
            "sha256",
            "role",
            "source",
        }:
            raise InvalidRequest(
                f"an input is {{sha256, role, source}}, got {data!r:.120} in the job's request"
            )
        return cls(**data)

    def as_dict(self) -> dict[str, Any]:
        return {"sha256": self.sha256, "role": self.role, "source": self.source}


def request_record(request: Request) -> dict[str, Any]:
    """The Request as a job row stores it (JSON data): every field, the inputs
    as InputRefs (their bytes are stored once each, beside the jobs)."""
    data = attrs.asdict(request, filter=lambda field, _value: field.name != "inputs")
    if request.inputs:
        data["inputs"] = [InputRef.of(item).as_dict() for item in request.inputs]
    return data


def split_record(data: dict[str, Any]) -> tuple[dict[str, Any], tuple[InputRef, ...]]:
    """A stored request's fields without ``inputs``, and its InputRefs."""
    fields = dict(data)
    return fields, _pop_refs(fields)


def _pop_refs(fields: dict[str, Any]) -> tuple[InputRef, ...]:
    given = fields.pop("inputs", None)
    if given is None or given == []:  # most jobs
        return ()
    if not isinstance(given, list):
        raise InvalidRequest(f"a request's inputs are a list, got {given!r:.120}")
    return tuple(InputRef.parse(item) for item in given)


def stored_request(fields: dict[str, Any], backend: str) -> tuple[Request, tuple[InputRef, ...]]:
    """The Request of a stored record (a dict of parsed JSON, which this takes
    over and changes) for the instance ``backend``, and its InputRefs.
    InvalidRequest when it is not one. Rows are read on every listing and
    claim: this builds the Request once, without copying the record."""
    refs = _pop_refs(fields)
    fields["backend"] = backend
    try:
        return Request(**fields), refs
    except TypeError as exc:
        raise InvalidRequest(f"not an imagen request: {exc}") from None


def with_inputs(
    request: Request, refs: Sequence[InputRef], read: Callable[[Sequence[str]], dict[str, bytes]]
) -> Request:
    """``request`` with the images ``refs`` name, their bytes from ``read``
    (hashes -> bytes of those stored). InvalidRequest when one is missing or
    not what its hash says: no attempt of that job could ever run."""
    if not refs:
        return request
    stored = read(sorted({ref.sha256 for ref in refs}))
    inputs = []
    for ref in refs:
        data = stored.get(ref.sha256)
        if data is None:
            raise InvalidRequest(
                f"its {ref.role} input {ref.sha256[:12]}… is not stored with the queue "
                "(a job must be inserted after its input images, see docs/worker.md)"
            )
        item = ImageInput.from_bytes(data, role=ref.role, source=ref.source)
        if item.sha256 != ref.sha256:
            raise InvalidRequest(f"the stored input {ref.sha256[:12]}… does not match its hash")
        inputs.append(item)
    return attrs.evolve(request, inputs=inputs)


@attrs.frozen(repr=False, eq=False)
class Job:
    __repr__ = value_repr
    __eq__ = value_eq
    __hash__ = value_hash

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
    # The input images, as the row holds them. ``request.inputs`` has their
    # bytes only in a claimed job (the worker needs them; listings do not).
    inputs: tuple[InputRef, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        data = attrs.asdict(self, recurse=False)
        data["request"] = attrs.asdict(
            self.request, filter=lambda field, _value: field.name != "inputs"
        )
        data["inputs"] = [ref.as_dict() for ref in self.inputs]
        data["metadata"] = dict(self.metadata)
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
        """Add a queued job and return it (its id is new). The request's input
        images are stored with it, in the same transaction, once per sha256."""

    def claim(
        self,
        worker: str,
        *,
        backends: Sequence[str] | None,
        lease_s: float,
        prefer: str | None = None,
        pass_over_s: float = 0.0,
    ) -> Job | None:
        """Take the oldest job, in queue order (the order of submission), that
        is queued or running with an expired lease (its worker died), whose
        backend is in ``backends`` (None = any): a job whose worker died goes
        after older queued jobs and before younger ones. It becomes running,
        owned by ``worker`` until now + ``lease_s``, with ``attempts`` + 1. None
        when there is nothing to do. The job's ``request.inputs`` hold the
        images' bytes; a job whose images are not stored fails for good instead.

        Model affinity: with ``prefer`` (the backend this worker ran last) and
        ``pass_over_s`` > 0, the oldest queued job of ``prefer`` is taken ahead
        of the oldest queued job when that one was submitted less than
        ``pass_over_s`` seconds before it. So a job is passed over only by jobs
        submitted less than ``pass_over_s`` after it, and nothing starves. A
        job whose worker died is never passed over: it is taken before the
        queued job chosen so, unless that one was submitted before it. A
        ``prefer`` not in ``backends``, no ``prefer`` or ``pass_over_s`` <= 0:
        oldest first. (The worker calls a queue type whose claim lacks these
        keywords without them: see ``takes_preference``.)"""

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

    def get(self, job_id: str) -> Job | None:
        """The job; its ``inputs`` name its images (``request.inputs`` is empty)."""

    def input_bytes(self, sha256: str) -> bytes | None:
        """The bytes of a stored input image (of a queued or running job), or None."""

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


def takes_preference(queue: Queue) -> bool:
    """Whether ``queue.claim`` takes ``prefer`` and ``pass_over_s`` (model
    affinity). A queue type written before they existed does not: the worker
    then claims from it oldest-first, as it always did."""
    import inspect

    try:
        parameters = inspect.signature(queue.claim).parameters
    except (TypeError, ValueError):  # a claim without a signature to read (a C extension)
        return False
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values()):
        return True
    return "prefer" in parameters and "pass_over_s" in parameters
