"""Rows of ``imagen.jobs`` to ``Job`` objects and back.

``request`` is a jsonb object with the Request's fields (``prompt`` required,
every other key optional with the Request's default), as a web app may write it.
The ``backend`` column names the instance that runs the job, and a job's Request
carries it as its ``backend`` (as the built-in sqlite queue's do); a
``backend`` key inside ``request`` is accepted and ignored. ``inputs`` lists the
job's input images as ``{sha256, role, source}``; their bytes are rows of
``imagen.inputs``.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from imagen_core.errors import InvalidRequest, UsageError
from imagen_core.models import Request
from imagen_core.queue import InputRef, Job, stored_request

_FIELDS = (
    "id",
    "request",
    "backend",
    "status",
    "attempts",
    "max_attempts",
    "created_at",
    "updated_at",
    "worker",
    "lease_until",
    "result_path",
    "error",
)


def columns(alias: str = "") -> str:
    """The select list ``to_job`` reads, optionally qualified by a table alias.
    metadata comes back NULL when empty (as it is until a job is done): one JSON
    parse less per claim, which is the queue's hot path."""
    prefix = f"{alias}." if alias else ""
    return ", ".join(prefix + field for field in _FIELDS) + f", nullif({prefix}metadata, '{{}}')"


REQUEST_KEYS = ("prompt", "negative", "width", "height", "seed", "steps", "style", "extra")


def request_json(request: Request) -> str:
    data: dict[str, Any] = {key: getattr(request, key) for key in REQUEST_KEYS}
    if request.strength is not None:
        data["strength"] = request.strength
    if request.inputs:
        data["inputs"] = [InputRef.of(item).as_dict() for item in request.inputs]
    try:
        return json.dumps(data, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise UsageError(f"the request's extra values must be JSON data: {exc}") from None


def metadata_json(metadata: dict[str, Any]) -> str:
    # Metadata is a record of what happened: a value JSON cannot hold (a Path, a
    # datetime) is kept as its text rather than losing the whole completion.
    return json.dumps(metadata, default=str) if metadata else "{}"


def to_request(data: Any, backend: str) -> tuple[Request, tuple[InputRef, ...]]:
    """The Request of a row (without its images' bytes) and its inputs;
    InvalidRequest when it is not one (the table's CHECK makes that rare: only a
    prompt of exotic whitespace passes it)."""
    if not isinstance(data, dict) or data.keys() - _STORED_KEYS:
        raise InvalidRequest(f"not an imagen request: {data!r:.200}")
    return stored_request(data, backend)


_STORED_KEYS = frozenset({*REQUEST_KEYS, "backend", "strength", "inputs"})


def _utc(value: dt.datetime) -> dt.datetime:
    return value.astimezone(dt.timezone.utc)


def to_job(row: tuple[Any, ...], *, strict: bool = True) -> Job:
    """The Job of a row of ``columns()``. A row whose request is not a Request raises
    InvalidRequest, unless ``strict`` is off (listing must not break on one bad
    row): then the job shows a placeholder prompt and the reason as its error."""
    (
        job_id,
        data,
        backend,
        status,
        attempts,
        max_attempts,
        created_at,
        updated_at,
        worker,
        lease_until,
        result_path,
        error,
        metadata,
    ) = row
    refs: tuple[InputRef, ...] = ()
    try:
        request, refs = to_request(data, backend)
    except InvalidRequest as exc:
        if strict:
            raise
        request = Request("(invalid request)", backend=backend)
        error = error or f"invalid request: {exc}"
    return Job(
        id=str(job_id),
        request=request,
        backend=backend,
        status=status,
        attempts=attempts,
        max_attempts=max_attempts,
        created_at=_utc(created_at),
        updated_at=_utc(updated_at),
        worker=worker,
        lease_until=None if lease_until is None else _utc(lease_until),
        result_path=result_path,
        error=error,
        metadata=metadata or {},
        inputs=refs,
    )
