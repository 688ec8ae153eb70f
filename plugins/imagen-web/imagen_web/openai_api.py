"""OpenAI's Images API in front of imagen's backends, for the clients people
already have (the ``openai`` SDK with ``base_url=".../v1"``, Open WebUI,
LiteLLM): ``POST /v1/images/generations``, ``POST /v1/images/edits``,
``GET /v1/models``.

A thin adapter: each image is one ``Session.generate`` through the same
``WebState.generate`` as ``POST /v1/generate``, so it lands in ``output.dir``
with its sidecar, in the ledger and in the gallery like any other. Errors
answer in OpenAI's shape (``{"error": {"message", "type", "param", "code"}}``)
with the statuses its SDK turns into its exception classes.
"""

from __future__ import annotations

import asyncio
import base64
import random
import re
import time
from typing import TYPE_CHECKING, Any

import attrs
from starlette.concurrency import run_in_threadpool
from starlette.responses import JSONResponse
from starlette.routing import Route

from imagen_core.cancel import CancelScope
from imagen_core.models import MAX_PROMPT_CHARS
from imagen_web.api import WebState, _cancel_when_gone, _generate
from imagen_web.errors import ApiError, scrub

if TYPE_CHECKING:
    from collections.abc import Mapping

    from starlette.requests import Request as HttpRequest

    from imagen_core.models import Generation, ImageInput, Request

PREFIXES = ("/v1/images/", "/v1/models")
MAX_N = 10
MAX_USER_CHARS = 256
#: Below 2**31 - MAX_N: the smallest seed range among the backends (int32 seeds).
SEED_PICK_BELOW = 2**31 - MAX_N
FORMATS = {
    "png": ("PNG", "image/png"),
    "jpeg": ("JPEG", "image/jpeg"),
    "webp": ("WEBP", "image/webp"),
}
OPENAI_STYLES = ("vivid", "natural")  # dall-e-3's; without an imagen style of that name, ignored
#: OpenAI parameters taken and ignored (no backend has an equivalent): the docs say so.
IGNORED = {
    "quality": ("auto", "low", "medium", "high", "standard", "hd"),
    "background": ("auto", "transparent", "opaque"),
    "moderation": ("auto", "low"),
    "input_fidelity": ("low", "high"),
}
COMMON = (
    "prompt",
    "model",
    "n",
    "size",
    "response_format",
    "output_format",
    "output_compression",
    "style",
    "user",
    "stream",
    "partial_images",
    *IGNORED,
    # imagen's own, sent by OpenAI clients through extra_body:
    "seed",
    "steps",
    "negative_prompt",
)
GENERATION_FIELDS = frozenset(COMMON) - {"input_fidelity"}
EDIT_FIELDS = frozenset((*COMMON, "strength", "image", "image[]", "mask"))
_SIZE = re.compile(r"(\d{1,5})x(\d{1,5})")


# ----------------------------------------------------------------- errors


def is_openai(path: str) -> bool:
    return path.startswith(PREFIXES) or path == "/v1/models"


_TYPES = {401: "invalid_request_error", 403: "permission_error", 429: "rate_limit_error"}
_CODES = {
    401: "invalid_api_key",
    404: "not_found",
    405: "method_not_allowed",
    413: "body_too_large",
}


def openai_body(status: int, code: str | None, message: str, param: str | None = None) -> Any:
    """OpenAI's error envelope; ``type`` follows the status as OpenAI's does."""
    kind = _TYPES.get(status, "server_error" if status >= 500 else "invalid_request_error")
    return {"error": {"message": scrub(message), "type": kind, "param": param, "code": code}}


