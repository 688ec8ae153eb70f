"""Supabase Storage: upload one image to a name nobody uses yet.

A name that is taken is never overwritten (no ``x-upsert``): the upload is
repeated as ``name-1.png``, ``name-2.png``… as the local files are named, so an
``imagen.images`` row always points at the image it describes.

The trap (supabase/storage's error handler): errors are sent as HTTP 400 (or 500)
with the real code as a *string* in the body, ``{"statusCode": "409", "error":
"Duplicate", …}``; only a few (429 SlowDown, gateway 401s) keep their HTTP status.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from imagen_supabase.transport import SyncError

if TYPE_CHECKING:
    import requests

    from imagen_supabase.transport import Transport

# Same prompt, same seed, same day, over and over: past this many, something is off.
MAX_SUFFIX = 50


def status(response: requests.Response) -> int:
    """The status that counts: the body's ``statusCode`` when there is one."""
    code = _body(response).get("statusCode")
    if isinstance(code, (str, int)) and str(code).isdigit():
        return int(code)
    return response.status_code


def is_duplicate(response: requests.Response) -> bool:
    body = _body(response)
    return status(response) == 409 or body.get("error") == "Duplicate"


def upload(transport: Transport, bucket: str, path: str, data: bytes, content_type: str) -> str:
    """Upload ``data`` at ``path`` or the first free ``stem-N.ext``; return the name used."""
    stem, dot, ext = path.rpartition(".")
    names = [path] + [f"{stem}-{n}{dot}{ext}" for n in range(1, MAX_SUFFIX + 1)]
    for name in names:
        response = transport.request(
            "POST",
            f"/storage/v1/object/{quote(bucket, safe='')}/{quote(name)}",
            data=data,
            headers={
                "Content-Type": content_type,  # otherwise stored as application/octet-stream
                "x-upsert": "false",
                "cache-control": "max-age=3600",
            },
            status_of=status,
        )
        if response.ok and status(response) < 300:
            return name
        if is_duplicate(response):
            continue
        raise SyncError(describe(response, bucket, name, content_type, transport))
    raise SyncError(
        f"upload to {bucket}/{path} failed: it and {MAX_SUFFIX} suffixed names already exist"
    )


def describe(
    response: requests.Response, bucket: str, name: str, content_type: str, transport: Transport
) -> str:
    """One line: what failed, what Storage said, and what to do about it."""
    body = _body(response)
    code = status(response)
    parts: list[str] = []
    for key in ("error", "message"):
        value = body.get(key)
        if value and str(value) not in parts:
            parts.append(str(value))
    said = ": ".join(parts)
    if not said:
        said = (response.text or response.reason or "").strip()[:200]
    where = f"HTTP {response.status_code}" + (
        f" (statusCode {code})" if code != response.status_code else ""
    )
    error = str(body.get("error", "")) + str(body.get("code", ""))
    if code == 404 or "NoSuchBucket" in error or "Bucket not found" in said:
        hint = (
            f"create the bucket {bucket!r} (`imagen supabase schema`) "
            "or set bucket: in the sink block"
        )
    elif code in (401, 403) or "InvalidJWT" in error or "Unauthorized" in said:
        hint = f"check {transport.credentials.key_var}: it must be the service_role or secret key"
    elif code == 415:
        hint = f"the bucket does not accept {content_type}; allow it in the bucket's settings"
    elif code == 413:
        hint = "the image is larger than the bucket's file size limit"
    elif code == 429 or code >= 500:
        hint = "Supabase Storage is failing; try again later"
    else:
        hint = ""
    line = f"upload to {bucket}/{name} failed: {where}: {said}".rstrip(": ")
    return f"{line}; {hint}" if hint else line


def _body(response: requests.Response) -> dict[str, Any]:
    try:
        data = response.json()
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}
