"""Input images from where a person names them: paths, ``-`` (stdin), bytes.

The CLI, the web API and the MCP server all turn what they were given into
``ImageInput`` values here, so that every front door checks inputs the same way
before any backend is called:

    >>> inputs = load_inputs(images=["photo.png", "style.jpg"], mask="mask.png")
    >>> Request("make the sky red", inputs=inputs)

The first image is the one to edit (or the init image of img2img); further ones
are references. ``-`` reads one image from stdin: its bytes, or -- when stdin
holds one line of text naming an existing file, as a previous ``imagen
generate`` prints -- that file.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

from imagen_core.errors import InvalidInput
from imagen_core.models import ImageInput

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    Source = str | os.PathLike[str] | bytes

STDIN = "-"
# A path piped in is short text; anything longer is an image (or garbage).
_MAX_PATH_TEXT = 4096
# Aspect ratios closer than this are "the same" when a mask is scaled to fit.
_ASPECT_TOLERANCE = 0.01


def load_inputs(
    images: Sequence[Source] = (),
    mask: Source | None = None,
    *,
    stdin: BinaryIO | None = None,
    warn: Callable[[str], None] | None = None,
) -> tuple[ImageInput, ...]:
    """The inputs of a request, checked: the image to edit first, then the
    references, then the mask (scaled to the image's size, with a warning, when
    only its size differs). Each item is a path, ``"-"`` (read from ``stdin``,
    default the process's stdin; at most once) or the image's bytes.
    Raises InvalidInput naming the file."""
    if mask is not None and not images:
        raise InvalidInput("--mask needs an image to apply to: give it with --image")
    sources = [*images, *([mask] if mask is not None else [])]
    if sum(1 for source in sources if _is_stdin(source)) > 1:
        raise InvalidInput("stdin can be read once: give '-' for one image only")
    roles = ["image" if index == 0 else "reference" for index in range(len(images))]
    roles += ["mask"] * (mask is not None)
    loaded = [
        load_input(source, role=role, stdin=stdin)
        for source, role in zip(sources, roles, strict=True)
    ]
    if mask is not None:
        loaded[-1] = fit_mask(loaded[-1], loaded[0], warn=warn)
    return tuple(loaded)


def load_input(source: Source, *, role: str = "image", stdin: BinaryIO | None = None) -> ImageInput:
    """One input from a path, ``"-"`` (stdin) or bytes."""
    if isinstance(source, bytes):
        return ImageInput.from_bytes(source, role=role)
    if _is_stdin(source):
        return _from_stdin(stdin, role)
    text = os.fspath(source)
    if not text.strip():
        raise InvalidInput(f"an empty path was given for the {_what(role)}: name an image file")
    return ImageInput.from_path(text, role=role)


def _is_stdin(source: Source) -> bool:
    return isinstance(source, str) and source == STDIN


def _what(role: str) -> str:
    return {"image": "image", "reference": "reference image", "mask": "mask"}[role]


def _from_stdin(stdin: BinaryIO | None, role: str) -> ImageInput:
    stream = stdin if stdin is not None else sys.stdin.buffer
    if stream.isatty():
        raise InvalidInput(
            "'-' reads an image from stdin, but stdin is a terminal: pipe an image "
            "or a path into imagen (… | imagen generate PROMPT --image -)"
        )
    data = stream.read()
    if not data.strip():
        raise InvalidInput("stdin is empty: pipe an image or a path into '-'")
    path = _path_text(data)
    if path is None:
        return ImageInput.from_bytes(data, role=role, source=None)
    if not Path(path).expanduser().is_file():
        raise InvalidInput(
            f"stdin holds text, not an image, and {path!r:.200} is not a file: "
            "pipe an image's bytes or the path of an image file"
        )
    return ImageInput.from_path(path, role=role)


def _path_text(data: bytes) -> str | None:
    """The path that ``data`` spells (one line of text), or None for image bytes."""
    if len(data) > _MAX_PATH_TEXT or b"\0" in data:
        return None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return None
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if len(lines) != 1:
        if len(lines) > 1 and all(line.isprintable() for line in lines):
            raise InvalidInput(
                f"stdin holds {len(lines)} lines of text; '-' takes one image or one path"
            )
        return None
    return lines[0] if lines[0].isprintable() else None


def fit_mask(
    mask: ImageInput, image: ImageInput, *, warn: Callable[[str], None] | None = None
) -> ImageInput:
    """``mask`` at ``image``'s size: as it is when the sizes match, scaled (with
    a warning) when only the scale differs; InvalidInput when the shapes differ."""
    if (mask.width, mask.height) == (image.width, image.height):
        return mask
    name = mask.source or "the mask"
    wanted = f"{image.width}x{image.height}"
    ratio = (mask.width / mask.height) / (image.width / image.height)
    if abs(ratio - 1) > _ASPECT_TOLERANCE:
        raise InvalidInput(
            f"{name} is {mask.width}x{mask.height} but the image is {wanted}: "
            "a mask must have the image's size (or at least its shape)"
        )
    import io

    from PIL import Image

    with Image.open(io.BytesIO(mask.data)) as opened:
        scaled = opened.convert("L").resize((image.width, image.height), Image.Resampling.BILINEAR)
    buffer = io.BytesIO()
    buffer.name = "mask.png"
    scaled.save(buffer)
    from imagen_core.notices import warn as say

    (warn or say)(f"{name} is {mask.width}x{mask.height}; scaled it to the image's {wanted}")
    return ImageInput.from_bytes(buffer.getvalue(), role="mask", source=mask.source)
