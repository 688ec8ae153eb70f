"""``imagen info``: how an image was made, from whatever convention its file uses.

Read, in this order of trust: imagen's own record (the ``imagen`` PNG chunk, or a
sidecar), A1111's ``parameters`` (PNG text or EXIF UserComment), SwarmUI's JSON
in the same places, ComfyUI's ``prompt`` graph (walked for the sampler, model,
seed, steps and size), InvokeAI's ``invokeai_metadata``; and whether a C2PA
manifest is present, with its issuer. Everything lands in one ``ImageInfo``.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import attrs

from imagen_core.provenance import jpeg, png, webp
from imagen_core.provenance.exif import user_comment
from imagen_core.provenance.infotext import parse_infotext


class Unreadable(Exception):
    """The file cannot be read as an image or a sidecar; the message says why."""


@attrs.define
class ImageInfo:
    """The normalised view. ``found`` names the conventions present, in the order
    read; a field stays None when no convention gave it."""

    path: str
    format: str
    found: list[str] = attrs.Factory(list)
    prompt: str | None = None
    negative: str | None = None
    seed: int | None = None
    steps: int | None = None
    sampler: str | None = None
    cfg: float | None = None
    width: int | None = None
    height: int | None = None
    model: str | None = None
    backend: str | None = None
    backend_type: str | None = None
    style: str | None = None
    strength: float | None = None
    c2pa: dict[str, str | None] | None = None
    comfyui_workflow: bool = False
    record: dict[str, Any] | None = None
    parameters: dict[str, str] = attrs.Factory(dict)

    def fill(self, **values: Any) -> None:
        """Set each field still unknown (earlier, more trusted sources win)."""
        for name, value in values.items():
            if value is not None and value != "" and getattr(self, name) is None:
                setattr(self, name, value)

    def as_dict(self) -> dict[str, Any]:
        return attrs.asdict(self)


def read_info(path: str | Path) -> ImageInfo:
    """Everything known about how the image (or sidecar) at ``path`` was made."""
    file = Path(path)
    try:
        data = file.read_bytes()
    except OSError as exc:
        raise Unreadable(f"{file}: {exc.strerror or exc}") from None
    return read_info_bytes(data, file)


def read_info_bytes(data: bytes, name: str | Path) -> ImageInfo:
    """As ``read_info``, for the bytes of a file (an upload) called ``name``."""
    file = Path(name)
    try:
        if data[:8] == png.SIGNATURE:
            return _png(file, data)
        if data[:2] == jpeg.SOI:
            return _exif_file(file, "JPEG", data, jpeg.exif_block, jpeg.has_c2pa(data))
        if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
            return _exif_file(file, "WebP", data, webp.exif_block, webp.has_c2pa(data))
        if data.lstrip()[:1] == b"{":
            return _sidecar(file, data)
    except (ValueError, KeyError, IndexError) as exc:
        raise Unreadable(f"{file}: damaged file ({exc})") from None
    raise Unreadable(f"{file}: not a PNG, JPEG or WebP image, nor an imagen sidecar")


def parameters_of(data: bytes) -> str | None:
    """The A1111 ``parameters`` text of an image as written (PNG text chunk, or
    the EXIF UserComment of a JPEG or WebP), or None."""
    try:
        if data[:8] == png.SIGNATURE:
            return png.texts(data).get("parameters")
        if data[:2] == jpeg.SOI:
            block = jpeg.exif_block(data)
        elif data[:4] == b"RIFF" and data[8:12] == b"WEBP":
            block = webp.exif_block(data)
        else:
            return None
        text = user_comment(block) if block else None
    except (ValueError, KeyError, IndexError, OSError):
        return None
    return text if text and not text.lstrip().startswith("{") else None


# ----------------------------------------------------------------- formats


def _png(file: Path, data: bytes) -> ImageInfo:
    texts = png.texts(data)
    info = ImageInfo(str(file), "PNG")
    if "imagen" in texts:
        _record(info, _json(texts["imagen"]))
    if "parameters" in texts:
        _parameters(info, texts["parameters"])
    if "prompt" in texts:
        _comfyui(info, _json(texts["prompt"]))
    if "workflow" in texts:
        info.comfyui_workflow = True
        if "comfyui" not in info.found:
            info.found.append("comfyui")
    if "invokeai_metadata" in texts:
        _invokeai(info, _json(texts["invokeai_metadata"]))
    for kind, body, _start, _end in png.chunks(data):
        if kind == b"caBX":
            info.c2pa = c2pa_summary(body)
            info.found.append("c2pa")
        elif kind == b"IHDR":
            info.fill(
                width=int.from_bytes(body[:4], "big"), height=int.from_bytes(body[4:8], "big")
            )
    return info


def _exif_file(file: Path, fmt: str, data: bytes, find: Any, has_c2pa: bool) -> ImageInfo:
    info = ImageInfo(str(file), fmt)
    block = find(data)
    comment = user_comment(block) if block else None
    if comment:
        _parameters(info, comment)
    if has_c2pa:
        info.c2pa = c2pa_summary(data)
        info.found.append("c2pa")
    from io import BytesIO

    from PIL import Image

    with Image.open(BytesIO(data)) as image:
        info.fill(width=image.size[0], height=image.size[1])
    return info


def _sidecar(file: Path, data: bytes) -> ImageInfo:
    record = _json(data.decode("utf-8", "replace"))
    if not isinstance(record, dict) or "imagen_version" not in record:
        raise Unreadable(f"{file}: a JSON file, but not an imagen sidecar")
    info = ImageInfo(str(file), "sidecar")
    _record(info, record)
    return info


# ----------------------------------------------------------------- conventions


def _json(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return None


def _record(info: ImageInfo, record: Any) -> None:
    if not isinstance(record, dict):
        return
    info.found.append("imagen")
    info.record = record
    request = mapping(record.get("request"))
    backend = mapping(record.get("backend"))
    metadata = mapping(record.get("metadata"))
    info.fill(
        prompt=record.get("prompt_sent") or record.get("prompt"),
        negative=request.get("negative") or None,
        seed=record.get("seed"),
        steps=request.get("steps") or metadata.get("steps"),
        width=record.get("width"),
        height=record.get("height"),
        model=record.get("model"),
        backend=backend.get("name"),
        backend_type=backend.get("type"),
        style=request.get("style"),
        strength=request.get("strength"),
    )


def _parameters(info: ImageInfo, text: str) -> None:
    data = _json(text) if text.lstrip().startswith("{") else None
    if isinstance(data, dict) and isinstance(data.get("sui_image_params"), dict):
        params = data["sui_image_params"]
        info.found.append("swarmui")
        info.fill(
            prompt=params.get("prompt"),
            negative=params.get("negativeprompt") or None,
            seed=_int(params.get("seed")),
            steps=_int(params.get("steps")),
            cfg=_float(params.get("cfgscale")),
            width=_int(params.get("width")),
            height=_int(params.get("height")),
            model=params.get("model"),
            sampler=params.get("sampler"),
        )
        return
    prompt, negative, params = parse_infotext(text)
    info.found.append("a1111")
    info.parameters = params
    width, _, height = params.get("Size", "").partition("x")
    info.fill(
        prompt=prompt,
        negative=negative or None,
        seed=_int(params.get("Seed")),
        steps=_int(params.get("Steps")),
        sampler=params.get("Sampler"),
        cfg=_float(params.get("CFG scale")),
        width=_int(width),
        height=_int(height),
        model=params.get("Model"),
        backend=params.get("Backend"),
        style=params.get("Style"),
        strength=_float(params.get("Denoising strength")),
    )


_SAMPLERS = ("KSampler", "KSamplerAdvanced", "SamplerCustom", "SamplerCustomAdvanced")
_MODELS = {
    "CheckpointLoaderSimple": "ckpt_name",
    "CheckpointLoader": "ckpt_name",
    "UNETLoader": "unet_name",
    "UnetLoaderGGUF": "unet_name",
}
_LATENTS = ("EmptyLatentImage", "EmptySD3LatentImage", "EmptyFlux2LatentImage")


def _comfyui(info: ImageInfo, graph: Any) -> None:
    """Walk ComfyUI's API-format graph for what a person wants to know."""
    if not isinstance(graph, dict):
        return
    nodes = {key: node for key, node in graph.items() if isinstance(node, dict)}
    if not any("class_type" in node for node in nodes.values()):
        return
    info.found.append("comfyui")

    def inputs(node: dict[str, Any]) -> dict[str, Any]:
        found = node.get("inputs")
        return found if isinstance(found, dict) else {}

    def follow(value: Any) -> dict[str, Any] | None:
        # A link is [node id, output index].
        if isinstance(value, list) and value and str(value[0]) in nodes:
            return nodes[str(value[0])]
        return None

    def text_of(value: Any, depth: int = 0) -> str | None:
        node = follow(value)
        if node is None or depth > 8:
            return None
        args = inputs(node)
        if isinstance(args.get("text"), str):
            return str(args["text"])
        for key in ("conditioning", "positive", "conditioning_to", "guider"):
            if key in args:
                found = text_of(args[key], depth + 1)
                if found:
                    return found
        return None

    for node in nodes.values():
        kind, args = node.get("class_type"), inputs(node)
        if kind in _SAMPLERS:
            info.fill(
                seed=_int(args.get("seed", args.get("noise_seed"))),
                steps=_int(args.get("steps")),
                sampler=args.get("sampler_name")
                if isinstance(args.get("sampler_name"), str)
                else None,
                cfg=_float(args.get("cfg")),
                prompt=text_of(args.get("positive")),
                negative=text_of(args.get("negative")),
            )
        elif kind in _MODELS and isinstance(args.get(_MODELS[kind]), str):
            info.fill(model=args[_MODELS[kind]])
        elif kind in _LATENTS:
            info.fill(width=_int(args.get("width")), height=_int(args.get("height")))
        elif kind == "RandomNoise":
            info.fill(seed=_int(args.get("noise_seed")))
        elif kind == "BasicScheduler":
            info.fill(steps=_int(args.get("steps")))
        elif kind == "KSamplerSelect" and isinstance(args.get("sampler_name"), str):
            info.fill(sampler=args["sampler_name"])


