"""Input images arriving over HTTP: multipart uploads, base64 in JSON, or an
image already in the gallery named by its id.

Every one is checked as the CLI checks ``--image`` (``ImageInput.from_bytes``:
PNG, JPEG or WebP, at most 50 MB and 8192 pixels a side); the whole body is
capped by the Guard (``--max-upload``, a 413). An uploaded image is kept in
``output.dir/inputs/<sha256>.<ext>`` (once, whoever sends it again), so that
the sidecar of what was made from it names a file the gallery can link to and
*Variations* can send again.

A cross-site page may post a multipart form (a "simple" request, unlike JSON):
a form whose ``Origin`` is another site is refused before it is read.
"""

from __future__ import annotations

import base64
import binascii
from typing import TYPE_CHECKING, TypeVar

import attrs

from imagen_web.security import BodyTooLarge, host_name, resolve_inside

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from starlette.requests import Request as HttpRequest

    from imagen_core.models import ImageInput
    from imagen_web.api import WebState
    from imagen_web.bodies import InputBody

T = TypeVar("T")

INPUTS_FOLDER = "inputs"
MAX_IMAGES = 16  # OpenAI's limit for an edit; more than any backend takes
MAX_UPLOAD_BYTES = 64 * 2**20
MAX_FORM_FIELDS = 100


class UploadProblem(Exception):
    """An input that cannot be used: ``field`` names it, ``status`` is the answer's."""

    def __init__(self, field: str, message: str, status: int = 422) -> None:
        super().__init__(message)
        self.field = field
        self.message = message
        self.status = status


@attrs.frozen
class Upload:
    """One file part of a form, or one base64 image of a JSON body."""

    field: str
    data: bytes = attrs.field(repr=lambda b: f"<{len(b)} bytes>")
    filename: str | None = None


@attrs.frozen
class Ref:
    """An image of the gallery, by its id (its path relative to output.dir)."""

    field: str
    id: str


@attrs.frozen
class Form:
    """A multipart body: its text fields (last value wins) and, in order, its
    files and gallery references."""

    texts: dict[str, str]
    parts: tuple[Upload | Ref, ...]
    repeated: tuple[str, ...] = ()  # text fields given more than once

    def files(self, *names: str) -> list[Upload | Ref]:
        return [part for part in self.parts if part.field in names]


def check_origin(request: HttpRequest) -> None:
    """Refuse a browser's cross-site post (``Origin`` naming another host)."""
    origin = request.headers.get("origin")
    if origin is None:
        return  # not a browser: curl, the openai SDK, a script
    from urllib.parse import urlsplit

    own = host_name(request.headers.get("host", ""))
    try:
        theirs = urlsplit(origin).hostname or ""
    except ValueError:
        theirs = ""
    if origin == "null" or theirs.lower() != own:
        raise UploadProblem("origin", "a page of another site may not post here", 403)


async def read_form(
    request: HttpRequest, *, refs: tuple[str, ...] = (), files: tuple[str, ...]
) -> Form:
    """The multipart body: ``files`` are the file fields taken, ``refs`` the text
    fields that name gallery images (``image_id``), kept in order among them."""
    check_origin(request)
    kind = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if kind != "multipart/form-data":
        raise UploadProblem("body", "send the images as multipart/form-data", 415)
    from starlette.datastructures import UploadFile

    try:
        form = await request.form(max_files=MAX_IMAGES + 1, max_fields=MAX_FORM_FIELDS)
    except BodyTooLarge:
        raise
    except Exception as exc:  # starlette: MultiPartException, a malformed body
        raise UploadProblem("body", f"not a readable multipart form: {exc}", 400) from None
    texts: dict[str, str] = {}
    parts: list[Upload | Ref] = []
    seen: set[str] = set()
    repeated: set[str] = set()
    try:
        for key, value in form.multi_items():
            if isinstance(value, UploadFile):
                if key not in files:
                    raise UploadProblem(
                        key, f"unexpected file field; files go in {', '.join(files)}"
                    )
                parts.append(Upload(key, await value.read(), value.filename))
            elif key in refs:
                parts.append(Ref(key, value))
            elif key in files:
                raise UploadProblem(key, "must be a file upload (multipart file part)")
            else:
                if key in seen:
                    repeated.add(key)
                seen.add(key)
                texts[key] = value
    finally:
        await form.close()
    return Form(texts, tuple(parts), tuple(sorted(repeated)))


