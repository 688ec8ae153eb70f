"""What goes to Supabase for one generation: the Storage name and the two rows.

supabase.sql (in this package) defines the tables with exactly these keys as columns (a test
applies it to PostgreSQL and compares). Every row carries a client-made ``id``:
it is what makes a retried insert harmless (see ``postgrest.insert``).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import time
import uuid
from typing import TYPE_CHECKING, Any

import attrs

from imagen_core.usage import UsageRow

if TYPE_CHECKING:
    from imagen_core.models import Generation, Result

USAGE_COLUMNS = tuple(field.name for field in attrs.fields(UsageRow))


def new_id() -> str:
    """A UUIDv7 (RFC 9562): the time in milliseconds, then randomness.

    Ordered by creation, so rows of the same second still read back in the order
    they were sent, as the local ledger's do; and kind to the primary-key index."""
    ms = time.time_ns() // 1_000_000
    rand_a = int.from_bytes(os.urandom(2), "big") & 0xFFF
    rand_b = int.from_bytes(os.urandom(8), "big") & ((1 << 62) - 1)
    value = (ms & ((1 << 48) - 1)) << 80 | 0x7 << 76 | rand_a << 64 | 0b10 << 62 | rand_b
    return str(uuid.UUID(int=value))


def usage_row(generation: Generation, caller: str) -> dict[str, Any]:
    """The local ledger's row (same fields, same values: prompt hash, never the prompt)."""
    return {"id": new_id(), **UsageRow.of(generation, caller).as_dict()}


def storage_name(generation: Generation, result: Result) -> str:
    """``<YYYY-MM-DD>/<slug>-<seed>.<ext>``: the UTC day the generation started, and
    the slug of the prompt as given (the style left out), as local file names use."""
    from imagen_core.naming import slugify

    day = generation.started_at.astimezone(dt.timezone.utc).strftime("%Y-%m-%d")
    return f"{day}/{slugify(generation.request.prompt)}-{result.seed}.{result.extension}"


def image_row(
    generation: Generation, *, owner_user_id: str, bucket: str, storage_path: str
) -> dict[str, Any]:
    result = generation.result
    assert result is not None
    request = generation.request
    return {
        "id": new_id(),
        "created_at": generation.started_at.astimezone(dt.timezone.utc).isoformat(
            timespec="seconds"
        ),
        "owner_user_id": owner_user_id,
        "prompt": request.prompt,
        "prompt_sha256": request.prompt_sha256,
        "backend": generation.backend,
        "backend_type": generation.backend_type,
        "model": result.model,
        "seed": result.seed,
        "steps": steps_used(generation, result),
        "width": request.width,
        "height": request.height,
        "latency_s": result.latency_s,
        "cost_usd": result.cost_usd,
        "mime_type": result.mime_type,
        "bucket": bucket,
        "storage_path": storage_path,
        "sidecar": sidecar(generation),
        "tags": [],  # filled in later by the viewer
    }


def steps_used(generation: Generation, result: Result) -> int | None:
    """The steps asked for, else those the backend reports in its metadata (as
    imagen-mock and ComfyUI do), else unknown. 0 in a request means "default"."""
    if generation.request.steps:
        return generation.request.steps
    reported = result.metadata.get("steps")
    if isinstance(reported, int) and not isinstance(reported, bool) and reported > 0:
        return reported
    return None


def sidecar(generation: Generation) -> dict[str, Any]:
    """The local sidecar as written; built the same way when none was written
    (``--no-sidecar``) or it cannot be read back."""
    if generation.sidecar is not None:
        try:
            data = json.loads(generation.sidecar.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            data = None
        if isinstance(data, dict):
            return data
    from imagen_core.pipeline import sidecar_dict

    # Through JSON and back, as the file would be: dates and paths become strings.
    built: dict[str, Any] = json.loads(json.dumps(sidecar_dict(generation), default=str))
    return built


def usage_from(data: dict[str, Any]) -> UsageRow:
    """A row of ``mai.imagen_usage`` as PostgREST returns it."""
    return UsageRow(
        created_at=parse_timestamp(str(data["created_at"])),
        backend=str(data["backend"]),
        backend_type=str(data["backend_type"]),
        model=None if data.get("model") is None else str(data["model"]),
        latency_s=_number(data.get("latency_s")),
        cost_usd=_number(data.get("cost_usd")),
        prompt_sha256=str(data["prompt_sha256"]),
        caller=str(data["caller"]),
        status=str(data["status"]),
        error=None if data.get("error") is None else str(data["error"]),
        cost_basis=None if data.get("cost_basis") is None else str(data["cost_basis"]),
    )


def _number(value: Any) -> float | None:
    return None if value is None else float(value)


_FRACTION = re.compile(r"\.(\d+)")
_SHORT_OFFSET = re.compile(r"(T.*[+-]\d\d)$")


def parse_timestamp(text: str) -> dt.datetime:
    """A ``timestamptz`` as PostgREST writes it, in UTC.

    PostgreSQL writes 0 to 6 fraction digits and ``+00:00``-style offsets; Python
    3.10's ``fromisoformat`` takes only 3 or 6 digits and no ``Z``."""
    text = text.strip().replace(" ", "T", 1)
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    text = _FRACTION.sub(lambda m: "." + m.group(1)[:6].ljust(6, "0"), text, count=1)
    if "T" in text:  # "+05" (an offset without minutes, as PostgreSQL writes it) -> "+05:00"
        text = _SHORT_OFFSET.sub(r"\1:00", text)
    moment = dt.datetime.fromisoformat(text)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.timezone.utc)
    return moment.astimezone(dt.timezone.utc)
