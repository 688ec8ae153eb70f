"""An imagen Request as an Images API request body: the size the model takes,
the block's options, the fields a compatible server reads, and what could not be
sent (for warnings: nothing is dropped silently)."""

from __future__ import annotations

import random
from typing import TYPE_CHECKING, Any

import attrs

from imagen_core import UsageError

if TYPE_CHECKING:
    from imagen_core import Request
    from imagen_openai.catalog import Family
    from imagen_openai.config import OpenAIConfig

# Seeds are picked below 2**31: servers that take one (imagen serve, LocalAI) may cap it there.
SEED_LIMIT = 2**31
_WORDS = {
    "seed": "--seed",
    "steps": "--steps",
    "negative": "--negative",
    "cfg": "cfg",
    "strength": "--strength",
}


@attrs.frozen
class Plan:
    body: dict[str, Any]
    size: str  # WxH as sent
    seed: int  # the seed sent (0: none)
    notes: tuple[str, ...] = ()  # one warning each


def plan(config: OpenAIConfig, family: Family, request: Request, *, edit: bool) -> Plan:
    """The body (JSON for generations, form fields for edits) for ``request``."""
    if family.prompt_max is not None and len(request.prompt) > family.prompt_max:
        raise UsageError(
            f"openai: the prompt is {len(request.prompt)} characters; {config.model} takes at "
            f"most {family.prompt_max}: shorten it"
        )
    notes: list[str] = []
    width, height = family.size_for(request.width, request.height)
    size = f"{width}x{height}"
    if (width, height) != (request.width, request.height):
        notes.append(
            f"{config.model} makes {family.size_text()}: {request.width}x{request.height} is "
            f"sent as {size}"
        )
    body: dict[str, Any] = {"model": config.model, "prompt": request.prompt, "size": size}
    if config.quality is not None:
        body["quality"] = config.quality
    if family.gpt_options or not family.known:
        for key in ("background", "output_format"):
            value = getattr(config, key)
            if value is not None:
                body[key] = value
    if config.moderation is not None:
        if edit:
            notes.append("moderation is taken by generations only; it is not sent with an edit")
        else:
            body["moderation"] = config.moderation
    if family.response_format:
        # The image in the answer, not a URL to fetch within the hour.
        body["response_format"] = "b64_json"

    seed = 0
    fields = config.request_fields
    values: dict[str, Any] = {
        "seed": request.seed,
        "steps": request.steps or None,
        "negative": request.negative or None,
        "cfg": request.extra.get("cfg"),
        "strength": request.strength,
    }
    if "seed" in fields:
        # Seed 0 means "pick one": picked here and sent, so the Result reports it.
        seed = request.seed or random.SystemRandom().randrange(1, SEED_LIMIT)
        values["seed"] = seed
    for name, value in values.items():
        if value is None or (name != "strength" and not value):
            continue
        if name in fields:
            body[fields[name]] = value
        else:
            notes.append(_not_sent(config, name, value))

    for key, value in config.extra_body.items():
        if value is None:
            body.pop(key, None)
        else:
            body[key] = value
    seed = _seed_sent(body, fields.get("seed"), seed)
    return Plan(body, size, seed, tuple(notes))


def _not_sent(config: OpenAIConfig, name: str, value: Any) -> str:
    flag = _WORDS[name]
    shown = f"{flag} {value}" if name in ("seed", "steps") else flag
    return (
        f"{config.model} takes no {name}: {shown} is not sent (for a server that takes it, "
        f"map it with request_fields: {{{name}: FIELD}} in the backend's block)"
    )


def _seed_sent(body: dict[str, Any], field: str | None, picked: int) -> int:
    """The seed the server gets: extra_body's, when it sets the seed field."""
    if field is None:
        return picked
    value = body.get(field)
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return value
    return picked
