"""``imagen again``: the recorded request, run again, compared with the original.

The request comes from imagen's record (the ``imagen`` chunk or the sidecar);
for another tool's image, from what ``imagen info`` reads (prompt, negative,
seed, steps, size) on the default backend. Input images are found by their
sha256: at the path they came from, beside the record, or in the job queue's
input store.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs

from imagen_core.errors import UsageError
from imagen_core.models import ImageInput, Request
from imagen_core.provenance.read import ImageInfo, mapping, read_info

if TYPE_CHECKING:
    from imagen_core.models import Generation
    from imagen_core.pipeline import Session

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp")


@attrs.frozen
class Recorded:
    """What was recorded: the request to run again and the image it made."""

    request: Request
    image: Path | None
    record: dict[str, Any] | None


def recorded(path: str | Path, session: Session) -> Recorded:
    """The request recorded in (or beside) ``path``. Raises UsageError naming
    what is missing: the record, the backend, an input image."""
    from imagen_core.provenance.read import Unreadable

    file = Path(path)
    try:
        info = read_info(file)
    except Unreadable as exc:
        raise UsageError(str(exc)) from None
    image = file if file.suffix.lower() in IMAGE_SUFFIXES else _image_beside(file, info)
    if info.record is None:
        if info.prompt is None:
            raise UsageError(f"{file} records no prompt: there is nothing to run again")
        request = Request(
            prompt=info.prompt,
            negative=info.negative or "",
            width=info.width or 1024,
            height=info.height or 1024,
            seed=info.seed or 0,
            steps=info.steps or 0,
        )
        return Recorded(request, image, None)
    record = info.record
    raw = mapping(record.get("request"))
    request = Request(
        prompt=str(record.get("prompt") or raw.get("prompt") or ""),
        negative=str(raw.get("negative") or ""),
        width=int(raw.get("width") or record.get("width") or 1024),
        height=int(raw.get("height") or record.get("height") or 1024),
        # The seed the backend used: a request for "any seed" is run with that one.
        seed=int(record.get("seed") or raw.get("seed") or 0),
        steps=int(raw.get("steps") or 0),
        style=raw.get("style"),
        backend=_backend(record, session),
        extra=raw.get("extra") or {},
        inputs=_inputs(raw.get("inputs") or [], file, session),
        strength=raw.get("strength"),
    )
    return Recorded(request, image, record)


def _image_beside(sidecar: Path, info: ImageInfo) -> Path | None:
    name = mapping(info.record).get("image")
    if isinstance(name, str) and (sidecar.parent / name).is_file():
        return sidecar.parent / name
    for suffix in IMAGE_SUFFIXES:
        if sidecar.with_suffix(suffix).is_file():
            return sidecar.with_suffix(suffix)
    return None


def _backend(record: dict[str, Any], session: Session) -> str:
    """The recorded instance, else a configured one of the same type and model."""
    backend = mapping(record.get("backend"))
    name, kind, model = backend.get("name"), backend.get("type"), record.get("model")
    config, registry = session.config, session.registry
    if name in config.backends or (name in registry.backends and name not in config.backends):
        instance = config.backends.get(name)
        if instance is None or instance.type == kind:
            return str(name)
    for instance in config.backends.values():
        settings = instance.settings
        if instance.type == kind and getattr(settings, "model", None) in (model, None):
            return instance.name
    if kind in registry.backends:
        return str(kind)
    raise UsageError(
        f"the recorded backend {name!r} (type {kind}, model {model}) is not configured here; "
        "add it to imagen.yaml or pass --backend"
    )


def _inputs(entries: list[Any], origin: Path, session: Session) -> list[ImageInput]:
    found = []
    for entry in entries:
        if not isinstance(entry, dict) or not isinstance(entry.get("sha256"), str):
            continue
        data = _find_input(entry, origin, session)
        if data is None:
            where = entry.get("source") or "no path recorded"
            raise UsageError(
                f"input image {entry['sha256'][:12]} ({entry.get('role')}, from {where}) "
                f"is not at its path, beside {origin.name}, or in the job queue; "
                "put the file back or pass --image"
            )
        found.append(
            ImageInput.from_bytes(
                data, role=str(entry.get("role") or "image"), source=entry.get("source")
            )
        )
    return found


def _find_input(entry: dict[str, Any], origin: Path, session: Session) -> bytes | None:
    digest = entry["sha256"]

    def matches(path: Path) -> bytes | None:
        try:
            data = path.read_bytes()
        except OSError:
            return None
        return data if hashlib.sha256(data).hexdigest() == digest else None

    source = entry.get("source")
    if isinstance(source, str) and (data := matches(Path(source))):
        return data
    # Beside the record: the files of that one folder, never a whole tree.
    try:
        beside = sorted(origin.parent.iterdir())
    except OSError:
        beside = []
    for path in beside:
        if path.suffix.lower() in IMAGE_SUFFIXES and (data := matches(path)):
            return data
    return _from_queue(digest, session)


def _from_queue(digest: str, session: Session) -> bytes | None:
    """The job queue's stored input with this hash, when the queue keeps inputs."""
    try:
        queue = session.queue()
    except Exception:  # no usable queue here: only a place to look
        return None
    try:
        fetch = getattr(queue, "input_bytes", None)
        return fetch(digest) if callable(fetch) else None
    finally:
        queue.close()


# ----------------------------------------------------------------- comparing


def same_pixels(first: Path, second: Path) -> bool:
    """True when both files decode to the same size, mode-normalised pixels."""
    from PIL import Image

    with Image.open(first) as a, Image.open(second) as b:
        if a.size != b.size:
            return False
        return bool(a.convert("RGBA").tobytes() == b.convert("RGBA").tobytes())


def differences(old: dict[str, Any] | None, new: Generation) -> list[str]:
    """What of the fingerprint changed between the record and the new run."""
    if old is None:
        return ["the original was not made by imagen (no fingerprint to compare)"]
    result = new.result
    assert result is not None
    changes = []
    old_backend = mapping(old.get("backend"))
    pairs = {
        "backend": (old_backend.get("name"), new.backend),
        "model": (old.get("model"), result.model),
        "seed": (old.get("seed"), result.seed),
        "prompt": (old.get("prompt_sent"), new.prompt_sent),
    }
    old_print = mapping(mapping(old.get("metadata")).get("fingerprint"))
    new_print = mapping(result.metadata.get("fingerprint"))
    for key in sorted(set(old_print) | set(new_print)):
        pairs[f"fingerprint.{key}"] = (old_print.get(key), new_print.get(key))
    for what, (before, after) in pairs.items():
        if before != after:
            changes.append(f"{what}: {before} -> {after}")
    return changes
