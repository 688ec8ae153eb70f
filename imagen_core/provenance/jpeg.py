"""JPEG segments: the EXIF block replaced or added without touching the scan data."""

from __future__ import annotations

import struct
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Iterator

SOI = b"\xff\xd8"
APP1, APP11, COM, SOS = 0xE1, 0xEB, 0xFE, 0xDA
EXIF_HEADER = b"Exif\0\0"
MAX_SEGMENT = 0xFFFF - 2


class JpegError(ValueError):
    """The bytes are not a well-formed JPEG."""


def segments(data: bytes) -> Iterator[tuple[int, bytes, int, int]]:
    """(marker, payload, start, end) of each header segment, up to the scan."""
    if data[:2] != SOI:
        raise JpegError("not a JPEG file")
    pos = 2
    while pos + 4 <= len(data):
        if data[pos] != 0xFF:
            raise JpegError("broken segment marker")
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        (length,) = struct.unpack(">H", data[pos + 2 : pos + 4])
        end = pos + 2 + length
        if end > len(data) or length < 2:
            raise JpegError("truncated segment")
        yield marker, data[pos + 4 : end], pos, end
        if marker == SOS:
            return
        pos = end


def exif_block(data: bytes) -> bytes | None:
    for marker, payload, _start, _end in segments(data):
        if marker == APP1 and payload.startswith(EXIF_HEADER):
            return payload
    return None


def has_c2pa(data: bytes) -> bool:
    """A C2PA manifest store: APP11 segments carrying JUMBF (ISO 19566-5)."""
    return any(
        marker == APP11 and payload[:2] == b"JP" and b"jumb" in payload[:32]
        for marker, payload, _s, _e in segments(data)
    )


def set_exif(data: bytes, block: bytes) -> bytes:
    """``data`` with its EXIF segment replaced by ``block`` (``Exif\\0\\0`` + TIFF),
    or a new one after the leading APP0 segments. The scan bytes are untouched."""
    if len(block) > MAX_SEGMENT:
        raise JpegError("the EXIF block is over 64 KB")
    segment = b"\xff" + bytes([APP1]) + struct.pack(">H", len(block) + 2) + block
    insert_at = 2
    for marker, payload, start, end in segments(data):
        if marker == APP1 and payload.startswith(EXIF_HEADER):
            return data[:start] + segment + data[end:]
        if marker == 0xE0 and start == insert_at:  # JFIF/JFXX come first
            insert_at = end
    return data[:insert_at] + segment + data[insert_at:]
