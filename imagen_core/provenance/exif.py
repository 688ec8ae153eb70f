"""EXIF UserComment, the carrier A1111, SwarmUI and every reader use in JPEG
and WebP files: an 8-byte charset prefix, then the text (``UNICODE\\0`` +
UTF-16 big-endian, as piexif's ``UserComment.dump(..., encoding="unicode")``)."""

from __future__ import annotations

EXIF_IFD = 0x8769
USER_COMMENT = 0x9286
_UNICODE = b"UNICODE\0"
_ASCII = b"ASCII\0\0\0"


def with_user_comment(tiff: bytes | None, text: str) -> bytes:
    """An EXIF block (``Exif\\0\\0`` + TIFF) with UserComment set to ``text``,
    keeping every other tag of ``tiff`` (a file's existing EXIF, if any)."""
    from PIL import Image

    exif = Image.Exif()
    if tiff:
        exif.load(tiff)
    exif.get_ifd(EXIF_IFD)[USER_COMMENT] = _UNICODE + text.encode("utf-16-be")
    return bytes(exif.tobytes())


def user_comment(tiff: bytes) -> str | None:
    """The UserComment of an EXIF block (with or without ``Exif\\0\\0``), decoded."""
    from PIL import Image

    exif = Image.Exif()
    try:
        exif.load(tiff)
        raw = exif.get_ifd(EXIF_IFD).get(USER_COMMENT)
    except Exception:  # a broken EXIF block is no comment
        return None
    if isinstance(raw, str):
        return raw or None
    if not isinstance(raw, bytes) or len(raw) < 8:
        return None
    prefix, body = raw[:8], raw[8:]
    if prefix == _UNICODE:
        # piexif writes big-endian; some writers follow the TIFF's byte order.
        for codec in ("utf-16-be", "utf-16-le"):
            try:
                text = body.decode(codec)
            except UnicodeDecodeError:
                continue
            if text.isprintable() or "\n" in text:
                return text.rstrip("\0") or None
        return None
    if prefix == _ASCII or prefix == b"\0" * 8:
        return body.decode("utf-8", "replace").rstrip("\0") or None
    return raw.decode("utf-8", "replace").rstrip("\0") or None
