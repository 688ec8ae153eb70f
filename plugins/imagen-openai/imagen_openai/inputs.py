"""Input images as ``/images/edits`` takes them: multipart files named the way the
openai SDK names them, the mask turned into OpenAI's convention, and DALL-E 2's
one square PNG.

imagen's mask is white where the image is to be repainted; OpenAI's is a PNG
whose fully transparent pixels mark that area, the size of the (first) image.
"""

from __future__ import annotations

import io
from typing import TYPE_CHECKING, Any

from imagen_core import Unsupported

if TYPE_CHECKING:
    from imagen_core import ImageInput, Request

DALL_E_2_MAX_BYTES = 4 * 1024 * 1024
File = tuple[str, tuple[str, bytes, str]]


def files(request: Request, model: str, *, one_square_png: bool) -> list[File]:
    """The multipart files: ``image`` for one image, ``image[]`` for several (as the
    SDK sends a list), then ``mask``."""
    images = request.images
    if one_square_png:
        images = tuple(_square_png(item, model) for item in images)
    name = "image" if len(images) == 1 else "image[]"
    out: list[File] = [
        (name, (f"image-{n}.{item.extension}", item.data, item.mime_type))
        for n, item in enumerate(images, 1)
    ]
    mask = request.mask
    if mask is not None:
        first = images[0]
        if (mask.width, mask.height) != (first.width, first.height):
            raise Unsupported(
                f"openai: the mask is {mask.width}x{mask.height} but the image is "
                f"{first.width}x{first.height}; give a mask the size of the image"
            )
        out.append(("mask", ("mask.png", openai_mask(mask.data), "image/png")))
    return out


def openai_mask(data: bytes) -> bytes:
    """imagen's mask (white = repaint) as OpenAI's: a PNG, transparent where to repaint.
    A mask that already has transparency is taken to be in OpenAI's form."""
    from PIL import Image

    with Image.open(io.BytesIO(data)) as image:
        if image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info:
            rgba = image.convert("RGBA")
            if rgba.getextrema()[3][0] < 255:  # some pixel is transparent already
                return _png(rgba)
        gray = image.convert("L")
    keep = gray.point(lambda value: 255 - value)  # white (repaint) -> alpha 0
    out = Image.new("RGBA", gray.size, (0, 0, 0, 255))
    out.putalpha(keep)
    return _png(out)


def _square_png(item: ImageInput, model: str) -> ImageInput:
    """DALL-E 2 edits take one square PNG under 4 MB: JPEG or WebP is converted
    (losslessly to PNG); a size it cannot take is refused before anything is sent."""
    if item.width != item.height:
        raise Unsupported(
            f"openai: {model} edits square images only, and the image is "
            f"{item.width}x{item.height}; crop it square, or use a GPT image model"
        )
    if item.mime_type != "image/png":
        from PIL import Image

        from imagen_core import ImageInput

        with Image.open(io.BytesIO(item.data)) as image:
            converted = _png(image.convert("RGBA"))
        item = ImageInput(
            converted, "image/png", item.width, item.height, role=item.role, source=item.source
        )
    if len(item.data) > DALL_E_2_MAX_BYTES:
        raise Unsupported(
            f"openai: {model} edits PNGs under 4 MB, and the image is "
            f"{len(item.data) / 2**20:.1f} MB as PNG; scale it down, or use a GPT image model"
        )
    return item


def _png(image: Any) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


def form_fields(body: dict[str, Any]) -> list[tuple[str, str]]:
    """A JSON-like body as multipart form fields, as the SDK sends them: numbers and
    booleans as text (``n=1``, ``stream=false``), lists as repeated ``key[]``, mappings
    as ``key[sub]``."""
    out: list[tuple[str, str]] = []

    def add(key: str, value: Any) -> None:
        if value is None:
            return
        if isinstance(value, bool):
            out.append((key, "true" if value else "false"))
        elif isinstance(value, dict):
            for sub, item in value.items():
                add(f"{key}[{sub}]", item)
        elif isinstance(value, (list, tuple)):
            for item in value:
                add(f"{key}[]", item)
        else:
            out.append((key, str(value)))

    for key, value in body.items():
        add(key, value)
    return out
