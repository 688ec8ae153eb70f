"""The keys of a ``fal`` block in imagen.yaml.

Cheap to import (attrs only): ``imagen config validate`` structures blocks with it
without loading requests.
"""

from __future__ import annotations

import re
from typing import Any

import attrs

from imagen_core import setting

# fal endpoint ids: owner/alias[/subpath...] (fal-ai/flux/dev, fal-ai/bytedance/seedream/v4/edit),
# and workflows/owner/alias/... or comfy/owner/alias/... with one more leading segment.
_ENDPOINT = re.compile(r"[A-Za-z0-9][\w.-]*(?:/[\w.-]+)+")
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
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


def _env_name(_instance: object, attribute: attrs.Attribute[str], value: str) -> None:
    # Never echo the value: it may be the key itself, pasted in by mistake.
    if any(sign in value for sign in _KEY_SIGNS) or len(value) > 60:
        raise ValueError(
            f"{attribute.name} looks like an API key: it must name the environment "
            "variable that holds the key (e.g. FAL_KEY), never the key"
        )
    if not _ENV_NAME.fullmatch(value):
        raise ValueError(
            f"{attribute.name} must be an environment variable name such as FAL_KEY "
            "(letters, digits and _)"
        )


def _positive(_instance: object, attribute: attrs.Attribute[float], value: float) -> None:
    if not value > 0:
        raise ValueError(f"{attribute.name} must be more than 0, got {value}")


def _not_negative(_instance: object, attribute: attrs.Attribute[int], value: int) -> None:
    if value < 0:
        raise ValueError(f"{attribute.name} must be 0 or more, got {value}")


def _base_url(_instance: object, attribute: attrs.Attribute[str], value: str) -> None:
    if not re.fullmatch(r"https?://[^/\s?#]+(/[^\s?#]*)?", value):
        raise ValueError(
            f"{attribute.name} must be an http(s) URL such as {attribute.default}, got {value!r}"
        )


def _no_trailing_slash(value: str) -> str:
    return value.rstrip("/")


def _family(_instance: object, attribute: attrs.Attribute[str | None], value: str | None) -> None:
    if value is None:
        return
    from imagen_fal.families import catalog

    known = catalog().families
    if value not in known:
        raise ValueError(
            f"{attribute.name} {value!r} is not a known model family; known: {', '.join(known)}"
        )


def _extra(_instance: object, attribute: attrs.Attribute[dict[str, Any]], value: Any) -> None:
    if "prompt" in value:
        raise ValueError(f"{attribute.name} must not set prompt: the prompt comes from the request")


def _copy(value: dict[str, Any]) -> dict[str, Any]:
    return dict(value)


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
        validator=_env_name,
        help="environment variable holding the fal API key (never the key itself)",
    )
    extra: dict[str, Any] = setting(
        attrs.Factory(dict),
        converter=_copy,
        validator=_extra,
        help="extra input fields sent as given, e.g. {output_format: png, num_images: 1}",
    )
    timeout_s: float = setting(
        300.0, validator=_positive, help="cancel the request and fail after this many seconds"
    )
    family: str | None = setting(
        None,
        validator=_family,
        help="input mapping to use (flux-dev, sdxl, ...); default: looked up from the model",
    )
    inline_max_kb: int = setting(
        2048,
        validator=_not_negative,
        help="input images up to this size go inline as data: URIs; larger ones are "
        "uploaded to fal's storage first",
    )
    storage_url: str = setting(
        "https://rest.alpha.fal.ai",
        converter=_no_trailing_slash,
        validator=_base_url,
        help="fal's storage API root, for uploading large input images",
    )
    base_url: str = setting(
        "https://queue.fal.run",
        converter=_no_trailing_slash,
        validator=_base_url,
        help="queue API root (a proxy, or a fake server in tests)",
    )