class OpenAIError(ApiError):
    """An error of the OpenAI routes: ``param`` names the request field at fault."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        param: str | None = None,
        *,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(status, code, message, headers=headers)
        self.param = param


def body_for(path: str, status: int, code: str, message: str) -> Any:
    """The error body for ``path``: OpenAI's envelope on its routes, else imagen's
    (``{"error": {"code", "message"}}``, of which OpenAI's is a superset)."""
    from imagen_web.errors import error_body

    if not is_openai(path):
        return error_body(code, message)
    return openai_body(status, _CODES.get(status, code), message)


def _bad(param: str, message: str, code: str = "invalid_value") -> OpenAIError:
    return OpenAIError(400, code, f"{param}: {message}", param)


# ----------------------------------------------------------------- parameters


@attrs.frozen
class ImagesParams:
    """One call's parameters, checked: what OpenAI names, plus imagen's extensions."""

    prompt: str
    model: str | None = None
    n: int = 1
    width: int = 1024
    height: int = 1024
    response_format: str = "b64_json"
    output_format: str | None = None
    output_compression: int | None = None
    style: str | None = None
    user: str | None = None
    seed: int = 0
    steps: int = 0
    negative: str = ""
    strength: float | None = None


def parse_params(data: Mapping[str, Any], *, form: bool, known: frozenset[str]) -> ImagesParams:
    """``data`` (a JSON object, or a form's text fields when ``form``) as
    ImagesParams; a 400 naming the first parameter at fault."""
    for name in data:
        if name not in known:
            raise _bad(
                name,
                "unrecognized request argument; imagen serve takes "
                + ", ".join(sorted(known - {"image[]"})),
                "unknown_parameter",
            )
    read = _Reader(data, form)
    prompt = read.text("prompt", required=True)
    assert prompt is not None
    if not prompt.strip():
        raise _bad("prompt", "is empty: describe the image")
    if len(prompt) > MAX_PROMPT_CHARS:
        raise _bad("prompt", f"is {len(prompt)} characters long; the limit is {MAX_PROMPT_CHARS}")
    if read.flag("stream"):
        raise _bad("stream", "streaming is not supported by imagen serve; leave stream off")
    for name, values in IGNORED.items():
        read.choice(name, values)
    read.number("partial_images", 0, 3)
    width, height = _size(read.text("size"))
    negative = read.text("negative_prompt") or ""
    if len(negative) > MAX_PROMPT_CHARS:
        raise _bad("negative_prompt", f"is longer than {MAX_PROMPT_CHARS} characters")
    user = read.text("user")
    if user is not None and (len(user) > MAX_USER_CHARS or not user.isprintable()):
        raise _bad("user", f"must be printable and at most {MAX_USER_CHARS} characters")
    from imagen_core.models import MAX_SEED

    strength = read.fraction("strength")
    return ImagesParams(
        prompt=prompt,
        model=read.text("model") or None,
        n=read.number("n", 1, MAX_N) or 1,
        width=width,
        height=height,
        response_format=read.choice("response_format", ("b64_json", "url")) or "b64_json",
        output_format=read.choice("output_format", tuple(FORMATS)),
        output_compression=read.number("output_compression", 0, 100),
        style=read.text("style") or None,
        user=user.strip() or None if user is not None else None,
        seed=read.number("seed", 0, MAX_SEED) or 0,
        steps=read.number("steps", 0, 10_000) or 0,
        negative=negative,
        strength=strength,
    )


def _size(text: str | None) -> tuple[int, int]:
    if text is None or text == "auto":
        return 1024, 1024
    match = _SIZE.fullmatch(text)
    if match is None or not all(1 <= int(side) <= 8192 for side in match.groups()):
        raise _bad("size", f"{text!r} is not WIDTHxHEIGHT (sides 1-8192, e.g. 1024x1024) or auto")
    return int(match[1]), int(match[2])


class _Reader:
    """Typed reads of a JSON object or of a form (where everything is text)."""

    def __init__(self, data: Mapping[str, Any], form: bool) -> None:
        self.data = data
        self.form = form

    def text(self, name: str, *, required: bool = False) -> str | None:
        value = self.data.get(name)
        if value is None:
            if required:
                raise _bad(name, "required", "missing_required_parameter")
            return None
        if not isinstance(value, str):
            raise _bad(name, f"expected a string, got {value!r}", "invalid_type")
        return value

    def number(self, name: str, low: int, high: int) -> int | None:
        value = self.data.get(name)
        if value is None:
            return None
        if self.form and isinstance(value, str) and value.isascii() and value.isdigit():
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise _bad(name, f"must be a whole number from {low} to {high}, got {value!r}")
        return value

    def fraction(self, name: str) -> float | None:
        value = self.data.get(name)
        if value is None:
            return None
        if self.form and isinstance(value, str):
            try:
                value = float(value)
            except ValueError:
                pass
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
            raise _bad(name, f"must be a number from 0 to 1, got {value!r}")
        return float(value)

    def flag(self, name: str) -> bool:
        value = self.data.get(name)
        if self.form and isinstance(value, str) and value.lower() in ("true", "false"):
            value = value.lower() == "true"
        if value is None or isinstance(value, bool):
            return bool(value)
        raise _bad(name, f"must be true or false, got {value!r}")

    def choice(self, name: str, values: tuple[str, ...]) -> str | None:
        value = self.text(name)
        if value is not None and value not in values:
            raise _bad(name, f"{value!r} is not one of {', '.join(values)}")
        return value


# ----------------------------------------------------------------- running


def _state(request: HttpRequest) -> WebState:
    state: WebState = request.app.state.imagen
    return state


def _backend(state: WebState, model: str | None) -> str:
    """The backend instance ``model`` names (None: the default), or a 404."""
    from imagen_core.errors import UsageError

    session = state.session
    try:
        return session.config.backend(model, session.registry).name
    except UsageError:
        raise _not_found(state, model or "") from None


def _not_found(state: WebState, model: str) -> OpenAIError:
    listed = ", ".join(name for name, _type in _models(state)) or "none"
    return OpenAIError(
        404,
        "model_not_found",
        f"The model {model!r} does not exist on this server; models are: {listed} (GET /v1/models)",
        "model",
    )


def _style(state: WebState, style: str | None) -> str | None:
    """An imagen style to apply, None for none (or dall-e-3's vivid/natural)."""
    styles = state.session.config.styles
    if style is None or style in styles:
        return style
    if style in OPENAI_STYLES:
        return None
    known = ", ".join(sorted(styles)) or "none configured"
    raise _bad("style", f"unknown style {style!r}; styles are: {known}", "unknown_style")


def requests_for(
    params: ImagesParams, backend: str, style: str | None, inputs: tuple[ImageInput, ...] = ()
) -> list[Request]:
    """``n`` Requests, on consecutive seeds (one picked here when the seed is 0
    and n > 1, so that the images differ and each seed is known)."""
    from imagen_core.errors import InvalidRequest
    from imagen_core.models import MAX_SEED, Request

    seed = params.seed
    if seed == 0 and params.n > 1:
        seed = random.SystemRandom().randrange(1, SEED_PICK_BELOW)
    if seed + params.n - 1 > MAX_SEED:
        raise _bad("seed", f"with n={params.n} the seeds would pass {MAX_SEED}")
    extra: dict[str, Any] = {"inputs": inputs} if inputs else {}
    if params.strength is not None:
        extra["strength"] = params.strength
    try:
        return [
            Request(
                prompt=params.prompt,
                negative=params.negative,
                width=params.width,
                height=params.height,
                seed=seed + i if seed else 0,
                steps=params.steps,
                style=style,
                backend=backend,
                **extra,
            )
            for i in range(params.n)
        ]
    except InvalidRequest as exc:
        raise OpenAIError(400, "invalid_value", str(exc)) from None


#: imagen-web's own error codes -> (status, OpenAI code) on these routes.
_MAPPED = {
    "invalid_request": (400, "invalid_request"),
    "backend_unavailable": (503, "backend_unavailable"),
    "backend_failed": (502, "backend_failed"),
    "output_failed": (500, "output_failed"),
    "client_closed": (499, "client_closed"),
}


async def _one(
    state: WebState, wanted: Request, scope: CancelScope, user: str | None
) -> Generation:
    from imagen_core.identity import acting_as

    try:
        # A context variable: it goes with this task into the generation's thread.
        with acting_as(user):
            return await _generate(state, wanted, scope)
    except OpenAIError:
        raise
    except ApiError as exc:
        status, code = _MAPPED.get(exc.code, (exc.status, exc.code))
        raise OpenAIError(status, code, exc.message, headers=exc.headers) from None


async def run(
    request: HttpRequest, state: WebState, params: ImagesParams, wanted: list[Request]
) -> list[Generation]:
    """Every request, as many at once as the backend's turns allow; all are
    waited for (those that finish are on disk either way), then the first
    failure, if any, is the answer."""
    scope = CancelScope()
    watch = asyncio.create_task(_cancel_when_gone(request, scope))
    try:
        done = await asyncio.gather(
            *(_one(state, one, scope, params.user) for one in wanted),
            return_exceptions=True,
        )
    finally:
        watch.cancel()
    for outcome in done:
        if isinstance(outcome, BaseException):
            raise outcome
    return [outcome for outcome in done if not isinstance(outcome, BaseException)]


def _encoded(record: Generation, params: ImagesParams) -> tuple[str, str]:
    """The image as base64 in ``output_format`` (converted when the backend made
    another), and that format's name."""
    result = record.result
    assert result is not None
    wanted = params.output_format
    current = next((name for name, (_, mime) in FORMATS.items() if mime == result.mime_type), None)
    if wanted is None or wanted == current:
        return base64.b64encode(result.image).decode(), current or result.extension
    import io

    from PIL import Image

    pil_format = FORMATS[wanted][0]
    with Image.open(io.BytesIO(result.image)) as image:
        buffer = io.BytesIO()
        converted = image.convert("RGB") if pil_format == "JPEG" else image
        options = (
            {} if params.output_compression is None else {"quality": params.output_compression}
        )
        converted.save(buffer, pil_format, **(options if pil_format != "PNG" else {}))
    return base64.b64encode(buffer.getvalue()).decode(), wanted


async def answer(
    request: HttpRequest, state: WebState, params: ImagesParams, records: list[Generation]
) -> JSONResponse:
    """OpenAI's ImagesResponse, each item with imagen's own ``imagen`` field."""
    from imagen_web.images_index import image_url

    base = str(request.base_url).rstrip("/")
    items: list[dict[str, Any]] = []
    formats: set[str] = set()
    for record in records:
        result = record.result
        assert result is not None and record.path is not None
        relative = state.relative(record.path)
        if relative is None:
            raise OpenAIError(500, "output_failed", "the image was written outside output.dir")
        item: dict[str, Any] = {}
        if params.response_format == "url":
            item["url"] = base + image_url(relative)
            formats.add(result.extension.replace("jpg", "jpeg"))
        else:
            item["b64_json"], shown = await run_in_threadpool(_encoded, record, params)
            formats.add(shown)
        if record.prompt_sent != record.request.prompt:
            item["revised_prompt"] = record.prompt_sent
        item["imagen"] = {
            "id": relative,
            "url": image_url(relative),
            "seed": result.seed,
            "cost_usd": result.cost_usd,
            "backend": record.backend,
            "model": result.model,
            "latency_s": result.latency_s,
        }
        items.append(item)
    body: dict[str, Any] = {
        "created": int(time.time()),
        "data": items,
        "size": f"{params.width}x{params.height}",
    }
    if len(formats) == 1:
        body["output_format"] = formats.pop()
    return JSONResponse(body)


# ----------------------------------------------------------------- routes


async def generations(request: HttpRequest) -> JSONResponse:
    import json

    state = _state(request)
    kind = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if kind != "application/json":
        raise OpenAIError(415, "unsupported_media_type", "send the body as application/json")
    try:
        data = json.loads(await request.body())
    except ValueError as exc:
        raise OpenAIError(400, "invalid_json", f"the body is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise OpenAIError(400, "invalid_json", "the body must be a JSON object")
    params = parse_params(data, form=False, known=GENERATION_FIELDS)
    backend = _backend(state, params.model)
    wanted = requests_for(params, backend, _style(state, params.style))
    return await answer(request, state, params, await run(request, state, params, wanted))


async def edits(request: HttpRequest) -> JSONResponse:
    from imagen_web import uploads

    state = _state(request)
    try:
        form = await uploads.read_form(request, files=("image", "image[]", "mask"))
        params = parse_params(form.texts, form=True, known=EDIT_FIELDS)
        images = form.files("image", "image[]")
        if not images:
            raise _bad(
                "image",
                "required: send one as `image`, several as `image[]`",
                "missing_required_parameter",
            )
        masks = form.files("mask")
        if len(masks) > 1:
            raise _bad("mask", "give at most one mask")
        backend = _backend(state, params.model)
        style = _style(state, params.style)
        mask = masks[0] if masks else None
        if isinstance(mask, uploads.Upload):
            mask = attrs.evolve(mask, data=await run_in_threadpool(imagen_mask, mask.data))
        # OpenAI's API wants the mask at the image's size: refused, not scaled.
        inputs = await run_in_threadpool(uploads.image_inputs, state, images, mask, exact_mask=True)
    except uploads.UploadProblem as exc:
        status = 400 if exc.status == 422 else exc.status
        codes = {403: "cross_site", 415: "unsupported_media_type", 500: "output_failed"}
        code = codes.get(status, "invalid_image")
        raise OpenAIError(status, code, f"{exc.field}: {exc.message}", exc.field) from None
    wanted = requests_for(params, backend, style, inputs)
    return await answer(request, state, params, await run(request, state, params, wanted))


def imagen_mask(data: bytes) -> bytes:
    """OpenAI's mask (fully transparent pixels = the area to edit) as imagen's
    (white = repaint, black = keep), a greyscale PNG. A mask without
    transparency is taken as imagen's already; one that does not decode is
    left for ImageInput to refuse with its own message."""
    import io

    from PIL import Image

    try:
        with Image.open(io.BytesIO(data)) as image:
            if image.mode not in ("RGBA", "LA", "PA") and "transparency" not in image.info:
                return data
            alpha = image.convert("RGBA").getchannel("A")
    except Exception:  # Pillow raises many types for a broken file
        return data
    buffer = io.BytesIO()
    alpha.point(lambda a: 255 if a == 0 else 0).save(buffer, "PNG")
    return buffer.getvalue()


def _models(state: WebState) -> list[tuple[str, str]]:
    """(name, type) of every backend usable by name, as GET /v1/backends lists them."""
    config, registry = state.session.config, state.session.registry
    named = [(inst.name, inst.type) for inst in config.backends.values() if inst.problem is None]
    return named + [(name, name) for name in registry.backends if name not in config.backends]


def _model(name: str, kind: str, created: int) -> dict[str, Any]:
    return {"id": name, "object": "model", "created": created, "owned_by": f"imagen:{kind}"}


async def models(request: HttpRequest) -> JSONResponse:
    state = _state(request)
    created = state.started
    return JSONResponse(
        {"object": "list", "data": [_model(n, t, created) for n, t in _models(state)]}
    )


async def model(request: HttpRequest) -> JSONResponse:
    state = _state(request)
    name = request.path_params["model"]
    for known, kind in _models(state):
        if known == name:
            return JSONResponse(_model(known, kind, state.started))
    raise _not_found(state, name)


def routes() -> list[Route]:
    return [
        Route("/v1/images/generations", generations, methods=["POST"]),
        Route("/v1/images/edits", edits, methods=["POST"]),
        Route("/v1/models", models, methods=["GET"]),
        Route("/v1/models/{model}", model, methods=["GET"]),
    ]
