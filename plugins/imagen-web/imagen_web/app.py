"""The ASGI app of `imagen serve`: the API, ``/images/...``, and the gallery.

``create_app(session)`` is the whole server minus the listening socket: tests
drive it with Starlette's TestClient, ``imagen serve`` hands it to uvicorn.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import TYPE_CHECKING, Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import ClientDisconnect
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from imagen_web import api, grids, made, openai_api
from imagen_web.errors import ApiError
from imagen_web.openai_api import OpenAIError, body_for, openai_body
from imagen_web.security import MAX_BODY_BYTES, PAGE_CSP, BodyTooLarge, Guard, resolve_inside
from imagen_web.uploads import MAX_UPLOAD_BYTES

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable, Sequence

    from starlette.requests import Request as HttpRequest

    from imagen_core.pipeline import Session

STATIC = Path(__file__).parent / "static"
#: The routes that take images (multipart, or base64 in JSON): --max-upload, not 64 KiB.
UPLOAD_PATHS = ("/v1/generate", "/v1/jobs", "/v1/images/edits", "/v1/info", "/v1/again")
_STATUS_CODES = {
    400: "bad_request",
    401: "unauthorized",
    404: "not_found",
    405: "method_not_allowed",
    413: "body_too_large",
}


def create_app(
    session: Session,
    *,
    token: str | None = None,
    usage_source: str = "ledger",
    allowed_hosts: Sequence[str] | None = None,
    max_body: int = MAX_BODY_BYTES,
    max_upload: int = MAX_UPLOAD_BYTES,
    ready: Callable[[], None] | None = None,
) -> Starlette:
    """The server for ``session``. ``token``: required on /v1 and /images.
    ``allowed_hosts``: Host names served (None: any). ``max_upload``: the body
    limit of the routes that take images. ``ready`` is called once the index
    is built, before the first request is answered."""
    from starlette.concurrency import run_in_threadpool

    state = api.WebState(session, usage_source=usage_source)
    mcp = _mcp(session)

    @contextlib.asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        await run_in_threadpool(state.index.refresh)  # read every sidecar once, now
        async with contextlib.AsyncExitStack() as stack:
            if mcp is not None:
                await stack.enter_async_context(mcp.lifespan())
            if ready is not None:
                ready()
            try:
                yield
            finally:
                state.close()

    guard = Middleware(
        Guard,
        token=token,
        max_body=max_body,
        allowed_hosts=allowed_hosts,
        upload_paths=UPLOAD_PATHS,
        max_upload=max_upload,
    )
    app = Starlette(
        routes=[
            Route("/", gallery, methods=["GET"]),
            *api.routes(),
            *made.routes(),
            *openai_api.routes(),
            *grids.routes(),  # a grid run's page, before the images it shows
            Route("/images/{path:path}", image, methods=["GET", "HEAD"]),
            Mount("/static", StaticFiles(directory=STATIC), name="static"),
            *([Route("/mcp", mcp.app, methods=["GET", "POST", "DELETE"])] if mcp else []),
        ],
        middleware=[guard],
        exception_handlers={
            ApiError: _api_error,
            BodyTooLarge: _too_large,
            ClientDisconnect: _client_gone,
            HTTPException: _http_error,
            Exception: _internal_error,
        },
        lifespan=lifespan,
    )
    app.state.imagen = state
    return app


def _mcp(session: Session) -> Any:
    """imagen-mcp's tools for ``/mcp`` when that plugin is installed and loaded."""
    if not any(getattr(p, "__name__", "") == "imagen_mcp" for p in session.pm.get_plugins()):
        return None
    from imagen_mcp.http import Mounted

    return Mounted(session)


async def gallery(_request: HttpRequest) -> Response:
    return FileResponse(
        STATIC / "index.html",
        media_type="text/html; charset=utf-8",
        headers={"content-security-policy": PAGE_CSP, "cache-control": "no-cache"},
    )


async def image(request: HttpRequest) -> Response:
    state: api.WebState = request.app.state.imagen
    path = resolve_inside(state.output_dir, request.path_params["path"])
    if path is None:
        raise ApiError(404, "not_found", "no such image inside the output folder")
    # Images never change once written (write_new never overwrites): cache them.
    return FileResponse(path, headers={"cache-control": "private, max-age=86400"})


async def _api_error(request: HttpRequest, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    if isinstance(exc, OpenAIError):
        body = openai_body(exc.status, exc.code, exc.message, exc.param)
    else:
        body = body_for(request.url.path, exc.status, exc.code, exc.message)
    return JSONResponse(body, status_code=exc.status, headers=exc.headers)


async def _too_large(request: HttpRequest, exc: Exception) -> Response:
    return JSONResponse(body_for(request.url.path, 413, "body_too_large", str(exc)), 413)


async def _client_gone(_request: HttpRequest, _exc: Exception) -> Response:
    # The client hung up (or was cut off by the request timeout) while its
    # body was coming: nobody reads an answer, and it is no server error.
    return Response(status_code=499)


async def _http_error(request: HttpRequest, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    code = _STATUS_CODES.get(exc.status_code, f"http_{exc.status_code}")
    message = exc.detail if exc.status_code != 404 else "no such path (see /v1/openapi.json)"
    body = body_for(request.url.path, exc.status_code, code, message)
    return JSONResponse(body, status_code=exc.status_code, headers=exc.headers)


async def _internal_error(request: HttpRequest, _exc: Exception) -> Response:
    # The traceback goes to the server's log (uvicorn prints it); an exception's
    # text may hold anything, so the client gets no more than this.
    message = "internal error (see the server's log)"
    return JSONResponse(body_for(request.url.path, 500, "internal_error", message), 500)
