"""Reading a prediction: its output URLs, data: URLs, image types, logs, and what of
it is safe to keep in a sidecar. Pure functions, no network."""

from __future__ import annotations

import base64
import binascii
import re
from typing import Any
from urllib.parse import unquote_to_bytes, urlsplit

# The output field differs per model: one URL string (flux-1.1-pro, sd3.5), a list
# of them (flux-schnell/dev), occasionally data: URLs; models outside the families
# may nest them in a mapping. Every URL found, in order.
_URL_PREFIXES = ("https://", "http://", "data:")


def output_urls(output: Any) -> list[str]:
    if isinstance(output, str):
        return [output] if output.startswith(_URL_PREFIXES) else []
    if isinstance(output, list):
        return [url for item in output for url in output_urls(item)]
    if isinstance(output, dict):
        return [url for item in output.values() for url in output_urls(item)]
    return []


def decode_data_url(url: str) -> tuple[bytes, str | None]:
    """The bytes and media type of a ``data:`` URL (RFC 2397)."""
    header, comma, payload = url.partition(",")
    if not comma:
        raise ValueError("a data: URL without a comma")
    params = header.removeprefix("data:").split(";")
    media_type = params[0].strip().lower() or None
    if "base64" in (p.strip().lower() for p in params[1:]):
        try:
            return base64.b64decode(payload, validate=False), media_type
        except binascii.Error as exc:
            raise ValueError(f"bad base64 in a data: URL ({exc})") from None
    return unquote_to_bytes(payload), media_type


_SUFFIX_TYPES = {
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".webp": "image/webp",
    ".gif": "image/gif",
}
_ALIASES = {"image/jpg": "image/jpeg", "image/pjpeg": "image/jpeg", "image/x-png": "image/png"}


def sniff(data: bytes) -> str | None:
    """The image type from the first bytes, for when no header or suffix names it."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return "image/gif"
    return None


def image_type(declared: str | None, url: str, data: bytes) -> str | None:
    """The image's MIME type: the declared one (Content-Type, or a data: URL's media
    type) when it is an image type, else the URL's suffix, else the bytes; None when
    nothing says it is an image."""
    if declared:
        kind = declared.split(";")[0].strip().lower()
        kind = _ALIASES.get(kind, kind)
        if kind.startswith("image/"):
            return kind
    if not url.startswith("data:"):
        path = urlsplit(url).path.lower()
        for suffix, kind in _SUFFIX_TYPES.items():
            if path.endswith(suffix):
                return kind
    return sniff(data)


def short_url(url: str) -> str:
    """A URL fit for a sidecar: a data: URL is replaced by its type and size."""
    if not url.startswith("data:"):
        return url
    header = url.partition(",")[0]
    return f"{header},... ({len(url)} characters)"


# Some community models take credentials as inputs (hf_api_token, api_key, ...):
# their values must never reach a sidecar.
_SECRET_KEY = re.compile(r"token|secret|password|passwd|api_?key|credential|auth", re.I)


def safe_input(sent: dict[str, Any]) -> dict[str, Any]:
    """The input as kept in metadata: no prompt (the sidecar has it as prompt_sent),
    secret-looking values masked, data: URLs shortened."""
    kept: dict[str, Any] = {}
    for key, value in sent.items():
        if key == "prompt":
            continue
        if _SECRET_KEY.search(key):
            kept[key] = "***"
        elif isinstance(value, str):
            kept[key] = short_url(value)
        else:
            kept[key] = value
    return kept


# tqdm's bar as models print it: " 45%|████▌     | 9/20 [00:01<00:01, 8.1it/s]".
# Replicate has no progress field; this is what replicate-python parses too.
_TQDM = re.compile(r"^\s*(\d+)%\s*\|.+?\|\s*(\d+)/(\d+)")


def log_progress(logs: Any) -> tuple[int, int] | None:
    """(done, total) of the last progress bar in a prediction's logs, if any."""
    if not isinstance(logs, str):
        return None
    for line in reversed(re.split(r"[\r\n]", logs)):
        match = _TQDM.match(line)
        if match:
            done, total = int(match[2]), int(match[3])
            if 0 <= done <= total and total > 0:
                return done, total
    return None


def one_line(text: str, limit: int = 400) -> str:
    """Server text as one line: Replicate's 422 details list fields on lines of their own."""
    parts = [p.strip(" -") for p in str(text).splitlines()]
    line = "; ".join(p for p in parts if p)
    line = " ".join(line.split())
    return line if len(line) <= limit else line[: limit - 3] + "..."
