"""PNG chunks, read and inserted without decoding or re-encoding the pixels.

Text goes before the first IDAT: readers that use Pillow's ``Image.info`` (A1111,
sd-prompt-reader, most image browsers) stop there and never see later chunks.
"""

from __future__ import annotations

import struct
import zlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping

SIGNATURE = b"\x89PNG\r\n\x1a\n"
TEXT_TYPES = (b"tEXt", b"iTXt", b"zTXt")


class PngError(ValueError):
    """The bytes are not a well-formed PNG."""


def spans(data: bytes) -> Iterator[tuple[bytes, int, int]]:
    """(type, start, end) of every chunk, reading only the headers (a 1024² image
    is megabytes of IDAT that nothing here needs to copy)."""
    if data[:8] != SIGNATURE:
        raise PngError("not a PNG file")
    pos, size = 8, len(data)
    while pos < size:
        if pos + 12 > size:
            raise PngError("truncated chunk")
        length, kind = struct.unpack_from(">I4s", data, pos)
        end = pos + 12 + length
        if end > size:
            raise PngError(f"truncated {kind.decode('latin-1')} chunk")
        yield kind, pos, end
        pos = end
        if kind == b"IEND":
            return


def chunks(data: bytes) -> Iterator[tuple[bytes, bytes, int, int]]:
    """(type, data, start, end) of every chunk; raises PngError on a broken file."""
    for kind, start, end in spans(data):
        yield kind, data[start + 8 : end - 4], start, end


def chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def text_chunk(key: str, text: str, *, international: bool = False) -> bytes:
    """tEXt when the text is Latin-1 (what every reader takes), else iTXt (UTF-8)."""
    keyword = key.encode("latin-1")
    if not international:
        try:
            return chunk(b"tEXt", keyword + b"\0" + text.encode("latin-1"))
        except UnicodeEncodeError:
            pass
    # keyword \0, compression flag 0, method 0, language "" \0, translated keyword "" \0
    return chunk(b"iTXt", keyword + b"\0\0\0\0\0" + text.encode("utf-8"))


def decode_text(kind: bytes, body: bytes) -> tuple[str, str] | None:
    """(keyword, text) of a text chunk; None when it cannot be decoded."""
    try:
        keyword, _, rest = body.partition(b"\0")
        key = keyword.decode("latin-1")
        if kind == b"tEXt":
            return key, rest.decode("latin-1")
        if kind == b"zTXt":
            return key, zlib.decompressobj().decompress(rest[1:], 8 << 20).decode("latin-1")
        compressed, _method = rest[0], rest[1]
        _lang, _, rest = rest[2:].partition(b"\0")
        _tkey, _, text = rest.partition(b"\0")
        if compressed:
            text = zlib.decompressobj().decompress(text, 8 << 20)
        return key, text.decode("utf-8")
    except (IndexError, UnicodeDecodeError, zlib.error):
        return None


def texts(data: bytes) -> dict[str, str]:
    """Every text chunk's keyword and text, wherever it is (the last copy wins)."""
    found = {}
    for kind, body, _start, _end in chunks(data):
        if kind in TEXT_TYPES:
            decoded = decode_text(kind, body)
            if decoded is not None:
                found[decoded[0]] = decoded[1]
    return found


def has_chunk(data: bytes, kind: bytes) -> bool:
    return any(k == kind for k, _s, _e in spans(data))


def insert_texts(data: bytes, items: Mapping[str, str], *, international: set[str]) -> bytes:
    """``data`` with a text chunk per item before the first IDAT, and earlier
    copies of those keywords dropped. Every other byte is kept as it was."""
    view = memoryview(data)
    out: list[bytes | memoryview] = []
    keep_from, placed = 0, False
    for kind, start, end in spans(data):
        if kind in TEXT_TYPES:
            keyword = data[start + 8 : min(end - 4, start + 88)].partition(b"\0")[0]
            if keyword.decode("latin-1") in items:
                out.append(view[keep_from:start])
                keep_from = end
        elif kind == b"IDAT" and not placed:
            out.append(view[keep_from:start])
            out += [text_chunk(k, v, international=k in international) for k, v in items.items()]
            keep_from, placed = start, True
    if not placed:
        raise PngError("no image data (IDAT) in the PNG")
    out.append(view[keep_from:])
    return b"".join(out)
