"""The half of mapping a Request onto a hosted model's input that every service
shares, for backends that know their models by family (imagen-fal,
imagen-replicate): the request's options sent under the field names a family
gives them, the ones it has no field for said once, and a ``cfg`` that is not
a number refused before anything is sent.

Cheap to import (the warning printer and the error types only).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from imagen_core.errors import UsageError
from imagen_core.notices import warn

if TYPE_CHECKING:
    from collections.abc import Mapping

    from imagen_core.models import Request

#: What a request carries beyond prompt, size, seed and images, by the name a
#: family's table uses, and how a warning names it.
OPTIONS = {"steps": "steps", "cfg": "cfg", "negative": "negative prompt", "strength": "strength"}


def put_options(
    request: Request,
    fields: Mapping[str, str | None],
    sent: dict[str, Any],
    ignored: list[str],
) -> None:
    """Each option of ``fields`` (``steps``, ``cfg``, ``negative``, ``strength``,
    in that mapping's order) that the request sets goes into ``sent`` under the
    field the family names for it; one it has no field for (None) goes into
    ``ignored`` by its name in a warning ("negative prompt")."""
    values = {
        "steps": request.steps or None,
        "cfg": request.extra.get("cfg"),
        "negative": request.negative or None,
        "strength": request.strength,
    }
    for option, field in fields.items():
        value = values[option]
        if value is None:
            continue
        if field:
            sent[field] = value
        else:
            ignored.append(OPTIONS[option])


def check_cfg(service: str, cfg: Any) -> None:
    """``request.extra["cfg"]`` is a number when it is set (UsageError, exit 2)."""
    if cfg is not None and (isinstance(cfg, bool) or not isinstance(cfg, (int, float))):
        raise UsageError(f"{service}: request.extra['cfg'] must be a number, got {cfg!r}")


def warn_mapping(
    service: str,
    model: str,
    ignored: list[str],
    adjusted: str | None,
    *,
    unknown: bool,
    extra_key: str,
) -> None:
    """Say once per process what a model could not be sent: for a model in no
    known family (``unknown``), that its options cannot be sent and how to send
    them (``family:``, or the model's own inputs under ``extra_key``); else each
    option it takes no field for; and how the size was changed (``adjusted``)."""
    if ignored and unknown:
        listed = " and ".join(ignored)
        warn(
            f"{service}: {model} is in no known model family, so the request's {listed} "
            "cannot be sent; set `family:` in the backend's block, or pass the model's own "
            f"inputs under `{extra_key}:`",
            once=f"{service}:unknown:{model}:{listed}",
        )
    elif ignored:
        for item in ignored:
            warn(
                f"{service}: {model} takes no {item}; it is ignored",
                once=f"{service}:ignored:{model}:{item}",
            )
    if adjusted:
        warn(f"{service}: {model}: {adjusted}", once=f"{service}:size:{model}:{adjusted}")