def decode(field: str, text: object) -> Upload:
    """A base64 image of a JSON body (plain, or a ``data:image/...;base64,`` URI)."""
    if not isinstance(text, str) or not text:
        raise UploadProblem(field, "expected base64 image data (or a data: URI)")
    if text.startswith("data:"):
        header, comma, text = text.partition(",")
        if not comma or not header.endswith(";base64"):
            raise UploadProblem(field, "a data: URI must be data:<mime type>;base64,<data>")
    try:
        return Upload(field, base64.b64decode(text, validate=True))
    except (binascii.Error, ValueError):
        raise UploadProblem(field, "is not valid base64") from None


def image_inputs(
    state: WebState,
    images: list[Upload | Ref],
    mask: Upload | Ref | None,
    *,
    exact_mask: bool = False,
    warn: Callable[[str], None] | None = None,
) -> tuple[ImageInput, ...]:
    """The Request's inputs: the first image to edit, the others references, and
    the mask; each checked, uploads stored under output.dir/inputs/. Blocking.

    A mask of another size but the image's shape is scaled to the image as the
    CLI and MCP scale it (``imagen_core.inputs.fit_mask``), which is said to
    ``warn``; with ``exact_mask`` (OpenAI's API: "same dimensions as the image")
    it is refused instead."""
    if len(images) > MAX_IMAGES:
        raise UploadProblem(images[0].field, f"at most {MAX_IMAGES} images, got {len(images)}")
    inputs = [
        _input(state, part, "image" if i == 0 else "reference", i) for i, part in enumerate(images)
    ]
    if mask is not None:
        if not inputs:
            raise UploadProblem(mask.field, "a mask needs an image to apply to: send the image too")
        inputs.append(_mask(state, mask, inputs[0], exact=exact_mask, warn=warn))
    return tuple(inputs)


def _mask(
    state: WebState,
    part: Upload | Ref,
    image: ImageInput,
    *,
    exact: bool,
    warn: Callable[[str], None] | None,
) -> ImageInput:
    from imagen_core.errors import InvalidInput
    from imagen_core.inputs import fit_mask

    made = _read(state, part, "mask", part.field)
    if (made.width, made.height) == (image.width, image.height):
        return _kept(state, part, made)
    if exact:
        raise UploadProblem(
            part.field,
            f"is {made.width}x{made.height} but the image is {image.width}x{image.height}: "
            "give a mask of the image's size",
        )
    try:
        # Named as the client named it, never by a path of the server's disk.
        scaled = fit_mask(attrs.evolve(made, source=_label(part, part.field)), image, warn=warn)
    except InvalidInput as exc:
        raise UploadProblem(part.field, str(exc)) from None
    return _stored(state, scaled)  # new bytes: kept, whether uploaded or from the gallery


def _input(state: WebState, part: Upload | Ref, role: str, index: int) -> ImageInput:
    name = part.field if index == 0 else f"{part.field} #{index + 1}"
    return _kept(state, part, _read(state, part, role, name))


def _read(state: WebState, part: Upload | Ref, role: str, name: str) -> ImageInput:
    """The image ``part`` names, decoded and checked; problems name ``name``."""
    from imagen_core.errors import InvalidInput
    from imagen_core.models import ImageInput

    try:
        if isinstance(part, Ref):
            path = resolve_inside(state.output_dir, part.id)
            if path is None:
                raise UploadProblem(name, f"no image {part.id!r} in the gallery")
            return ImageInput.from_path(path, role=role, named=_label(part, name))
        return ImageInput.from_bytes(part.data, role=role, source=_label(part, name))
    except InvalidInput as exc:
        raise UploadProblem(name, str(exc)) from None


