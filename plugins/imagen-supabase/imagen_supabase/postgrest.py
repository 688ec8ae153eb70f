"""Supabase's Data API (PostgREST): insert one row, read rows page by page.

Tables live in their own schemas (``imagen``, ``mai``): the URL names the table
alone and the schema goes in ``Content-Profile`` (writes) or ``Accept-Profile``
(reads). The schema must also be exposed in the project's API settings, or every
request answers 406 PGRST106.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from imagen_supabase.transport import SyncError

if TYPE_CHECKING:
    from collections.abc import Iterator

    import requests

    from imagen_supabase.settings import Table
    from imagen_supabase.transport import Transport

# Supabase's default "Max rows": more per request are cut off without a word.
PAGE_SIZE = 1000


def insert(transport: Transport, table: Table, row: dict[str, Any]) -> None:
    """Insert ``row`` (which has a client-made ``id``) exactly once, however often sent.

    ``resolution=ignore-duplicates`` makes it ``INSERT … ON CONFLICT (id) DO
    NOTHING``: when an earlier attempt was committed but its answer was lost, the
    retry inserts nothing instead of a second row or a 409. ``return=minimal``
    (PostgREST's default, said out loud): 201 with an empty body."""
    response = transport.request(
        "POST",
        f"/rest/v1/{table.name}",
        params={"on_conflict": "id"},
        data=json.dumps(row, allow_nan=False).encode(),
        headers={
            "Content-Profile": table.schema,
            "Content-Type": "application/json",
            "Accept": "application/json",
            "Prefer": "return=minimal,resolution=ignore-duplicates",
        },
    )
    if not 200 <= response.status_code < 300:
        raise SyncError(describe(response, f"insert into {table}", table, transport))


def select(
    transport: Transport, table: Table, params: list[tuple[str, str]]
) -> Iterator[dict[str, Any]]:
    """Every row matching ``params`` (filters, ``select``, ``order``), page by page.

    The server may cap a page below what was asked (its "Max rows" setting), so a
    short page does not prove the end by itself: reading stops at an empty page or
    at one shorter than an earlier one. ``params`` must order the rows totally, or
    offsets could skip or repeat rows."""
    offset = 0
    longest = 0
    while True:
        response = transport.request(
            "GET",
            f"/rest/v1/{table.name}",
            params=[*params, ("limit", str(PAGE_SIZE)), ("offset", str(offset))],
            headers={"Accept-Profile": table.schema, "Accept": "application/json"},
        )
        if response.status_code not in (200, 206):
            raise SyncError(describe(response, f"reading {table}", table, transport))
        try:
            page = response.json()
        except ValueError:
            page = None
        if not isinstance(page, list):
            raise SyncError(f"reading {table}: Supabase answered with something else than rows")
        yield from page
        longest = max(longest, len(page))
        if not page or len(page) < longest:
            return
        offset += len(page)


def describe(response: requests.Response, action: str, table: Table, transport: Transport) -> str:
    """One line from PostgREST's ``{code, message, details, hint}`` (or a gateway's
    ``{message, hint}``) with what to do about it.

    ``details`` is left out: for constraint errors it lists the failing row, which
    for an image row holds the prompt."""
    try:
        body = response.json()
    except ValueError:
        body = {}
    if not isinstance(body, dict):
        body = {}
    code = str(body.get("code") or "")
    message = str(body.get("message") or response.text.strip()[:200] or response.reason or "")
    status = response.status_code
    if code == "PGRST106":
        hint = (
            f"expose the schema {table.schema!r} in the Supabase dashboard "
            "(Project Settings > Data API > Exposed schemas)"
        )
    elif code in ("PGRST205", "42P01", "PGRST204", "42703"):
        hint = f"create {table} as imagen expects it: apply the SQL of `imagen supabase schema`"
    elif code == "42501":
        hint = f"grant service_role access to {table}: apply the SQL of `imagen supabase schema`"
    elif code == "23503":
        hint = "owner_user_id must be the id of a user in auth.users"
    elif status == 401 or code.startswith("PGRST3"):
        key_var = transport.credentials.key_var
        hint = f"Supabase refused the key in {key_var}: use the service_role or secret key"
    elif status == 429 or status >= 500:
        hint = "Supabase is failing; try again later"
    else:
        hint = str(body.get("hint") or "")
    said = f"{code}: {message}" if code else message
    line = f"{action} failed: HTTP {status}" + (f": {said}" if said else "")
    return f"{line}; {hint}" if hint else line
