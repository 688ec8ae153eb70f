"""Grid runs (``imagen grid``) in the gallery: their entry, and their page.

A grid run is one gallery entry, read from its ``grid.json``: its first sheet
is the picture, ``page`` the run's own ``grid.html``. The page is served at
``/images/<run>/grid.html`` (the token rules of ``/images`` apply, and the
relative names of its images resolve to ``/images/<run>/...``) with a
Content-Security-Policy that lets only its own inline style and script run:
their hashes, computed from the file served, and images from this server.
"""

from __future__ import annotations

import base64
import hashlib
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from starlette.responses import Response
from starlette.routing import Route

from imagen_core.grid.record import HTML_NAME, RECORD_NAME
from imagen_web.errors import ApiError

if TYPE_CHECKING:
    from starlette.requests import Request as HttpRequest

    from imagen_web import api
    from imagen_web.images_index import Entry

GRID_SIDECAR = RECORD_NAME
MAX_PAGE_BYTES = 8 * 1024 * 1024
_INLINE = re.compile(r"<(style|script)>(.*?)</\1>", re.S)


def grid_entry(rel: str, folder: Path, data: dict[str, Any], mtime_ns: int) -> Entry | None:
    """The gallery entry of the grid run in ``folder``, or None if not one."""
    from imagen_web.images_index import (
        Entry,
        _created,
        _dict,
        _file_in,
        _int,
        _str,
        finite_number,
        image_url,
    )

    if not rel or data.get("kind") != "grid" or not isinstance(data.get("prompt"), str):
        return None
    listed = data.get("sheets")
    sheets = [name for name in listed if _file_in(folder, name)] if isinstance(listed, list) else []
    page = _file_in(folder, data.get("html"))
    created, created_text = _created(data, mtime_ns)
    base = _dict(data.get("base"))
    totals = _dict(data.get("totals"))
    given = data.get("axes")
    axes = [
        a
        for a in (given if isinstance(given, list) else [])
        if isinstance(a, dict) and _str(a.get("role")) and _str(a.get("name"))
    ]
    body = {
        "id": rel,
        "kind": "grid",
        "url": image_url(f"{rel}/{sheets[0]}") if sheets else None,
        "page": image_url(f"{rel}/{page}") if page else None,
        "sheets": [image_url(f"{rel}/{name}") for name in sheets],
        "axes": [f"{a['role']}: {a['name']}" for a in axes],
        "cells": _int(totals.get("cells")),
        "created": created_text,
        "prompt": data["prompt"],
        "style": _str(base.get("style")),
        "negative": _str(base.get("negative")),
        "backend": _str(base.get("backend")),
        "backend_type": None,
        "model": None,
        "seed": _int(base.get("seed")),
        "width": _int(base.get("width")),
        "height": _int(base.get("height")),
        "steps": _int(base.get("steps")),
        "latency_s": finite_number(totals.get("latency_s")),
        "cost_usd": finite_number(totals.get("cost_usd")),
        "job": None,
    }
    return Entry((created, mtime_ns, rel), body)


def page_csp(html: str) -> str:
    """A policy that runs this page's own inline style and script, nothing else."""
    hashes: dict[str, list[str]] = {"style": [], "script": []}
    for kind, content in _INLINE.findall(html):
        digest = base64.b64encode(hashlib.sha256(content.encode()).digest()).decode()
        hashes[kind].append(f"'sha256-{digest}'")
    style = " ".join(hashes["style"]) or "'none'"
    script = " ".join(hashes["script"]) or "'none'"
    return (
        f"default-src 'none'; img-src 'self'; style-src {style}; script-src {script}; "
        "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    )


async def grid_page(request: HttpRequest) -> Response:
    state: api.WebState = request.app.state.imagen
    rel = request.path_params["run"]
    folder = _run_folder(state.output_dir, rel)
    if folder is None:
        raise ApiError(404, "not_found", "no grid run at that path inside the output folder")
    try:
        html = (folder / HTML_NAME).read_bytes()[:MAX_PAGE_BYTES].decode()
    except (OSError, UnicodeDecodeError):
        raise ApiError(404, "not_found", "the grid run has no readable page") from None
    return Response(
        html,
        media_type="text/html; charset=utf-8",
        headers={"content-security-policy": page_csp(html), "cache-control": "no-cache"},
    )


def _run_folder(root: Path, rel: str) -> Path | None:
    """The real folder ``rel`` names under ``root`` when it holds a grid run."""
    if not rel or "\x00" in rel or rel.startswith(("/", "\\")):
        return None
    if any(part.startswith(".") for part in Path(rel).parts):
        return None
    try:
        real_root = root.resolve(strict=True)
        real = (real_root / rel).resolve(strict=True)
    except (OSError, RuntimeError):
        return None
    if not real.is_relative_to(real_root) or not (real / GRID_SIDECAR).is_file():
        return None
    return real if (real / HTML_NAME).is_file() else None


def routes() -> list[Route]:
    """Before ``/images/{path}``: a grid page is the one HTML file served there."""
    return [Route("/images/{run:path}/" + HTML_NAME, grid_page, methods=["GET"])]