def _invokeai(info: ImageInfo, data: Any) -> None:
    if not isinstance(data, dict):
        return
    info.found.append("invokeai")
    model = data.get("model")
    info.fill(
        prompt=data.get("positive_prompt"),
        negative=data.get("negative_prompt") or None,
        seed=_int(data.get("seed")),
        steps=_int(data.get("steps")),
        cfg=_float(data.get("cfg_scale")),
        sampler=data.get("scheduler"),
        width=_int(data.get("width")),
        height=_int(data.get("height")),
        model=model.get("name") if isinstance(model, dict) else model,
    )


# ----------------------------------------------------------------- C2PA

_ORG = re.compile(rb"\x06\x03\x55\x04\x0a[\x0c\x13](.)", re.S)


def c2pa_summary(blob: bytes) -> dict[str, str | None]:
    """What a person can learn from a C2PA manifest store without validating it:
    the claim generator and the organisation named in the signing certificate.
    (imagen reports presence; validating the signature is c2patool's job.)"""
    return {"generator": _cbor_text_after(blob, b"claim_generator"), "issuer": _issuer(blob)}


def _issuer(blob: bytes) -> str | None:
    # DER: OID organizationName (2.5.4.10), then a UTF8String/PrintableString.
    # In a certificate the issuer's name comes before the subject's.
    for match in _ORG.finditer(blob):
        length = match.group(1)[0]
        start = match.end()
        if length < 0x80:
            text = blob[start : start + length].decode("utf-8", "replace").strip()
            if text:
                return text
    return None


def _cbor_text_after(blob: bytes, key: bytes) -> str | None:
    at = blob.find(bytes([0x60 + len(key)]) + key) if len(key) < 24 else -1
    if at < 0:
        return None
    pos = at + 1 + len(key)
    if pos >= len(blob):
        return None
    head = blob[pos]
    if 0x60 <= head <= 0x77:
        length, pos = head - 0x60, pos + 1
    elif head == 0x78 and pos + 1 < len(blob):
        length, pos = blob[pos + 1], pos + 2
    elif head == 0x79 and pos + 2 < len(blob):
        length, pos = int.from_bytes(blob[pos + 1 : pos + 3], "big"), pos + 3
    else:
        return None
    return blob[pos : pos + length].decode("utf-8", "replace") or None


def mapping(value: Any) -> dict[str, Any]:
    """``value`` when it is a JSON object, else an empty one: records are read
    from files anyone may have written."""
    return value if isinstance(value, dict) else {}


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _int(value: Any) -> int | None:
    try:
        return int(str(value).strip())
    except (TypeError, ValueError):
        return None


def _float(value: Any) -> float | None:
    try:
        return float(str(value).strip())
    except (TypeError, ValueError):
        return None
