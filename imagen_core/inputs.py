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

``ImageInput``, the value a request carries for each input image, is defined
here too (``imagen_core.models`` and ``imagen_core`` export it): a generation
from text alone never imports this module, nor builds the class.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

import attrs

from imagen_core.errors import InvalidInput
from imagen_core.models import (
    INPUT_FORMATS,
    INPUT_ROLES,
    MAX_INPUT_BYTES,
    MAX_SIDE,
    MIME_EXTENSIONS,
    _int_in,
)
from imagen_core.values import value_repr

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    Source = str | os.PathLike[str] | bytes


def _sha256(data: bytes) -> str:
    import hashlib

    return hashlib.sha256(data).hexdigest()


def _role(_instance: object, _attribute: attrs.Attribute[str], value: object) -> None:
    if value not in INPUT_ROLES:
        raise InvalidInput(f"an input's role is one of {', '.join(INPUT_ROLES)}, got {value!r}")


# Compared by identity (eq=False): two inputs are the same image when their
# sha256 is; comparing megabytes of bytes field by field helps nobody.
@attrs.frozen(eq=False, repr=False)
class ImageInput:
    """One image given to a generation: its bytes, never a path.

    ``role`` is ``"image"`` (the image to edit, or the init image of img2img),
    ``"reference"`` (a further image the backend may look at) or ``"mask"``
    (white = repaint). ``source`` is the path it came from, for the record.
    Build one with ``from_bytes``/``from_path``, which decode and check it."""

    __repr__ = value_repr

    data: bytes = attrs.field(repr=lambda b: f"<{len(b)} bytes>")
    mime_type: str
    width: int = attrs.field(validator=_int_in("input width", 1, MAX_SIDE))
    height: int = attrs.field(validator=_int_in("input height", 1, MAX_SIDE))
    role: str = attrs.field(default="image", validator=_role)
    source: str | None = None
    sha256: str = attrs.field(
        default=attrs.Factory(lambda self: _sha256(self.data), takes_self=True)
    )

    @classmethod
    def from_bytes(
        cls, data: bytes, *, role: str = "image", source: str | None = None
    ) -> ImageInput:
        """Decode ``data`` and check it: PNG, JPEG or WebP, at most 50 MB and
        8192 pixels a side. Raises InvalidInput naming ``source``."""
        import io

        from PIL import Image

        name = source or "the input image"
        _check_input_size(name, len(data))
        try:
            with Image.open(io.BytesIO(data)) as image:
                fmt = image.format or ""
                width, height = image.size
                if fmt in INPUT_FORMATS and max(width, height) <= MAX_SIDE:
                    image.verify()
        except Exception as exc:  # Pillow raises many types for a broken file
            raise InvalidInput(
                f"{name} is not a readable image ({_unreadable(exc)}); "
                "give a PNG, JPEG or WebP file"
            ) from None
        if fmt not in INPUT_FORMATS:
            raise InvalidInput(
                f"{name} is {fmt or 'an unknown format'}; give a PNG, JPEG or WebP file"
            )
        if max(width, height) > MAX_SIDE:
            raise InvalidInput(
                f"{name} is {width}x{height}; input images may be at most {MAX_SIDE} "
                "pixels a side: scale it down"
            )
        return cls(data, INPUT_FORMATS[fmt], width, height, role=role, source=source)

    @classmethod
    def from_path(
        cls, path: str | os.PathLike[str], *, role: str = "image", named: str | None = None
    ) -> ImageInput:
        """Read and check the file at ``path``; errors name it, or ``named`` (a
        server names a gallery image by its id, never by its path on disk)."""
        file = Path(os.fspath(path)).expanduser()
        name = named or str(file)
        try:
            _check_input_size(name, file.stat().st_size)
            data = file.read_bytes()
        except OSError as exc:
            raise InvalidInput(f"cannot read input image {name}: {exc.strerror or exc}") from None
        source = str(file.resolve())
        if named is None:
            return cls.from_bytes(data, role=role, source=source)
        # Checked under its name; its source is still its file.
        return attrs.evolve(cls.from_bytes(data, role=role, source=named), source=source)

    def with_role(self, role: str) -> ImageInput:
        return attrs.evolve(self, role=role)

    @property
    def extension(self) -> str:
        return MIME_EXTENSIONS[self.mime_type]

    def data_uri(self) -> str:
        import base64

        return f"data:{self.mime_type};base64,{base64.b64encode(self.data).decode()}"

    def describe(self) -> dict[str, Any]:
        """What a sidecar records of the input: never the bytes."""
        return {
            "sha256": self.sha256,
            "role": self.role,
            "width": self.width,
            "height": self.height,
            "mime_type": self.mime_type,
            "source": self.source,
        }


def _unreadable(exc: Exception) -> str:
    """Why Pillow could not read an image, in words: its "cannot identify image
    file <_io.BytesIO object at 0x...>" names a Python object, not the file."""
    from PIL import UnidentifiedImageError

    if isinstance(exc, UnidentifiedImageError):
        return "not an image format Pillow recognises"
    return str(exc) or type(exc).__name__


def _check_input_size(name: str, size: int) -> None:
    if size > MAX_INPUT_BYTES:
        raise InvalidInput(
            f"{name}: {size / 2**20:.1f} MB is over the 50 MB limit for input images; "
            "scale it down or save it as JPEG/WebP"
        )


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
