"""The standard naming-template fields: {date} {time} {slug} {seed} {backend} {ext}."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

from imagen_core.hookspecs import hookimpl

if TYPE_CHECKING:
    from imagen_core.models import Request, Result


@hookimpl
def naming_fields(request: Request, result: Result) -> dict[str, object]:
    from imagen_core.naming import slugify

    now = dt.datetime.now()
    return {
        "date": now.strftime("%Y-%m-%d"),
        "time": now.strftime("%H%M%S"),
        "slug": slugify(request.prompt),
        "seed": result.seed,
        "backend": result.backend,
        "ext": result.extension,
    }