def _label(part: Upload | Ref, name: str) -> str:
    if isinstance(part, Ref):
        return f"{name} ({part.id})"
    return f"{name} ({part.filename})" if part.filename else name


def _kept(state: WebState, part: Upload | Ref, made: ImageInput) -> ImageInput:
    """A gallery image as it is (its source is its file); an upload stored."""
    return made if isinstance(part, Ref) else _stored(state, made)


def _stored(state: WebState, made: ImageInput) -> ImageInput:
    return attrs.evolve(made, source=str(store(state.output_dir, made)))


def store(root: Path, made: ImageInput) -> Path:
    """``root/inputs/<sha256>.<ext>``, written once (content-addressed)."""
    from imagen_core.errors import OutputError
    from imagen_core.pipeline import write_new

    target = root / INPUTS_FOLDER / f"{made.sha256}.{made.extension}"
    if target.is_file():
        return target.resolve()
    try:
        written = write_new(target, made.data)
    except OutputError as exc:
        raise UploadProblem("image", f"cannot keep the upload: {exc}", 500) from None
    if written != target:  # another request stored the same bytes meanwhile
        written.unlink(missing_ok=True)
    return target.resolve()


# ----------------------------------------------------------------- /v1/generate, /v1/jobs

#: Form fields that are numbers in the JSON body (a form sends text).
_NUMBERS: dict[str, type] = {
    "width": int,
    "height": int,
    "seed": int,
    "steps": int,
    "max_attempts": int,
    "strength": float,
}


def _typed(name: str, text: str) -> object:
    kind = _NUMBERS.get(name)
    if kind is None:
        return text
    try:
        return kind(text)
    except ValueError:
        raise UploadProblem(name, f"expected a number, got {text!r}") from None


async def body_and_inputs(
    request: HttpRequest, state: WebState, cls: type[T]
) -> tuple[T, tuple[ImageInput, ...], tuple[str, ...]]:
    """The body of ``POST /v1/generate`` or ``/v1/jobs`` (JSON, or a multipart
    form with files ``image`` and ``mask`` and gallery ids ``image_id`` and
    ``mask_id``), its input images, checked, and the warnings for the answer
    (what was changed on the way: a mask scaled to the image, as the CLI says
    on stderr); every problem a 4xx naming the field."""
    from starlette.concurrency import run_in_threadpool

    from imagen_web.api import _json_body
    from imagen_web.bodies import structure
    from imagen_web.errors import ApiError

    try:
        kind = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
        if kind == "multipart/form-data":
            form = await read_form(request, files=("image", "mask"), refs=("image_id", "mask_id"))
            if form.repeated:
                raise UploadProblem(form.repeated[0], "is given more than once")
            body = structure({k: _typed(k, v) for k, v in form.texts.items()}, cls)
            images = form.files("image", "image_id")
            masks = form.files("mask", "mask_id")
        else:
            body = structure(await _json_body(request), cls)
            images = [_part("images", item) for item in getattr(body, "images", ())]
            mask = getattr(body, "mask", None)
            masks = [_part("mask", mask)] if mask is not None else []
        if len(masks) > 1:
            raise UploadProblem("mask", "give at most one mask")
        warnings: list[str] = []
        inputs = await run_in_threadpool(
            image_inputs, state, images, masks[0] if masks else None, warn=warnings.append
        )
    except UploadProblem as exc:
        code = {
            403: "cross_site",
            415: "unsupported_media_type",
            400: "bad_form",
            500: "output_failed",
        }
        raise ApiError(
            exc.status, code.get(exc.status, "invalid_input"), f"{exc.field}: {exc.message}"
        ) from None
    return body, inputs, tuple(warnings)


def _part(field: str, item: InputBody) -> Upload | Ref:
    if item.id is not None:
        return Ref(field, item.id)
    return decode(field, item.data)
