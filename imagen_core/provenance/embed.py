"""What imagen writes into a finished image: A1111 ``parameters`` (PNG text chunk,
or EXIF UserComment in JPEG/WebP) and, in PNG, an ``imagen`` iTXt chunk holding
the sidecar's record. Nothing is re-encoded: chunks and segments are inserted
beside the image data, so a backend's own chunks (ComfyUI's ``prompt`` and
``workflow``) stay byte for byte.

A file that carries a C2PA manifest (a provider's Content Credentials) is left
exactly as received: its signature covers every byte of the file, so adding
anything would make it invalid. The sidecar still records everything.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from imagen_core._version import __version__
from imagen_core.provenance.infotext import format_infotext

if TYPE_CHECKING:
    from imagen_core.models import Generation

IMAGEN_KEY = "imagen"
C2PA_NOTE = "the image carries a C2PA manifest, which any added metadata would invalidate"


def parameters_text(record: Generation, width: int, height: int) -> str:
    """The A1111 infotext of a generation: what the prompt, seed and model were."""
    result = record.result
    assert result is not None
    request = record.request
    meta = result.metadata
    params: dict[str, Any] = {
        "Steps": request.steps or meta.get("steps"),
        # Readers (sd-parsers) need a sampler; the backend's type is the honest
        # answer when the backend does not name one.
        "Sampler": meta.get("sampler") or record.backend_type,
        "CFG scale": request.extra.get("cfg", meta.get("cfg")),
        "Seed": result.seed,
        "Size": f"{width}x{height}",
        "Model": result.model,
        "Denoising strength": request.strength,
        "Backend": record.backend,
        "Style": request.style,
        "Version": f"imagen {__version__}",
    }
    return format_infotext(record.prompt_sent, request.negative, params)


def embed(data: bytes, mime_type: str, parameters: str, record: dict[str, Any]) -> bytes:
    """``data`` with the metadata added. Raises ValueError (PngError, ...) for a
    file that is not what its type says, and ``Skipped`` for one to leave alone."""
    # Each format's module is imported for its own files only (a generation start).
    if mime_type == "image/png":
        from imagen_core.provenance import png

        if png.has_chunk(data, b"caBX"):
            raise Skipped(C2PA_NOTE)
        body = json.dumps(record, ensure_ascii=False, default=str, allow_nan=False)
        return png.insert_texts(
            data, {"parameters": parameters, IMAGEN_KEY: body}, international={IMAGEN_KEY}
        )
    from imagen_core.provenance import jpeg
    from imagen_core.provenance.exif import with_user_comment

    if mime_type == "image/jpeg":
        if jpeg.has_c2pa(data):
            raise Skipped(C2PA_NOTE)
        block = with_user_comment(jpeg.exif_block(data), parameters)
        return jpeg.set_exif(data, block)
    if mime_type == "image/webp":
        from imagen_core.provenance import webp

        if webp.has_c2pa(data):
            raise Skipped(C2PA_NOTE)
        block = with_user_comment(webp.exif_block(data), parameters)
        return webp.set_exif(data, block.removeprefix(jpeg.EXIF_HEADER))
    raise Skipped(f"imagen does not write metadata into {mime_type} files")


class Skipped(Exception):
    """The file is better left as it is; the message says why."""
