"""The image an agent sees: the file itself when small, else a scaled copy.

Hosts pass tool images to a model whose context is small and whose image input
is limited (a few megabytes, about 1,500 pixels a side); the full file stays on
disk and its path is in the answer beside the preview.
"""

from __future__ import annotations

import base64
import io
import os
from typing import TYPE_CHECKING

from mcp.types import ImageContent

if TYPE_CHECKING:
    from pathlib import Path

PREVIEW_SIDE = 1024
PREVIEW_BYTES = 1_000_000
_MIME = {"PNG": "image/png", "JPEG": "image/jpeg", "WEBP": "image/webp"}


def preview_content(path: str | os.PathLike[str] | Path) -> ImageContent | None:
    """The image at ``path`` as MCP image content, scaled down when large;
    None when it cannot be read (the path in the answer still says where it is)."""
    from PIL import Image

    try:
        with open(os.fspath(path), "rb") as handle:
            data = handle.read()
        with Image.open(io.BytesIO(data)) as image:
            fmt = image.format or ""
            if fmt in _MIME and max(image.size) <= PREVIEW_SIDE and len(data) <= PREVIEW_BYTES:
                return _content(data, _MIME[fmt])
            image.thumbnail((PREVIEW_SIDE, PREVIEW_SIDE))
            buffer = io.BytesIO()
            if image.mode in ("RGBA", "LA", "P"):
                image.save(buffer, "PNG", optimize=True)
                return _content(buffer.getvalue(), "image/png")
            image.convert("RGB").save(buffer, "JPEG", quality=85)
            return _content(buffer.getvalue(), "image/jpeg")
    except (OSError, ValueError):
        return None


def _content(data: bytes, mime_type: str) -> ImageContent:
    return ImageContent(data=base64.b64encode(data).decode("ascii"), mime_type=mime_type)
