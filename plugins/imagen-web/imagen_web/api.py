"""The JSON API under ``/v1``: generate, jobs, backends, images, usage.

Handlers parse and answer; the work is the library's (``Session.generate``,
``Session.queue()``, ``Session.source()``), run in threads because all of it
blocks. Reads and queue calls use Starlette's thread pool; generations never
do: each backend instance has a limiter of its own (``WebState.generate``), so
however many generations wait, the pool stays free for the quick calls.
Every answer leaves out config values: only names
and types of backends, paths relative to ``output.dir``, never a token, a URL
from a block or an environment variable's name.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio
import anyio.to_thread
from starlette.concurrency import run_in_threadpool
from starlette.responses import JSONResponse
from starlette.routing import Route

from imagen_core.cancel import Canceled, CancelScope
from imagen_web.bodies import GenerateBody, JobBody
from imagen_web.errors import ApiError, invalid
from imagen_web.images_index import (
    CursorError,
    ImagesIndex,
    decode_cursor,
    encode_cursor,
    finite_number,
)

if TYPE_CHECKING:
    from starlette.requests import Request as HttpRequest

    from imagen_core.models import Estimate, Generation, ImageInput, Request
    from imagen_core.pipeline import Session
    from imagen_core.queue import Job, Queue
    from imagen_core.usage_report import WeekGroup

DISCONNECT_POLL_S = 0.25
JOB_LIMIT_MAX = 500
IMAGE_LIMIT_MAX = 200


class WebState:
    """What the handlers share: the Session, the queue, the index."""

    def __init__(self, session: Session, *, usage_source: str = "ledger") -> None:
        self.session = session
        self.usage_source = usage_source
        self.started = int(time.time())  # the `created` of GET /v1/models
        self.index = ImagesIndex(session.config.output.dir)
        self._queue: Queue | None = None
        self._lock = threading.Lock()
        self._turns: dict[str, anyio.CapacityLimiter] = {}

    @property
    def output_dir(self) -> Path:
        return self.session.config.output.dir

    def queue(self) -> Queue:
        with self._lock:
            if self._queue is None:
                self._queue = self.session.queue()
            return self._queue

    def close(self) -> None:
        with self._lock:
            if self._queue is not None:
                self._queue.close()
                self._queue = None

    async def turn(self, backend: str) -> anyio.CapacityLimiter:
        """How many generations ``backend`` runs at once: its ``max_in_flight``
        (the block's, else the backend's own, else 1), as `imagen worker` runs
        them (a plugin is not promised concurrent calls unless it says so).
        Called in the event loop only."""
        limiter = self._turns.get(backend)
        if limiter is None:
            wanted = await anyio.to_thread.run_sync(self._max_in_flight, backend)
            limiter = self._turns.setdefault(backend, anyio.CapacityLimiter(wanted))
        return limiter

    def _max_in_flight(self, backend: str) -> int:
        from imagen_core.errors import ImagenError

        try:
            instance, built = self.session.backend(backend)  # builds it: off the loop
        except ImagenError:
            return 1  # the generation will say what is wrong
        return max(1, int(instance.max_in_flight or getattr(built, "max_in_flight", None) or 1))

    async def generate(self, request: Request, cancel: CancelScope | None = None) -> Generation:
        """One generation, in a thread started when the backend's turn comes.

        Waiting for the turn holds no thread, and the threads come from the
        backend's limiter, not from Starlette's pool: 45 generations queued on a
        slow backend leave every thread of the pool to the reads."""
        assert request.backend is not None
        return await anyio.to_thread.run_sync(
            self._generate_now, request, cancel, limiter=await self.turn(request.backend)
        )

    def _generate_now(self, request: Request, cancel: CancelScope | None) -> Generation:
        if cancel is not None and cancel.canceled:  # gave up while waiting its turn
            raise Canceled
        return self.session.generate(request, preview=False, cancel=cancel)

    def relative(self, path: str | Path | None) -> str | None:
        """``path`` relative to output.dir (POSIX), or None when it is outside."""
        if path is None:
            return None
        target = Path(path)
        for root in (self.output_dir, self.output_dir.resolve()):
            try:
                return target.relative_to(root).as_posix()
            except ValueError:
                continue
        return None


def _state(request: HttpRequest) -> WebState:
    state: WebState = request.app.state.imagen
    return state


async def _json_body(request: HttpRequest) -> Any:
    kind = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if kind != "application/json":
        raise ApiError(
            415, "unsupported_media_type", "send the body as JSON (Content-Type: application/json)"
        )
    raw = await request.body()
    try:
        data = json.loads(raw)
    except ValueError as exc:
        raise ApiError(400, "invalid_json", f"body: not valid JSON: {exc}") from None
    except RecursionError:  # [[[[… deeper than the parser's stack
        raise ApiError(400, "invalid_json", "body: JSON nested too deeply") from None
    bad = _not_unicode(data, "body")
    if bad:
        raise ApiError(400, "invalid_text", bad)
    return data


def _not_unicode(value: Any, where: str) -> str | None:
    """Where a string of ``value`` holds a lone surrogate (JSON's ``"\\ud800"``),
    which no file, log or answer can hold; None when there is none. Iterative:
    a body may be nested as deep as the JSON parser allows."""
    stack: list[tuple[Any, str]] = [(value, where)]
    while stack:
        item, path = stack.pop()
        if isinstance(item, str):
            try:
                item.encode("utf-8")
            except UnicodeEncodeError as exc:
                return (
                    f"{path}: not valid text at character {exc.start + 1} "
                    "(a lone surrogate escape such as \\ud800): send UTF-8 text"
                )
        elif isinstance(item, dict):
            for key, sub in item.items():
                stack += [(key, f"{path} (a key)"), (sub, f"{path}.{key}")]
        elif isinstance(item, list):
            stack += [(sub, f"{path}[{index}]") for index, sub in enumerate(item)]
    return None


def _checked(state: WebState, body: GenerateBody, inputs: tuple[ImageInput, ...] = ()) -> Request:
    """The Request, with its backend named, its style known and its inputs
    taken by the backend: the errors `imagen submit` gives before anything is
    queued, as 422s."""
    import attrs

    from imagen_core.errors import ImagenError, InvalidRequest, UsageError
    from imagen_core.pipeline import apply_style

    request = body.request()
    session = state.session
    try:
        name = session.config.backend(request.backend, session.registry).name
    except UsageError as exc:
        raise invalid("backend", str(exc), code="unknown_backend") from None
    try:
        apply_style(request, session.config.styles)
    except UsageError as exc:
        raise invalid("style", str(exc), code="unknown_style") from None
    try:
        request = attrs.evolve(request, backend=name, inputs=inputs)
    except InvalidRequest as exc:
        raise invalid("images", str(exc), code="invalid_input") from None
    if inputs or request.strength is not None:
        try:
            _, backend = session.backend(name)
        except ImagenError:
            return request  # not set up here: the worker that runs it may be
        try:
            session.check_capabilities(request, name, backend)
        except UsageError as exc:
            raise invalid("images", str(exc), code="unsupported") from None
    return request


def check_budget(state: WebState, request: Request) -> None:
    """Refuse, before it is queued, a run that would go over a budget: the 429
    and the one line POST /v1/generate answers. Nothing stays reserved (the
    worker reserves when it runs the job)."""
    from imagen_core.budgets import BudgetExceeded
    from imagen_core.errors import ImagenError

    session = state.session
    if not session.config.budgets:
        return
    try:
        reservation = session.reserve(request)
    except BudgetExceeded as exc:
        raise over_budget(exc) from None
    except ImagenError:
        return  # the backend is not set up here: the worker that runs it checks
    session.budget_book().release(reservation)


def over_budget(exc: Exception) -> ApiError:
    # Asking again will not help (the SDKs retry a 429 unless told).
    return ApiError(429, "budget_exceeded", str(exc), headers={"x-should-retry": "false"})


# ----------------------------------------------------------------- generate


async def generate(request: HttpRequest) -> JSONResponse:
    from imagen_web.uploads import body_and_inputs

    state = _state(request)
    body, inputs, warnings = await body_and_inputs(request, state, GenerateBody)
    wanted = await run_in_threadpool(_checked, state, body, inputs)  # may build backends
    scope = CancelScope()
    watch = asyncio.create_task(_cancel_when_gone(request, scope))
    try:
        record = await _generate(state, wanted, scope)
    finally:
        watch.cancel()
    result = record.result
    assert result is not None and record.path is not None
    relative = state.relative(record.path)
    from imagen_web.images_index import image_url

    return JSONResponse(
        {
            "id": relative,
            "url": image_url(relative) if relative else None,
            "backend": record.backend,
            "backend_type": record.backend_type,
            "model": result.model,
            "seed": result.seed,
            "width": wanted.width,
            "height": wanted.height,
            "latency_s": result.latency_s,
            "cost_usd": result.cost_usd,
            "created": record.started_at.isoformat(timespec="seconds"),
            "warnings": list(warnings),
        }
    )


async def _cancel_when_gone(request: HttpRequest, scope: CancelScope) -> None:
    """The client hung up (closed the tab, Ctrl-C'd curl): stop the backend, so
    that no GPU renders and no cloud prediction is paid for an image nobody
    will fetch. The pipeline still tells the sinks (the ledger records it)."""
    while not await request.is_disconnected():
        await asyncio.sleep(DISCONNECT_POLL_S)
    scope.cancel()


async def _generate(state: WebState, request: Request, scope: CancelScope) -> Generation:
    from imagen_core.budgets import BudgetExceeded
    from imagen_core.errors import (
        ConfigError,
        ImagenError,
        MissingEnvError,
        OutputError,
        UsageError,
    )

    try:
        return await state.generate(request, scope)
    except Canceled:
        # Raised in the generation's thread, it must not reach the event loop
        # as the KeyboardInterrupt it is; the client is gone and reads no answer.
        raise ApiError(499, "client_closed", "the client closed the connection") from None
    except MissingEnvError as exc:
        # The variable's name is the server's business: say so in its log only.
        state.session.warn(f"serve: {exc}")
        raise ApiError(
            503,
            "backend_unavailable",
            f"backend {request.backend!r} is not set up on this server (see the server's log)",
        ) from None
    except ConfigError as exc:
        state.session.warn(f"serve: {exc}")
        raise ApiError(
            503, "backend_unavailable", f"backend {request.backend!r} is misconfigured: {exc}"
        ) from None
    except UsageError as exc:
        if isinstance(exc, BudgetExceeded):
            raise over_budget(exc) from None
        raise ApiError(422, "invalid_request", str(exc)) from None
    except OutputError as exc:
        raise ApiError(500, "output_failed", str(exc)) from None
    except ImagenError as exc:
        raise ApiError(502, "backend_failed", str(exc)) from None


# ----------------------------------------------------------------- jobs


def job_view(state: WebState, job: Job) -> dict[str, Any]:
    """A job as the API shows it: no absolute paths, the image as a URL."""
    from imagen_web.images_index import image_url, inputs_view

    relative = state.relative(job.result_path)
    request = job.request
    meta = job.metadata
    return {
        "id": job.id,
        "status": job.status,
        "backend": job.backend,
        "prompt": request.prompt,
        "request": {
            "prompt": request.prompt,
            "negative": request.negative,
            "width": request.width,
            "height": request.height,
            "seed": request.seed,
            "steps": request.steps,
            "style": request.style,
            "strength": request.strength,
            "inputs": inputs_view(state.output_dir, _recorded_inputs(job)),
        },
        "attempts": job.attempts,
        "max_attempts": job.max_attempts,
        "created_at": job.created_at.isoformat(timespec="seconds"),
        "updated_at": job.updated_at.isoformat(timespec="seconds"),
        "error": job.error,
        "image_id": relative,
        "image_url": image_url(relative) if relative else None,
        "seed": meta.get("seed"),
        "model": meta.get("model"),
        "latency_s": finite_number(meta.get("latency_s")),
        "cost_usd": finite_number(meta.get("cost_usd")),
    }


def _recorded_inputs(job: Job) -> list[dict[str, Any]]:
    """The job's inputs as dicts: from its request, or, as a queue keeps them
    (the bytes stored beside the jobs), from its ``inputs`` references."""
    if job.request.inputs:
        return [item.describe() for item in job.request.inputs]
    return [ref.as_dict() for ref in getattr(job, "inputs", ())]


async def _queue_call(state: WebState, method: str, *args: Any, **kwargs: Any) -> Any:
    from imagen_core.errors import ImagenError

    def call() -> Any:
        return getattr(state.queue(), method)(*args, **kwargs)

    try:
        return await run_in_threadpool(call)
    except ImagenError as exc:
        raise ApiError(503, "queue_unavailable", f"the job queue: {exc}") from None


async def submit_job(request: HttpRequest) -> JSONResponse:
    from imagen_web.uploads import body_and_inputs

    state = _state(request)
    body, inputs, warnings = await body_and_inputs(request, state, JobBody)
    wanted = await run_in_threadpool(_checked, state, body, inputs)  # may build backends
    await run_in_threadpool(check_budget, state, wanted)
    job = await _queue_call(
        state, "submit", wanted, backend=wanted.backend, max_attempts=body.max_attempts
    )
    return JSONResponse(
        {**job_view(state, job), "warnings": list(warnings)},
        status_code=202,
        headers={"location": f"/v1/jobs/{job.id}"},
    )


async def list_jobs(request: HttpRequest) -> JSONResponse:
    from imagen_core.queue import STATUSES

    state = _state(request)
    status = request.query_params.get("status") or None
    if status is not None and status not in STATUSES:
        raise invalid("status", f"must be one of {', '.join(STATUSES)}", code="invalid_query")
    limit = _int_param(request, "limit", 50, 1, JOB_LIMIT_MAX)
    found = await _queue_call(state, "list", status=status, limit=limit)
    return JSONResponse({"jobs": [job_view(state, job) for job in found]})


async def _find_job(state: WebState, job_id: str) -> Any:
    """The job of a full id or any unique start of one (as the CLI takes)."""
    from imagen_core.errors import ImagenError
    from imagen_core.queue import AmbiguousJobId, find_job

    try:
        job = await run_in_threadpool(find_job, state.queue(), job_id)
    except AmbiguousJobId as exc:
        raise ApiError(400, "ambiguous_id", str(exc)) from None
    except ImagenError as exc:
        raise ApiError(503, "queue_unavailable", f"the job queue: {exc}") from None
    if job is None:
        raise ApiError(404, "not_found", f"no job {job_id!r}")
    return job


async def get_job(request: HttpRequest) -> JSONResponse:
    state = _state(request)
    job = await _find_job(state, request.path_params["job_id"])
    return JSONResponse(job_view(state, job))


async def cancel_job(request: HttpRequest) -> JSONResponse:
    state = _state(request)
    job_id = (await _find_job(state, request.path_params["job_id"])).id
    job = await _queue_call(state, "cancel", job_id)
    if job is None:
        raise ApiError(404, "not_found", f"no job {job_id!r}")
    if job.status != "canceled":
        raise ApiError(409, "job_finished", f"job {job_id} is already {job.status}")
    return JSONResponse(job_view(state, job))


# ----------------------------------------------------------------- listings


async def backends(request: HttpRequest) -> JSONResponse:
    """Names and types, the price of a default image and what each takes: a
    block's values (URLs, env var names) stay home."""
    session = _state(request).session
    config, registry = session.config, session.registry
    named = [(inst.name, inst.type, inst.problem is None) for inst in config.backends.values()]
    named += [(name, name, True) for name in registry.backends if name not in config.backends]

    def described() -> list[dict[str, Any]]:
        return [
            {
                "name": name,
                "type": kind,
                "default": name == config.default_backend,
                "available": available,
                **_price_and_capabilities(session, name, available),
            }
            for name, kind, available in named
        ]

    listed = await run_in_threadpool(described)  # builds the backends
    return JSONResponse(
        {
            "default": config.default_backend,
            "backends": listed,
            "types": sorted(registry.backends),
            "styles": sorted(config.styles),
        }
    )


def _price_and_capabilities(session: Session, name: str, available: bool) -> dict[str, Any]:
    """``price``: the estimate of one default image (1024x1024, the backend's
    steps), as `imagen backends` shows it; ``capabilities``: what it accepts.
    Both null for a backend not set up on this server."""
    from imagen_core.errors import ImagenError
    from imagen_core.models import Request, capabilities_of

    if not available:
        return {"price": None, "capabilities": None}
    try:
        _, built = session.backend(name)
        estimate = session.estimate(Request("price", backend=name))
    except ImagenError:
        return {"price": None, "capabilities": None}
    found = capabilities_of(built)
    return {
        "price": estimate_view(estimate),
        "capabilities": {
            "text_to_image": found.text_to_image,
            "images": found.images,
            "strength": found.strength,
            "mask": found.mask,
        },
    }


def estimate_view(estimate: Estimate) -> dict[str, Any]:
    return {"usd": estimate.usd, "basis": estimate.basis, "source": estimate.source}


async def estimate(request: HttpRequest) -> JSONResponse:
    """The price of one image of the body's request (the body of POST
    /v1/generate), before it runs: what the gallery shows next to Generate."""
    from imagen_core.errors import ImagenError

    state = _state(request)
    from imagen_web.bodies import structure

    body = structure(await _json_body(request), GenerateBody)
    wanted = await run_in_threadpool(_checked, state, body)

    def price() -> Estimate:
        return state.session.estimate(wanted)

    try:
        found = await run_in_threadpool(price)
    except ImagenError as exc:
        state.session.warn(f"serve: {exc}")
        message = f"backend {wanted.backend!r} is not set up on this server (see the server's log)"
        raise ApiError(503, "backend_unavailable", message) from None
    return JSONResponse({"backend": wanted.backend, **estimate_view(found)})


async def budgets(request: HttpRequest) -> JSONResponse:
    """Each budget of imagen.yaml in its current period: spent, reserved, left."""
    from imagen_core.errors import ImagenError

    session = _state(request).session

    def read() -> list[dict[str, object]]:
        if not session.config.budgets:
            return []
        return [status.as_dict() for status in session.budget_book().statuses()]

    try:
        found = await run_in_threadpool(read)
    except ImagenError as exc:
        raise ApiError(503, "budgets_unavailable", f"budgets: {exc}") from None
    return JSONResponse({"budgets": found})


async def images(request: HttpRequest) -> JSONResponse:
    index: ImagesIndex = _state(request).index
    limit = _int_param(request, "limit", 50, 1, IMAGE_LIMIT_MAX)
    token = request.query_params.get("cursor") or None
    try:
        cursor = decode_cursor(token) if token else None
    except CursorError as exc:
        raise invalid("cursor", str(exc), code="invalid_query") from None

    def read() -> tuple[list[dict[str, Any]], Any]:
        index.refresh()
        return index.page(cursor, limit)

    found, after = await run_in_threadpool(read)
    return JSONResponse(
        {"images": found, "next_cursor": encode_cursor(after) if after is not None else None}
    )


async def usage(request: HttpRequest) -> JSONResponse:
    from imagen_core.errors import ImagenError
    from imagen_core.usage import week_groups

    state = _state(request)
    since = _date_param(request, "since")
    until = _date_param(request, "until")
    if since and until and until < since:
        raise invalid("until", "is before since", code="invalid_query")
    raw = request.query_params.get("raw", "false").lower()
    if raw not in ("true", "false", "1", "0"):
        raise invalid("raw", "must be true or false", code="invalid_query")

    want_rows = raw in ("true", "1")

    def read() -> tuple[list[WeekGroup], list[Any] | None]:
        source = state.session.source(state.usage_source)
        groups = week_groups(source, since=since, until=until)
        if not want_rows:
            return groups, None
        return groups, [row.as_dict() for row in source.rows(since=since, until=until)]

    try:
        groups, rows = await run_in_threadpool(read)
    except ImagenError as exc:
        message = f"usage source {state.usage_source}: {exc}"
        raise ApiError(503, "usage_unavailable", message) from None
    costs = [group.cost_usd for group in groups if group.cost_usd is not None]
    body: dict[str, Any] = {
        "source": state.usage_source,
        "since": since.isoformat() if since else None,
        "until": until.isoformat() if until else None,
        "total": {
            "count": sum(group.count for group in groups),
            "failed": sum(group.failed for group in groups),
            "cost_usd": round(sum(costs), 6) if costs else None,
        },
        "weeks": [group.as_dict() for group in groups],
    }
    if rows is not None:
        body["rows"] = rows
    return JSONResponse(body)


def _int_param(request: HttpRequest, name: str, default: int, low: int, high: int) -> int:
    text = request.query_params.get(name)
    if text is None or text == "":
        return default
    if not (text.isascii() and text.isdigit()) or not low <= int(text) <= high:
        raise invalid(name, f"must be a whole number from {low} to {high}", code="invalid_query")
    return int(text)


def _date_param(request: HttpRequest, name: str) -> dt.date | None:
    text = request.query_params.get(name)
    if not text:
        return None
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        message = f"{text!r} is not a date like 2026-05-01"
        raise invalid(name, message, code="invalid_query") from None


async def openapi(request: HttpRequest) -> JSONResponse:
    from imagen_web.openapi import document

    return JSONResponse(document())


def routes() -> list[Route]:
    return [
        Route("/v1/generate", generate, methods=["POST"]),
        Route("/v1/jobs", submit_job, methods=["POST"]),
        Route("/v1/jobs", list_jobs, methods=["GET"]),
        Route("/v1/jobs/{job_id}", get_job, methods=["GET"]),
        Route("/v1/jobs/{job_id}", cancel_job, methods=["DELETE"]),
        Route("/v1/backends", backends, methods=["GET"]),
        Route("/v1/images", images, methods=["GET"]),
        Route("/v1/usage", usage, methods=["GET"]),
        Route("/v1/estimate", estimate, methods=["POST"]),
        Route("/v1/budgets", budgets, methods=["GET"]),
        Route("/v1/openapi.json", openapi, methods=["GET"]),
    ]
