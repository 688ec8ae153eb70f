"""The keys of a ``fal`` block in imagen.yaml.

Cheap to import (attrs only): ``imagen config validate`` structures blocks with it
without loading requests.
"""

from __future__ import annotations

import re
from typing import Any

import attrs

from imagen_core import setting
from imagen_core.validators import (
    env_name,
    http_url,
    listed,
    no_trailing_slash,
    not_negative,
    positive,
)

# fal endpoint ids: owner/alias[/subpath...] (fal-ai/flux/dev, fal-ai/bytedance/seedream/v4/edit),
# and workflows/owner/alias/... or comfy/owner/alias/... with one more leading segment.
_ENDPOINT = re.compile(r"[A-Za-z0-9][\w.-]*(?:/[\w.-]+)+")
# A fal key is "<uuid>:<hex secret>": a colon never belongs in a variable name.
_KEY_SIGNS = (":",)
NAMESPACES = ("workflows", "comfy")


def _model(_instance: object, _attribute: attrs.Attribute[str], value: str) -> None:
    if not _ENDPOINT.fullmatch(value) or (
        value.split("/", 1)[0] in NAMESPACES and value.count("/") < 2
    ):
        raise ValueError(
            "model must be a fal endpoint id, owner/alias[/path] (e.g. fal-ai/flux/schnell "
            f"or fal-ai/flux-pro/kontext), got {value!r}"
        )


def _families() -> list[str]:
    from imagen_fal.families import catalog

    return list(catalog().families)


def _extra(_instance: object, attribute: attrs.Attribute[dict[str, Any]], value: Any) -> None:
    if "prompt" in value:
        raise ValueError(f"{attribute.name} must not set prompt: the prompt comes from the request")


@attrs.frozen
class FalConfig:
    """A ``fal`` block. The key itself never appears here, only the name of the
    environment variable that holds it."""

    model: str = setting(
        "fal-ai/flux/schnell",
        validator=_model,
        help="fal endpoint id, e.g. fal-ai/flux/schnell, fal-ai/flux-pro/kontext",
    )
    api_key_env: str = setting(
        "FAL_KEY",
        validator=env_name(secret_signs=_KEY_SIGNS),
        help="environment variable holding the fal API key (never the key itself)",
    )
    extra: dict[str, Any] = setting(
        attrs.Factory(dict),
        converter=dict,
        validator=_extra,
        help="extra input fields sent as given, e.g. {output_format: png, num_images: 1}",
    )
    timeout_s: float = setting(
        300.0, validator=positive, help="cancel the request and fail after this many seconds"
    )
    family: str | None = setting(
        None,
        validator=listed(_families, "model family"),
        help="input mapping to use (flux-dev, sdxl, ...); default: looked up from the model",
    )
    inline_max_kb: int = setting(
        2048,
        validator=not_negative,
        help="input images up to this size go inline as data: URIs; larger ones are "
        "uploaded to fal's storage first",
    )
    storage_url: str = setting(
        "https://rest.alpha.fal.ai",
        converter=no_trailing_slash,
        validator=http_url(),
        help="fal's storage API root, for uploading large input images",
    )
    base_url: str = setting(
        "https://queue.fal.run",
        converter=no_trailing_slash,
        validator=http_url(),
        help="queue API root (a proxy, or a fake server in tests)",
    )
