"""WebP (RIFF) chunks: an EXIF chunk set without touching the image bitstream.

A simple file (a lone VP8 or VP8L chunk) becomes an extended one: a VP8X chunk
with the EXIF flag and the canvas size goes first, as the container spec asks."""

from __future__ import annotations

import struct
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Iterator

_EXIF_FLAG = 0x08
_ALPHA_FLAG = 0x10


class WebpError(ValueError):
    """The bytes are not a well-formed WebP file."""


def chunks(data: bytes) -> Iterator[tuple[bytes, bytes]]:
    if data[:4] != b"RIFF" or data[8:12] != b"WEBP":
        raise WebpError("not a WebP file")
    pos = 12
    while pos + 8 <= len(data):
        kind = data[pos : pos + 4]
        (length,) = struct.unpack("<I", data[pos + 4 : pos + 8])
        end = pos + 8 + length
        if end > len(data):
            raise WebpError(f"truncated {kind!r} chunk")
        yield kind, data[pos + 8 : end]
        pos = end + (length & 1)


def _chunk(kind: bytes, body: bytes) -> bytes:
    return kind + struct.pack("<I", len(body)) + body + (b"\0" if len(body) & 1 else b"")


def exif_block(data: bytes) -> bytes | None:
    return next((body for kind, body in chunks(data) if kind == b"EXIF"), None)


def has_c2pa(data: bytes) -> bool:
    return any(kind == b"C2PA" for kind, _body in chunks(data))


def set_exif(data: bytes, tiff: bytes) -> bytes:
    """``data`` with its EXIF chunk set to ``tiff`` (the TIFF block, no ``Exif\\0\\0``)."""
    found = list(chunks(data))
    kinds = [kind for kind, _ in found]
    if b"VP8X" not in kinds:
        from io import BytesIO

        from PIL import Image

        with Image.open(BytesIO(data)) as image:
            width, height = image.size
            alpha = "A" in image.getbands()
        header = bytes([_ALPHA_FLAG if alpha else 0]) + b"\0\0\0"
        header += (width - 1).to_bytes(3, "little") + (height - 1).to_bytes(3, "little")
        found.insert(0, (b"VP8X", header))
    out = []
    for kind, body in found:
        if kind == b"EXIF":
            continue
        if kind == b"VP8X":
            body = bytes([body[0] | _EXIF_FLAG]) + body[1:]
        out.append(_chunk(kind, body))
    # EXIF comes after the image data (and before XMP), as the container spec orders it.
    position = next(
        (i for i, c in enumerate(out) if c[:4] == b"XMP "),
        len(out),
    )
    out.insert(position, _chunk(b"EXIF", tiff))
    body = b"WEBP" + b"".join(out)
    return b"RIFF" + struct.pack("<I", len(body)) + body
