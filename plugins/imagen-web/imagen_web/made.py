"""How an image was made, and making it again: ``/v1/info`` and ``/v1/again``.

``GET /v1/info?id=`` reads an image of the gallery, ``POST /v1/info`` an
uploaded file (any PNG, JPEG or WebP, from any tool): the answer is what
`imagen info` says (``imagen_core.provenance.read``), the A1111 ``parameters``
text as written in the file (Copy parameters), and the request `imagen again`
would run, or why it cannot. ``POST /v1/again`` queues that request as a job.

Paths never leave the server: the file is named by its gallery id or by the
upload's own file name, and the full ``imagen`` record (which holds the
server's paths of input images) is left out of the answer.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs
from starlette.concurrency import run_in_threadpool
from starlette.responses import JSONResponse
from starlette.routing import Route

from imagen_web.api import WebState, _json_body, _queue_call, check_budget, job_view
from imagen_web.errors import ApiError, invalid
from imagen_web.security import resolve_inside
from imagen_web.uploads import Upload, UploadProblem, read_form

if TYPE_CHECKING:
    from starlette.requests import Request as HttpRequest

    from imagen_core.models import Request
    from imagen_core.provenance.read import ImageInfo

MAX_NAME_CHARS = 200


@attrs.frozen
class Source:
    """The file to read: its bytes, the name shown for it, and for a gallery
    image its path (inputs are looked for beside it, as `imagen again` does)."""

    data: bytes
    name: str
    path: Path | None = None


def _state(request: HttpRequest) -> WebState:
    state: WebState = request.app.state.imagen
    return state


def _gallery_source(state: WebState, image_id: object) -> Source:
    if not isinstance(image_id, str) or not image_id:
        raise invalid("id", "required: the id of an image of GET /v1/images")
    path = resolve_inside(state.output_dir, image_id)
    if path is None:
        raise ApiError(404, "not_found", f"id: no image {image_id!r} inside the output folder")
    try:
        return Source(path.read_bytes(), image_id, path)
    except OSError as exc:
        message = f"id: {image_id!r} cannot be read: {exc.strerror}"
        raise ApiError(404, "not_found", message) from None


async def _upload_source(request: HttpRequest) -> Source:
    try:
        form = await read_form(request, files=("file",))
        parts = form.files("file")
        if len(parts) != 1 or not isinstance(parts[0], Upload):
            raise UploadProblem("file", "send exactly one image file in the `file` field")
    except UploadProblem as exc:
        code = {403: "cross_site", 415: "unsupported_media_type", 400: "bad_form"}
        message = f"{exc.field}: {exc.message}"
        raise ApiError(exc.status, code.get(exc.status, "invalid_input"), message) from None
    upload = parts[0]
    name = Path(upload.filename or "upload").name[:MAX_NAME_CHARS] or "upload"
    return Source(upload.data, name)


async def _source(request: HttpRequest, state: WebState) -> Source:
    """A JSON body ``{"id": ...}`` names a gallery image; a form uploads one."""
    kind = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if kind == "multipart/form-data":
        return await _upload_source(request)
    body = await _json_body(request)
    if not isinstance(body, dict):
        raise invalid("body", 'must be a JSON object like {"id": "..."}, or a form with a file')
    return _gallery_source(state, body.get("id"))


# ----------------------------------------------------------------- reading


def _read(state: WebState, source: Source) -> ImageInfo:
    from imagen_core.provenance.read import Unreadable, read_info_bytes

    try:
        return read_info_bytes(source.data, source.name)
    except Unreadable as exc:
        raise invalid("file", str(exc), code="unreadable") from None


def _recorded(state: WebState, source: Source) -> Request:
    """The request `imagen again` runs for ``source``; UsageError says why not.
    An upload is read from a temporary copy (nothing beside it: its inputs are
    looked for in the job queue only)."""
    from imagen_core.provenance.again import recorded

    session = state.session
    if source.path is not None:
        found = recorded(source.path, session)
        sidecar = source.path.with_suffix(".json")
        if found.record is None and sidecar.is_file():  # written with metadata off
            found = recorded(sidecar, session)
        return found.request
    suffix = Path(source.name).suffix.lower() or ".png"
    with tempfile.TemporaryDirectory(prefix="imagen-info-") as folder:
        copy = Path(folder) / f"upload{suffix if len(suffix) <= 6 else '.png'}"
        copy.write_bytes(source.data)
        return recorded(copy, session).request


def _request_view(state: WebState, request: Request) -> dict[str, Any]:
    return {
        "prompt": request.prompt,
        "negative": request.negative,
        "backend": request.backend,
        "width": request.width,
        "height": request.height,
        "seed": request.seed,
        "steps": request.steps,
        "style": request.style,
        "strength": request.strength,
        "inputs": len(request.inputs),
    }


def _answer(state: WebState, source: Source) -> dict[str, Any]:
    from imagen_core.errors import UsageError
    from imagen_core.provenance.read import parameters_of
    from imagen_core.terminal import info_report

    info = _read(state, source)
    again: dict[str, Any] | None = None
    problem: str | None = None
    try:
        again = _request_view(state, _recorded(state, source))
    except UsageError as exc:
        problem = str(exc)
    found = info.as_dict()
    found["record"] = None  # the server's paths of input images: not for the client
    found["path"] = source.name
    return {
        "id": source.name if source.path is not None else None,
        "name": source.name,
        "report": info_report(info),
        "info": found,
        "parameters_text": parameters_of(source.data),
        "again": again,
        "again_error": problem,
    }


async def info_of_image(request: HttpRequest) -> JSONResponse:
    state = _state(request)
    source = await run_in_threadpool(_gallery_source, state, request.query_params.get("id"))
    return JSONResponse(await run_in_threadpool(_answer, state, source))


async def info_of_upload(request: HttpRequest) -> JSONResponse:
    state = _state(request)
    source = await _upload_source(request)
    return JSONResponse(await run_in_threadpool(_answer, state, source))


# ----------------------------------------------------------------- again


async def again(request: HttpRequest) -> JSONResponse:
    """The recorded request of an image (``{"id"}``) or an upload (form ``file``),
    queued as a job: the same seed, backend and inputs."""
    from imagen_core.errors import UsageError

    state = _state(request)
    source = await _source(request, state)

    def wanted() -> Request:
        _read(state, source)  # an unreadable file is a 422 naming it
        session = state.session
        try:
            found = _recorded(state, source)
            name = session.config.backend(found.backend, session.registry).name
        except UsageError as exc:
            raise invalid("file", str(exc), code="not_recorded") from None
        found = attrs.evolve(found, backend=name)
        check_budget(state, found)
        return found

    run = await run_in_threadpool(wanted)
    job = await _queue_call(state, "submit", run, backend=run.backend)
    return JSONResponse(
        job_view(state, job), status_code=202, headers={"location": f"/v1/jobs/{job.id}"}
    )


def routes() -> list[Route]:
    return [
        Route("/v1/info", info_of_image, methods=["GET"]),
        Route("/v1/info", info_of_upload, methods=["POST"]),
        Route("/v1/again", again, methods=["POST"]),
    ]
